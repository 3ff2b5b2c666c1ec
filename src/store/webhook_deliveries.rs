//! Webhook deliveries: the outbox, which is also the delivery log.

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::webhook_deliveries;
use super::{Repo, ROWS_PER_STATEMENT};

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

impl Repo<'_> {
    /// Inserts deliveries, a multi-row statement per [`ROWS_PER_STATEMENT`].
    pub fn insert_deliveries(&mut self, rows: &[DeliveryRow]) -> QueryResult<()> {
        db_run!(self, |c| {
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                diesel::insert_into(webhook_deliveries::table)
                    .values(chunk)
                    .execute(c)?;
            }
            Ok(())
        })
    }

    /// A delivery by id.
    pub fn delivery(&mut self, id: &str) -> QueryResult<Option<DeliveryRow>> {
        db_run!(self, |c| {
            webhook_deliveries::table
                .find(id)
                .load(c)
                .map(super::at_most_one)
        })
    }

    /// Deliveries still to send (due, or backing off before a retry), of every tenant.
    pub fn pending_delivery_count(&mut self) -> QueryResult<i64> {
        db_run!(self, |c| {
            webhook_deliveries::table
                .filter(webhook_deliveries::next_attempt_at.is_not_null())
                .count()
                .get_result(c)
        })
    }

    /// Deliveries due at `now`, the most overdue first, at most `limit`.
    pub fn due_deliveries(&mut self, now: i64, limit: i64) -> QueryResult<Vec<DeliveryRow>> {
        db_run!(self, |c| {
            webhook_deliveries::table
                .filter(webhook_deliveries::next_attempt_at.le(now))
                .order((webhook_deliveries::next_attempt_at, webhook_deliveries::id))
                .limit(limit)
                .load(c)
        })
    }

    /// Moves a delivery due at `due_at` to `until` (a sender's lease); false if another got it.
    pub fn lease_delivery(&mut self, id: &str, due_at: i64, until: i64) -> QueryResult<bool> {
        db_run!(self, |c| {
            let n = diesel::update(
                webhook_deliveries::table.filter(
                    webhook_deliveries::id
                        .eq(id)
                        .and(webhook_deliveries::next_attempt_at.eq(due_at)),
                ),
            )
            .set(webhook_deliveries::next_attempt_at.eq(until))
            .execute(c)?;
            Ok(n == 1)
        })
    }

    /// Records an attempt; a delivery that is done (delivered or given up) loses its body.
    pub fn record_attempt(&mut self, id: &str, attempt: &Attempt) -> QueryResult<()> {
        db_run!(self, |c| {
            // Once done (delivered or given up) the address in the body is not kept.
            let body_kept = attempt.next_attempt_at.is_some();
            if !body_kept {
                diesel::update(webhook_deliveries::table.find(id))
                    .set(webhook_deliveries::body.eq(None::<String>))
                    .execute(c)?;
            }
            diesel::update(webhook_deliveries::table.find(id))
                .set((
                    webhook_deliveries::attempts.eq(attempt.attempts),
                    webhook_deliveries::next_attempt_at.eq(attempt.next_attempt_at),
                    webhook_deliveries::delivered_at.eq(attempt.delivered_at),
                    webhook_deliveries::last_status.eq(attempt.status),
                    webhook_deliveries::last_error.eq(&attempt.error),
                ))
                .execute(c)
                .map(drop)
        })
    }

    /// A webhook's deliveries with ids after `after`, oldest first, at most `limit`.
    pub fn deliveries(
        &mut self,
        webhook_id: &str,
        after: &str,
        limit: i64,
    ) -> QueryResult<Vec<DeliveryRow>> {
        db_run!(self, |c| {
            webhook_deliveries::table
                .filter(
                    webhook_deliveries::webhook_id
                        .eq(webhook_id)
                        .and(webhook_deliveries::id.gt(after)),
                )
                .order(webhook_deliveries::id)
                .limit(limit)
                .load(c)
        })
    }

    /// Erases the bodies (addresses) of a subject's deliveries and stops their retries, noting
    /// why in `last_error`.
    pub fn erase_deliveries_of(&mut self, subject_id: &str, note: &str) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::update(
                webhook_deliveries::table.filter(webhook_deliveries::subject_id.eq(subject_id)),
            )
            .set((
                webhook_deliveries::body.eq(None::<String>),
                webhook_deliveries::next_attempt_at.eq(None::<i64>),
                webhook_deliveries::last_error.eq(Some(note)),
            ))
            .execute(c)
            .map(drop)
        })
    }
}
