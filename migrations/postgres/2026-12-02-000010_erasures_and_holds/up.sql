-- Erasures (docs/log-format.md, erasure): one row per `erasure` leaf, so that a subject's bundle
-- finds every leaf of its chain. No personal data: the subject row keeps only its label.
CREATE TABLE erasures (
    leaf_index BIGINT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    subject_id TEXT NOT NULL REFERENCES subjects (id),
    recorded_at BIGINT NOT NULL
);
CREATE INDEX erasures_by_subject ON erasures (subject_id, leaf_index);
-- "Has this tenant erased anyone?" on every check: answered from this small partial index.
CREATE INDEX subjects_erased ON subjects (tenant_id) WHERE erased_at IS NOT NULL;

-- Legal holds (docs/log-format.md, legal_hold): one row per `legal_hold` leaf, the tenant's
-- holds in log order; `tenants.legal_hold` is the latest one's `on`.
CREATE TABLE legal_holds (
    leaf_index BIGINT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    hold_on BOOLEAN NOT NULL,
    order_date TEXT NOT NULL,
    order_reference TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX legal_holds_by_tenant ON legal_holds (tenant_id, leaf_index);
