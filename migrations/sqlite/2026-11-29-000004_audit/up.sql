-- Every read of consent records by a regulator token, recorded before it is answered.
CREATE TABLE regulator_reads (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    regulator TEXT NOT NULL,
    operation TEXT NOT NULL,
    read_at BIGINT NOT NULL
);
CREATE INDEX regulator_reads_by_tenant ON regulator_reads (tenant_id, read_at);
