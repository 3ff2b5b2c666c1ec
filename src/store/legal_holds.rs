//! Legal holds put on and lifted (beside their `legal_hold` leaves).

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::{legal_holds, tenants};
use super::{LeafIndex, Repo};

/// A legal hold put on or lifted (beside its `legal_hold` leaf).
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = legal_holds)]
pub struct LegalHoldRow {
    /// Its leaf.
    pub leaf_index: LeafIndex,
    /// Its tenant.
    pub tenant_id: String,
    /// On (put) or off (lifted).
    pub hold_on: bool,
    /// The order's date (`YYYY-MM-DD`).
    pub order_date: String,
    /// The order's reference.
    pub order_reference: String,
    /// When sequenced, Unix ms.
    pub recorded_at: i64,
}

impl Repo<'_> {
    /// Inserts a legal hold's change (and sets the tenant's `legal_hold` to it).
    pub fn insert_legal_hold(&mut self, row: &LegalHoldRow) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::insert_into(legal_holds::table)
                .values(row)
                .execute(c)?;
            diesel::update(tenants::table.find(&row.tenant_id))
                .set(tenants::legal_hold.eq(row.hold_on))
                .execute(c)
                .map(drop)
        })
    }

    /// A tenant's legal holds, in log order.
    pub fn legal_holds(&mut self, tenant_id: &str) -> QueryResult<Vec<LegalHoldRow>> {
        db_run!(self, |c| {
            legal_holds::table
                .filter(legal_holds::tenant_id.eq(tenant_id))
                .order(legal_holds::leaf_index)
                .load(c)
        })
    }

    /// Each tenant with legal holds, and the leaf of its latest.
    pub fn hold_heads(&mut self) -> QueryResult<Vec<(String, Option<LeafIndex>)>> {
        db_run!(self, |c| {
            legal_holds::table
                .group_by(legal_holds::tenant_id)
                .select((
                    legal_holds::tenant_id,
                    diesel::dsl::max(legal_holds::leaf_index),
                ))
                .load(c)
        })
    }
}
