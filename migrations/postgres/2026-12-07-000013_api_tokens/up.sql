-- API tokens: each bearer token the service issues has a row (its JWT `jti` is the id), so one
-- token can be listed and revoked; a revoked or unknown id is refused on every node at once. The
-- secret (the JWT) is never stored. A token issued by another (parent_id) ends with it: it lives no
-- longer, and revoking the parent revokes it.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    tenant_id TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    parent_id TEXT
);
CREATE INDEX api_tokens_by_parent ON api_tokens (parent_id);
CREATE INDEX api_tokens_by_tenant ON api_tokens (tenant_id, id);
