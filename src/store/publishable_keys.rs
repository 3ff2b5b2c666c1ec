//! Publishable keys (the browser signup's credentials).

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::publishable_keys;
use super::{at_most_one, Repo};

/// A publishable key.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = publishable_keys)]
pub struct PublishableKeyRow {
    /// The key (`pk_…`).
    pub id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// JSON list of allowed origins.
    pub origins: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, once revoked.
    pub revoked_at: Option<i64>,
}

impl Repo<'_> {
    /// Stores a publishable key.
    pub fn insert_publishable_key(&mut self, row: &PublishableKeyRow) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::insert_into(publishable_keys::table)
                .values(row)
                .execute(c)
                .map(drop)
        })
    }

    /// Revokes a tenant's publishable key; false if there was no such unrevoked key.
    pub fn revoke_publishable_key(
        &mut self,
        tenant_id: &str,
        id: &str,
        now: i64,
    ) -> QueryResult<bool> {
        db_run!(self, |c| {
            let n = diesel::update(
                publishable_keys::table.filter(
                    publishable_keys::id
                        .eq(id)
                        .and(publishable_keys::tenant_id.eq(tenant_id))
                        .and(publishable_keys::revoked_at.is_null()),
                ),
            )
            .set(publishable_keys::revoked_at.eq(now))
            .execute(c)?;
            Ok(n == 1)
        })
    }

    /// A page of a tenant's publishable keys, revoked ones too, oldest first: those after the
    /// key `after_id` created at `after_at` (keys are random, so the time orders them).
    pub fn tenant_publishable_keys(
        &mut self,
        tenant_id: &str,
        (after_at, after_id): (i64, &str),
        limit: i64,
    ) -> QueryResult<Vec<PublishableKeyRow>> {
        use publishable_keys::{created_at, id};
        db_run!(self, |c| {
            publishable_keys::table
                .filter(publishable_keys::tenant_id.eq(tenant_id))
                .filter(
                    created_at
                        .gt(after_at)
                        .or(created_at.eq(after_at).and(id.gt(after_id))),
                )
                .order((created_at, id))
                .limit(limit)
                .load(c)
        })
    }

    /// An unrevoked publishable key.
    pub fn publishable_key(&mut self, id: &str) -> QueryResult<Option<PublishableKeyRow>> {
        db_run!(self, |c| {
            publishable_keys::table
                .filter(
                    publishable_keys::id
                        .eq(id)
                        .and(publishable_keys::revoked_at.is_null()),
                )
                .load(c)
                .map(at_most_one)
        })
    }
}
