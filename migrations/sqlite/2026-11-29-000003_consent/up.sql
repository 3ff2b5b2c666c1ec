-- Consent records. Personal data (addresses, salts, evidence) lives only here, in erasable rows;
-- the log holds commitments. Every event row points at its leaf.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    legal_name TEXT NOT NULL,
    postal_address TEXT,
    complaint_contact TEXT,
    optout_contact TEXT,
    default_language TEXT NOT NULL,
    legal_hold BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE tenant_purposes (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    purpose TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, purpose)
);

CREATE TABLE subjects (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    address TEXT,
    salt BLOB,
    commitment BLOB NOT NULL,
    last_leaf_index BIGINT,
    created_at BIGINT NOT NULL,
    erased_at BIGINT
);
CREATE UNIQUE INDEX subjects_by_address ON subjects (tenant_id, address);

CREATE TABLE collection_points (
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    channel TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content BLOB NOT NULL,
    sender_name_shown TEXT NOT NULL,
    prechecked BOOLEAN NOT NULL,
    language TEXT NOT NULL,
    leaf_index BIGINT NOT NULL,
    registered_at BIGINT NOT NULL,
    superseded_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    subject_id TEXT NOT NULL REFERENCES subjects (id),
    kind TEXT NOT NULL,
    purposes TEXT NOT NULL,
    basis TEXT NOT NULL,
    method TEXT NOT NULL,
    collection_point TEXT,
    received_by TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    leaf_index BIGINT NOT NULL UNIQUE,
    prev_leaf_index BIGINT,
    confirmation_required BOOLEAN NOT NULL,
    evidence TEXT
);
CREATE INDEX events_by_subject ON events (subject_id, leaf_index);
CREATE INDEX events_by_tenant ON events (tenant_id, leaf_index);

-- The send decision's table: per subject and purpose ('*' = all), the latest event's effect.
CREATE TABLE consent_state (
    subject_id TEXT NOT NULL REFERENCES subjects (id),
    purpose TEXT NOT NULL,
    status TEXT NOT NULL,
    basis TEXT NOT NULL,
    since BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    leaf_index BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL,
    PRIMARY KEY (subject_id, purpose)
);

-- Idempotency-Key reservations: `body` is NULL while the request is in flight, and is written in
-- the same transaction as the events it answers (so a retry can never record them twice).
CREATE TABLE idempotency_keys (
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_sha256 BLOB NOT NULL,
    status INTEGER NOT NULL,
    body TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
