-- Webhooks for every consent event: each webhook subscribes to event types (a JSON list; the
-- webhooks from before subscribed to opt-outs, which stays their subscription), and a rotated
-- secret keeps signing beside the new one until previous_secret_until.
ALTER TABLE webhooks ADD COLUMN events TEXT NOT NULL DEFAULT '["opt_out"]';
ALTER TABLE webhooks ADD COLUMN previous_secret BLOB;
ALTER TABLE webhooks ADD COLUMN previous_secret_until BIGINT;
