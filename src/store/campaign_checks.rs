//! Recorded campaign checks (beside their `campaign_check` leaves).

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::campaign_checks;
use super::{at_most_one, LeafIndex, Repo};

/// A recorded campaign check (beside its `campaign_check` leaf).
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = campaign_checks)]
pub struct CampaignCheckRow {
    /// Id (`chk_…`).
    pub id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// The purpose checked.
    pub purpose: String,
    /// Its leaf.
    pub leaf_index: LeafIndex,
    /// When sequenced, Unix ms.
    pub recorded_at: i64,
    /// How many entries.
    pub addresses: i64,
    /// Hex root over the entries.
    pub root: String,
    /// The 41-byte entries, concatenated in key order.
    pub entries: Vec<u8>,
}

impl Repo<'_> {
    /// Inserts a recorded campaign check.
    pub fn insert_campaign_check(&mut self, row: &CampaignCheckRow) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::insert_into(campaign_checks::table)
                .values(row)
                .execute(c)
                .map(drop)
        })
    }

    /// A tenant's recorded campaign check.
    pub fn campaign_check(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> QueryResult<Option<CampaignCheckRow>> {
        db_run!(self, |c| {
            campaign_checks::table
                .filter(
                    campaign_checks::id
                        .eq(id)
                        .and(campaign_checks::tenant_id.eq(tenant_id)),
                )
                .load(c)
                .map(at_most_one)
        })
    }
}
