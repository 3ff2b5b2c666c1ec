-- A telephone number for enquiries and the privacy policy's URL: consent receipts (Kantara
-- v1.1) require both of the controller.
ALTER TABLE tenants ADD COLUMN phone TEXT;
ALTER TABLE tenants ADD COLUMN privacy_policy_url TEXT;
