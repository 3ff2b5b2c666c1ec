-- Subject labels (docs/log-format.md): the log's VRF key, the index of its one parameters leaf,
-- and which subjects are named by a VRF label rather than a salted commitment.
ALTER TABLE log_meta ADD COLUMN vrf_secret BLOB;
ALTER TABLE log_meta ADD COLUMN parameters_leaf BIGINT;
ALTER TABLE subjects ADD COLUMN vrf BOOLEAN NOT NULL DEFAULT FALSE;
CREATE UNIQUE INDEX subjects_by_key ON subjects (commitment);
