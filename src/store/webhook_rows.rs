//! Queries for opt-out webhooks and their deliveries (the outbox, which is also the delivery
//! log). Written once, compiled for both backends.

use diesel::prelude::*;
use diesel::{PgConnection, QueryResult, SqliteConnection};

use super::at_most_one;
use super::schema::{webhook_deliveries, webhooks};

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

/// One opt-out to deliver to one webhook, and how delivering it went.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub struct DeliveryRow {
    /// Id (time-ordered).
    pub id: String,
    /// The endpoint.
    pub webhook_id: String,
    /// Whose opt-out (the body is erased with the subject).
    pub subject_id: String,
    /// The opt-out event.
    pub event_id: String,
    /// The JSON body sent; `None` once erased.
    pub body: Option<String>,
    /// Attempts so far.
    pub attempts: i32,
    /// When to try next; `None` when delivered or given up.
    pub next_attempt_at: Option<i64>,
    /// When the endpoint answered 2xx.
    pub delivered_at: Option<i64>,
    /// The last HTTP status received.
    pub last_status: Option<i32>,
    /// The last failure, for the delivery log.
    pub last_error: Option<String>,
    /// When the opt-out was recorded, Unix ms.
    pub created_at: i64,
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// When to try again; `None` when done (delivered or given up).
    pub next_attempt_at: Option<i64>,
    /// Set when delivered.
    pub delivered_at: Option<i64>,
    /// The HTTP status, if there was an answer.
    pub status: Option<i32>,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// Queries for webhooks.
pub trait WebhookRows {
    /// Inserts a webhook.
    fn insert_webhook(&mut self, row: &WebhookRow) -> QueryResult<()>;
    /// A tenant's active webhooks, oldest first.
    fn tenant_webhooks(&mut self, tenant_id: &str) -> QueryResult<Vec<WebhookRow>>;
    /// A webhook by id, active or not.
    fn webhook(&mut self, id: &str) -> QueryResult<Option<WebhookRow>>;
    /// Disables a tenant's webhook; false if it has no such active webhook.
    fn disable_webhook(&mut self, tenant_id: &str, id: &str, now: i64) -> QueryResult<bool>;
    /// Inserts a delivery.
    fn insert_delivery(&mut self, row: &DeliveryRow) -> QueryResult<()>;
    /// Deliveries due at `now`, the most overdue first, at most `limit`.
    fn due_deliveries(&mut self, now: i64, limit: i64) -> QueryResult<Vec<DeliveryRow>>;
    /// Moves a delivery due at `due_at` to `until` (a sender's lease); false if another got it.
    fn lease_delivery(&mut self, id: &str, due_at: i64, until: i64) -> QueryResult<bool>;
    /// Records an attempt; a delivery that is done (delivered or given up) loses its body.
    fn record_attempt(&mut self, id: &str, attempt: &Attempt) -> QueryResult<()>;
    /// A webhook's deliveries with ids after `after`, oldest first, at most `limit`.
    fn deliveries(
        &mut self,
        webhook_id: &str,
        after: &str,
        limit: i64,
    ) -> QueryResult<Vec<DeliveryRow>>;
    /// Erases the bodies (addresses) of a subject's deliveries and stops their retries, noting
    /// why in `last_error`.
    fn erase_deliveries_of(&mut self, subject_id: &str, note: &str) -> QueryResult<()>;
}

