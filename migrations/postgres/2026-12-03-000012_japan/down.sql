ALTER TABLE collection_points DROP COLUMN retired_leaf_index;
ALTER TABLE tenant_purposes DROP COLUMN label_en;
ALTER TABLE tenant_purposes DROP COLUMN label_ja;
ALTER TABLE tenants DROP COLUMN responsible_party;
