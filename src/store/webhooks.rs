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

    /// A webhook by id, active or not.
    pub fn webhook(&mut self, id: &str) -> QueryResult<Option<WebhookRow>> {
        db_run!(self, |c| {
            webhooks::table.find(id).load(c).map(at_most_one)
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
