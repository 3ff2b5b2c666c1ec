DROP TABLE idempotency_keys;
DROP TABLE consent_state;
DROP TABLE events;
DROP TABLE collection_points;
DROP TABLE subjects;
DROP TABLE tenant_purposes;
DROP TABLE tenants;
