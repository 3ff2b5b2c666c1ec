ALTER TABLE tenants DROP COLUMN privacy_policy_url;
ALTER TABLE tenants DROP COLUMN phone;
