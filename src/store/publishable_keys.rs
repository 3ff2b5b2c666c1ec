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
