//! Queries for the token-signing keys. Written once, compiled for both backends.

use diesel::prelude::*;
use diesel::{PgConnection, QueryResult, SqliteConnection};

use super::schema::auth_keys;

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

/// Queries for token-signing keys.
pub trait AuthRows {
    /// Unretired keys, oldest first.
    fn active_auth_keys(&mut self) -> QueryResult<Vec<AuthKeyRow>>;
    /// Stores a new key.
    fn insert_auth_key(&mut self, kid: &str, seed: &[u8], now: i64) -> QueryResult<()>;
    /// Retires a key; false if there was no such unretired key.
    fn retire_auth_key(&mut self, kid: &str, now: i64) -> QueryResult<bool>;
}

macro_rules! impl_auth_rows {
    ($conn:ty) => {
        impl AuthRows for $conn {
            fn active_auth_keys(&mut self) -> QueryResult<Vec<AuthKeyRow>> {
                auth_keys::table
                    .filter(auth_keys::retired_at.is_null())
                    .order((auth_keys::created_at, auth_keys::kid))
                    .select((auth_keys::kid, auth_keys::seed, auth_keys::created_at))
                    .load(self)
            }

            fn insert_auth_key(&mut self, kid: &str, seed: &[u8], now: i64) -> QueryResult<()> {
                diesel::insert_into(auth_keys::table)
                    .values((
                        auth_keys::kid.eq(kid),
                        auth_keys::seed.eq(seed),
                        auth_keys::created_at.eq(now),
                    ))
                    .execute(self)?;
                Ok(())
            }

            fn retire_auth_key(&mut self, kid: &str, now: i64) -> QueryResult<bool> {
                let n = diesel::update(
                    auth_keys::table
                        .filter(auth_keys::kid.eq(kid).and(auth_keys::retired_at.is_null())),
                )
                .set(auth_keys::retired_at.eq(now))
                .execute(self)?;
                Ok(n == 1)
            }
        }
    };
}

impl_auth_rows!(SqliteConnection);
impl_auth_rows!(PgConnection);
