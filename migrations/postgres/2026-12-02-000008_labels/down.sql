DROP INDEX subjects_by_key;
ALTER TABLE subjects DROP COLUMN vrf;
ALTER TABLE log_meta DROP COLUMN parameters_leaf;
ALTER TABLE log_meta DROP COLUMN vrf_secret;
