-- Opt-out webhooks: a tenant's https endpoints, and an outbox of deliveries. A delivery row is
-- written in the same transaction as the opt-out it announces (so none is lost), then sent,
-- signed, by the webhook worker, retried with back-off; its row is the delivery log.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    url TEXT NOT NULL,
    secret BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id),
    subject_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    body TEXT,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT,
    delivered_at BIGINT,
    last_status INTEGER,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
