-- Campaign receipts (docs/log-format.md, campaign_check): one row per recorded pre-flight check,
-- beside its leaf. `entries` are the 41-byte entries in key order whose RFC 9162 root the leaf
-- holds (subject keys, statuses, deciding leaves: no address), kept to prove an address's entry.
CREATE TABLE campaign_checks (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    purpose TEXT NOT NULL,
    leaf_index BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    addresses BIGINT NOT NULL,
    root TEXT NOT NULL,
    entries BYTEA NOT NULL
);
CREATE INDEX campaign_checks_by_tenant ON campaign_checks (tenant_id, leaf_index);
