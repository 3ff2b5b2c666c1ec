-- Publishable keys for browser signup forms: public identifiers with an origin allow-list. They can
-- only record pending opt-ins (confirmed later by the person, by double opt-in).
CREATE TABLE publishable_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    origins TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
