//! The record of regulators' reads.

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::regulator_reads;
use super::Repo;

/// A recorded read by a regulator.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = regulator_reads)]
pub struct RegulatorReadRow {
    /// Id.
    pub id: String,
    /// The tenant whose records were read.
    pub tenant_id: String,
    /// The regulator token's subject.
    pub regulator: String,
    /// What was read (operation name; no personal data).
    pub operation: String,
    /// When, Unix ms.
    pub read_at: i64,
}

impl Repo<'_> {
    /// Records a regulator's read.
    pub fn insert_regulator_read(&mut self, row: &RegulatorReadRow) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::insert_into(regulator_reads::table)
                .values(row)
                .execute(c)
                .map(drop)
        })
    }

    /// A tenant's recorded regulator reads, newest first, at most `limit`.
    pub fn regulator_reads(
        &mut self,
        tenant_id: &str,
        limit: i64,
    ) -> QueryResult<Vec<RegulatorReadRow>> {
        db_run!(self, |c| {
            regulator_reads::table
                .filter(regulator_reads::tenant_id.eq(tenant_id))
                .order((regulator_reads::read_at.desc(), regulator_reads::id))
                .limit(limit)
                .load(c)
        })
    }
}
