//! Bearer tokens' rows: one per issued token, for listing and revocation. Not the secrets.

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::api_tokens;
use super::{at_most_one, Repo};

/// An issued token.
#[derive(Debug, Clone, Queryable, Insertable, Selectable)]
#[diesel(table_name = api_tokens)]
pub struct ApiTokenRow {
    /// The id (the JWT's `jti`), `tok_…`, ordered by creation.
    pub id: String,
    /// A name its holder chose.
    pub name: String,
    /// `admin`, `sender` or `regulator`.
    pub role: String,
    /// The tenant of a sender token.
    pub tenant_id: Option<String>,
    /// Who issued it: the issuing token's id, or `operator` (the command line).
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub expires_at: i64,
    /// Unix ms, once revoked.
    pub revoked_at: Option<i64>,
    /// The token that issued it (it ends with that one).
    pub parent_id: Option<String>,
}

impl Repo<'_> {
    /// Stores a new token's row.
    pub fn insert_api_token(&mut self, row: &ApiTokenRow) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::insert_into(api_tokens::table)
                .values(row)
                .execute(c)
                .map(drop)
        })
    }

    /// A token's row.
    pub fn api_token(&mut self, id: &str) -> QueryResult<Option<ApiTokenRow>> {
        db_run!(self, |c| {
            api_tokens::table
                .filter(api_tokens::id.eq(id))
                .select(ApiTokenRow::as_select())
                .load(c)
                .map(at_most_one)
        })
    }

    /// When a token was revoked: `None` for an unknown id, `Some(None)` for a live one.
    pub fn api_token_revoked_at(&mut self, id: &str) -> QueryResult<Option<Option<i64>>> {
        db_run!(self, |c| {
            api_tokens::table
                .filter(api_tokens::id.eq(id))
                .select(api_tokens::revoked_at)
                .load(c)
                .map(at_most_one)
        })
    }

    /// A page of tokens (of one tenant, or all), by id, after the id `after`.
    pub fn api_tokens(
        &mut self,
        tenant_id: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> QueryResult<Vec<ApiTokenRow>> {
        db_run!(self, |c| {
            let mut query = api_tokens::table
                .select(ApiTokenRow::as_select())
                .order(api_tokens::id)
                .limit(limit)
                .into_boxed();
            if let Some(tenant) = tenant_id {
                query = query.filter(api_tokens::tenant_id.eq(tenant));
            }
            if let Some(after) = after {
                query = query.filter(api_tokens::id.gt(after));
            }
            query.load(c)
        })
    }

    /// Revokes the unrevoked tokens issued by any of `parents`; returns their ids.
    pub fn revoke_children(&mut self, parents: &[String], now: i64) -> QueryResult<Vec<String>> {
        db_run!(self, |c| {
            let live = api_tokens::table.filter(
                api_tokens::parent_id
                    .eq_any(parents)
                    .and(api_tokens::revoked_at.is_null()),
            );
            let ids: Vec<String> = live.select(api_tokens::id).load(c)?;
            diesel::update(api_tokens::table.filter(api_tokens::id.eq_any(&ids)))
                .set(api_tokens::revoked_at.eq(now))
                .execute(c)?;
            Ok(ids)
        })
    }

    /// Revokes a token; false if it was revoked already.
    pub fn revoke_api_token(&mut self, id: &str, now: i64) -> QueryResult<bool> {
        db_run!(self, |c| {
            let n = diesel::update(
                api_tokens::table
                    .filter(api_tokens::id.eq(id).and(api_tokens::revoked_at.is_null())),
            )
            .set(api_tokens::revoked_at.eq(now))
            .execute(c)?;
            Ok(n == 1)
        })
    }
}
