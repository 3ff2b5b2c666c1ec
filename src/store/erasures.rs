//! Erasures (beside their `erasure` leaves).

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::erasures;
use super::{LeafIndex, Repo};

/// An erasure (beside its `erasure` leaf).
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = erasures)]
pub struct ErasureRow {
    /// Its leaf.
    pub leaf_index: LeafIndex,
    /// Its tenant.
    pub tenant_id: String,
    /// The subject erased.
    pub subject_id: String,
    /// When sequenced, Unix ms.
    pub recorded_at: i64,
}

impl Repo<'_> {
    /// Inserts an erasure.
    pub fn insert_erasure(&mut self, row: &ErasureRow) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::insert_into(erasures::table)
                .values(row)
                .execute(c)
                .map(drop)
        })
    }

    /// A subject's erasures, in log order.
    pub fn subject_erasures(&mut self, subject_id: &str) -> QueryResult<Vec<ErasureRow>> {
        db_run!(self, |c| {
            erasures::table
                .filter(erasures::subject_id.eq(subject_id))
                .order(erasures::leaf_index)
                .load(c)
        })
    }
}
