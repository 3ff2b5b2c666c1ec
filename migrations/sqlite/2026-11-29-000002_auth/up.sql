-- Keys that sign the service's bearer tokens (JWT, EdDSA). The newest unretired key signs; every
-- unretired key verifies, so a rotation never invalidates tokens in flight.
CREATE TABLE auth_keys (
    kid TEXT PRIMARY KEY,
    seed BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
