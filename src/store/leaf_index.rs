//! [`LeafIndex`]: a position in the log as the database stores it. The one place where the
//! log's `u64` positions meet SQL's signed `BIGINT`: a value that does not fit either way is an
//! error of the query, never a wrapped number. Nothing else here.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::Pg;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::BigInt;
use diesel::sqlite::Sqlite;

/// A position in the log — a leaf's index, a tree size (the index the next leaf takes) or a
/// tile's index — stored as a non-negative `BIGINT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = BigInt)]
pub struct LeafIndex(pub u64);

impl LeafIndex {
    /// The position.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The first position after `after` (0 without one) as a lower bound of a query, at most
    /// the largest a `BIGINT` holds: a client may name any `u64`, and no leaf or tree is that
    /// far, so the page is empty rather than the query an error.
    pub fn first_after(after: Option<u64>) -> Self {
        Self(
            after
                .map_or(0, |a| a.saturating_add(1))
                .min(i64::MAX as u64),
        )
    }

    fn to_i64(self) -> Result<i64, Box<dyn std::error::Error + Send + Sync>> {
        i64::try_from(self.0)
            .map_err(|_| format!("leaf index {} is beyond SQL's BIGINT", self.0).into())
    }
}

impl std::fmt::Display for LeafIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u64> for LeafIndex {
    fn from(index: u64) -> Self {
        Self(index)
    }
}

impl From<LeafIndex> for u64 {
    fn from(index: LeafIndex) -> Self {
        index.0
    }
}

impl ToSql<BigInt, Sqlite> for LeafIndex {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.to_i64()?);
        Ok(serialize::IsNull::No)
    }
}

impl ToSql<BigInt, Pg> for LeafIndex {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        let value = self.to_i64()?;
        <i64 as ToSql<BigInt, Pg>>::to_sql(&value, &mut out.reborrow())
    }
}

impl<DB: Backend> FromSql<BigInt, DB> for LeafIndex
where
    i64: FromSql<BigInt, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        let value = i64::from_sql(bytes)?;
        u64::try_from(value)
            .map(Self)
            .map_err(|_| format!("a stored leaf index is negative ({value})").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lower_bound_after_any_position_fits_a_bigint() {
        assert_eq!(LeafIndex::first_after(None), LeafIndex(0));
        assert_eq!(LeafIndex::first_after(Some(0)), LeafIndex(1));
        for after in [i64::MAX as u64 - 1, i64::MAX as u64, u64::MAX] {
            assert!(
                LeafIndex::first_after(Some(after)).to_i64().is_ok(),
                "{after}"
            );
        }
    }

    #[test]
    fn an_index_beyond_bigint_is_refused_not_wrapped() {
        assert!(LeafIndex(i64::MAX as u64).to_i64().is_ok());
        assert!(LeafIndex(i64::MAX as u64 + 1).to_i64().is_err());
    }
}
