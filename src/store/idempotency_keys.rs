//! Idempotency keys: claims of requests in flight and the first answers to replay.

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::idempotency_keys;
use super::{at_most_one, Repo};

/// A stored first answer for an idempotency key.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRow {
    /// Tenant.
    pub tenant_id: String,
    /// The client's key.
    pub key: String,
    /// SHA-256 of the request it answered.
    pub request_sha256: Vec<u8>,
    /// HTTP status.
    pub status: i32,
    /// What the answer is rebuilt from; `None` while the request is in flight.
    pub body: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// The process that holds it while in flight (`Store::owner`), if it could name one.
    pub owner: Option<String>,
}

impl Repo<'_> {
    /// The stored answer for an idempotency key.
    pub fn idempotent_answer(
        &mut self,
        tenant_id: &str,
        key: &str,
    ) -> QueryResult<Option<IdempotencyRow>> {
        db_run!(self, |c| {
            idempotency_keys::table
                .find((tenant_id, key))
                .load(c)
                .map(at_most_one)
        })
    }

    /// Reserves an idempotency key (body `None`); false if the key exists.
    pub fn reserve_idempotency_key(&mut self, row: &IdempotencyRow) -> QueryResult<bool> {
        db_run!(self, |c| {
            let inserted = diesel::insert_into(idempotency_keys::table)
                .values(row)
                .on_conflict((idempotency_keys::tenant_id, idempotency_keys::key))
                .do_nothing()
                .execute(c)?;
            Ok(inserted == 1)
        })
    }

    /// Restarts an abandoned reservation (still without body, and created before
    /// `stale_before` or held by `gone_owner`) for `owner`.
    pub fn take_over_idempotency_key(
        &mut self,
        tenant_id: &str,
        key: &str,
        stale_before: i64,
        gone_owner: Option<&str>,
        now: i64,
        owner: Option<&str>,
    ) -> QueryResult<bool> {
        db_run!(self, |c| {
            // `owner = NULL` is never true: a NULL owner waits for the timeout.
            let abandoned = idempotency_keys::created_at
                .lt(stale_before)
                .or(idempotency_keys::owner.eq(gone_owner));
            let updated = diesel::update(
                idempotency_keys::table.filter(
                    idempotency_keys::tenant_id
                        .eq(tenant_id)
                        .and(idempotency_keys::key.eq(key))
                        .and(idempotency_keys::body.is_null())
                        .and(abandoned),
                ),
            )
            .set((
                idempotency_keys::created_at.eq(now),
                idempotency_keys::owner.eq(owner),
            ))
            .execute(c)?;
            Ok(updated == 1)
        })
    }

    /// Completes a reservation with its answer, if it is still the claim made at `claimed_at`
    /// (not taken over since, not completed); whether it was.
    pub fn complete_idempotency_key(
        &mut self,
        tenant_id: &str,
        key: &str,
        claimed_at: i64,
        status: i32,
        body: &str,
    ) -> QueryResult<bool> {
        db_run!(self, |c| {
            let updated = diesel::update(
                idempotency_keys::table.find((tenant_id, key)).filter(
                    idempotency_keys::created_at
                        .eq(claimed_at)
                        .and(idempotency_keys::body.is_null()),
                ),
            )
            .set((
                idempotency_keys::status.eq(status),
                idempotency_keys::body.eq(Some(body)),
            ))
            .execute(c)?;
            Ok(updated == 1)
        })
    }

    /// Drops a reservation that got no answer (the request failed; nothing was recorded), if it
    /// is still the claim made at `claimed_at`.
    pub fn release_idempotency_key(
        &mut self,
        tenant_id: &str,
        key: &str,
        claimed_at: i64,
    ) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::delete(
                idempotency_keys::table.filter(
                    idempotency_keys::tenant_id
                        .eq(tenant_id)
                        .and(idempotency_keys::key.eq(key))
                        .and(idempotency_keys::created_at.eq(claimed_at))
                        .and(idempotency_keys::body.is_null()),
                ),
            )
            .execute(c)
            .map(drop)
        })
    }

    /// Deletes idempotency keys reserved before `before` (Unix ms); returns how many.
    pub fn purge_idempotency_keys(&mut self, before: i64) -> QueryResult<usize> {
        db_run!(self, |c| {
            diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(before)))
                .execute(c)
        })
    }
}
