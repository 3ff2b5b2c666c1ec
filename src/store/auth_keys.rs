//! Token-signing keys.

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::auth_keys;
use super::Repo;

/// A token-signing key.
#[derive(Debug, Clone, Queryable)]
pub struct AuthKeyRow {
    /// Key id (JWT `kid`).
    pub kid: String,
    /// Ed25519 seed.
    pub seed: Vec<u8>,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl Repo<'_> {
    /// Unretired keys, oldest first.
    pub fn active_auth_keys(&mut self) -> QueryResult<Vec<AuthKeyRow>> {
        db_run!(self, |c| {
            auth_keys::table
                .filter(auth_keys::retired_at.is_null())
                .order((auth_keys::created_at, auth_keys::kid))
                .select((auth_keys::kid, auth_keys::seed, auth_keys::created_at))
                .load(c)
        })
    }

    /// Stores a new key.
    pub fn insert_auth_key(&mut self, kid: &str, seed: &[u8], now: i64) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::insert_into(auth_keys::table)
                .values((
                    auth_keys::kid.eq(kid),
                    auth_keys::seed.eq(seed),
                    auth_keys::created_at.eq(now),
                ))
                .execute(c)?;
            Ok(())
        })
    }

    /// Retires a key; false if there was no such unretired key.
    pub fn retire_auth_key(&mut self, kid: &str, now: i64) -> QueryResult<bool> {
        db_run!(self, |c| {
            let n = diesel::update(
                auth_keys::table
                    .filter(auth_keys::kid.eq(kid).and(auth_keys::retired_at.is_null())),
            )
            .set(auth_keys::retired_at.eq(now))
            .execute(c)?;
            Ok(n == 1)
        })
    }
}
