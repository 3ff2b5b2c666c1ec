//! Webhook endpoints.

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::webhooks;
use super::{at_most_one, Repo};

/// A tenant's webhook endpoint.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    /// Id.
    pub id: String,
    /// Owner.
    pub tenant_id: String,
    /// The https URL deliveries are POSTed to.
    pub url: String,
    /// HMAC-SHA256 key of the signatures.
    pub secret: Vec<u8>,
    /// Registration time, Unix ms.
    pub created_at: i64,
    /// When it was removed; `None` while active.
    pub disabled_at: Option<i64>,
    /// The event types it subscribes to, a JSON list (`["opt_out"]`).
    pub events: String,
    /// The secret before the last rotation, still signing beside the new one until…
    pub previous_secret: Option<Vec<u8>>,
    /// …this time, Unix ms.
    pub previous_secret_until: Option<i64>,
}

impl Repo<'_> {
    /// Inserts a webhook.
    pub fn insert_webhook(&mut self, row: &WebhookRow) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::insert_into(webhooks::table)
                .values(row)
                .execute(c)
                .map(drop)
        })
    }

    /// A tenant's active webhooks, oldest first.
    pub fn tenant_webhooks(&mut self, tenant_id: &str) -> QueryResult<Vec<WebhookRow>> {
        db_run!(self, |c| {
            webhooks::table
                .filter(
                    webhooks::tenant_id
                        .eq(tenant_id)
                        .and(webhooks::disabled_at.is_null()),
                )
                .order((webhooks::created_at, webhooks::id))
                .load(c)
        })
    }

    /// A page of a tenant's active webhooks by id (ids sort by creation), after `after`.
    pub fn webhooks_after(
        &mut self,
        tenant_id: &str,
        after: &str,
        limit: i64,
    ) -> QueryResult<Vec<WebhookRow>> {
        db_run!(self, |c| {
            webhooks::table
                .filter(
                    webhooks::tenant_id
                        .eq(tenant_id)
                        .and(webhooks::disabled_at.is_null())
                        .and(webhooks::id.gt(after)),
                )
                .order(webhooks::id)
                .limit(limit)
                .load(c)
        })
    }

    /// A webhook by id, active or not.
    pub fn webhook(&mut self, id: &str) -> QueryResult<Option<WebhookRow>> {
        db_run!(self, |c| {
            webhooks::table.find(id).load(c).map(at_most_one)
        })
    }

    /// Replaces an active webhook's secret, keeping the old one signing until `until`; false if
    /// the tenant has no such active webhook.
    pub fn rotate_webhook_secret(
        &mut self,
        tenant_id: &str,
        id: &str,
        secret: &[u8],
        until: i64,
    ) -> QueryResult<bool> {
        db_run!(self, |c| {
            let active = webhooks::table.filter(
                webhooks::id
                    .eq(id)
                    .and(webhooks::tenant_id.eq(tenant_id))
                    .and(webhooks::disabled_at.is_null()),
            );
            let n = diesel::update(active)
                .set((
                    webhooks::previous_secret.eq(webhooks::secret.nullable()),
                    webhooks::previous_secret_until.eq(until),
                    webhooks::secret.eq(secret),
                ))
                .execute(c)?;
            Ok(n == 1)
        })
    }

    /// Disables a tenant's webhook; false if it has no such active webhook.
    pub fn disable_webhook(&mut self, tenant_id: &str, id: &str, now: i64) -> QueryResult<bool> {
        db_run!(self, |c| {
            let n = diesel::update(
                webhooks::table.filter(
                    webhooks::id
                        .eq(id)
                        .and(webhooks::tenant_id.eq(tenant_id))
                        .and(webhooks::disabled_at.is_null()),
                ),
            )
            .set(webhooks::disabled_at.eq(now))
            .execute(c)?;
            Ok(n == 1)
        })
    }
}