macro_rules! impl_webhook_rows {
    ($conn:ty) => {
        impl WebhookRows for $conn {
            fn insert_webhook(&mut self, row: &WebhookRow) -> QueryResult<()> {
                diesel::insert_into(webhooks::table)
                    .values(row)
                    .execute(self)
                    .map(drop)
            }

            fn tenant_webhooks(&mut self, tenant_id: &str) -> QueryResult<Vec<WebhookRow>> {
                webhooks::table
                    .filter(
                        webhooks::tenant_id
                            .eq(tenant_id)
                            .and(webhooks::disabled_at.is_null()),
                    )
                    .order((webhooks::created_at, webhooks::id))
                    .load(self)
            }

            fn webhook(&mut self, id: &str) -> QueryResult<Option<WebhookRow>> {
                webhooks::table.find(id).load(self).map(at_most_one)
            }

            fn disable_webhook(
                &mut self,
                tenant_id: &str,
                id: &str,
                now: i64,
            ) -> QueryResult<bool> {
                let n = diesel::update(
                    webhooks::table.filter(
                        webhooks::id
                            .eq(id)
                            .and(webhooks::tenant_id.eq(tenant_id))
                            .and(webhooks::disabled_at.is_null()),
                    ),
                )
                .set(webhooks::disabled_at.eq(now))
                .execute(self)?;
                Ok(n == 1)
            }

            fn insert_delivery(&mut self, row: &DeliveryRow) -> QueryResult<()> {
                diesel::insert_into(webhook_deliveries::table)
                    .values(row)
                    .execute(self)
                    .map(drop)
            }

            fn due_deliveries(&mut self, now: i64, limit: i64) -> QueryResult<Vec<DeliveryRow>> {
                webhook_deliveries::table
                    .filter(webhook_deliveries::next_attempt_at.le(now))
                    .order((webhook_deliveries::next_attempt_at, webhook_deliveries::id))
                    .limit(limit)
                    .load(self)
            }

            fn lease_delivery(&mut self, id: &str, due_at: i64, until: i64) -> QueryResult<bool> {
                let n = diesel::update(
                    webhook_deliveries::table.filter(
                        webhook_deliveries::id
                            .eq(id)
                            .and(webhook_deliveries::next_attempt_at.eq(due_at)),
                    ),
                )
                .set(webhook_deliveries::next_attempt_at.eq(until))
                .execute(self)?;
                Ok(n == 1)
            }

            fn record_attempt(&mut self, id: &str, attempt: &Attempt) -> QueryResult<()> {
                // Once done (delivered or given up) the address in the body is not kept.
                let body_kept = attempt.next_attempt_at.is_some();
                if !body_kept {
                    diesel::update(webhook_deliveries::table.find(id))
                        .set(webhook_deliveries::body.eq(None::<String>))
                        .execute(self)?;
                }
                diesel::update(webhook_deliveries::table.find(id))
                    .set((
                        webhook_deliveries::attempts.eq(attempt.attempts),
                        webhook_deliveries::next_attempt_at.eq(attempt.next_attempt_at),
                        webhook_deliveries::delivered_at.eq(attempt.delivered_at),
                        webhook_deliveries::last_status.eq(attempt.status),
                        webhook_deliveries::last_error.eq(&attempt.error),
                    ))
                    .execute(self)
                    .map(drop)
            }

            fn deliveries(
                &mut self,
                webhook_id: &str,
                after: &str,
                limit: i64,
            ) -> QueryResult<Vec<DeliveryRow>> {
                webhook_deliveries::table
                    .filter(
                        webhook_deliveries::webhook_id
                            .eq(webhook_id)
                            .and(webhook_deliveries::id.gt(after)),
                    )
                    .order(webhook_deliveries::id)
                    .limit(limit)
                    .load(self)
            }

            fn erase_deliveries_of(&mut self, subject_id: &str, note: &str) -> QueryResult<()> {
                diesel::update(
                    webhook_deliveries::table.filter(webhook_deliveries::subject_id.eq(subject_id)),
                )
                .set((
                    webhook_deliveries::body.eq(None::<String>),
                    webhook_deliveries::next_attempt_at.eq(None::<i64>),
                    webhook_deliveries::last_error.eq(Some(note)),
                ))
                .execute(self)
                .map(drop)
            }
        }
    };
}

impl_webhook_rows!(SqliteConnection);
impl_webhook_rows!(PgConnection);
