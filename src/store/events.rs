//! Consent events (beside their `consent_event` leaves).

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::{events, subjects};
use super::{at_most_one, LeafIndex, Repo, ROWS_PER_STATEMENT};

/// A consent event.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = events)]
pub struct EventRow {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Subject.
    pub subject_id: String,
    /// `opt_in`, `opt_out`, `confirm`.
    pub kind: String,
    /// JSON: a list of purposes or `"all"`.
    pub purposes: String,
    /// Legal basis.
    pub basis: String,
    /// Collection method.
    pub method: String,
    /// Collection point id.
    pub collection_point: Option<String>,
    /// JSON: who received it.
    pub received_by: String,
    /// Claimed time, Unix ms.
    pub occurred_at: i64,
    /// Server time, Unix ms.
    pub recorded_at: i64,
    /// Its leaf.
    pub leaf_index: LeafIndex,
    /// The subject's previous event's leaf.
    pub prev_leaf_index: Option<LeafIndex>,
    /// An opt-in awaiting the person's confirmation.
    pub confirmation_required: bool,
    /// JSON evidence (erasable).
    pub evidence: Option<String>,
}

impl Repo<'_> {
    /// An event by id.
    pub fn event(&mut self, id: &str) -> QueryResult<Option<EventRow>> {
        db_run!(self, |c| {
            events::table.find(id).load(c).map(at_most_one)
        })
    }

    /// Inserts events, a multi-row statement per [`ROWS_PER_STATEMENT`].
    pub fn insert_events(&mut self, rows: &[EventRow]) -> QueryResult<()> {
        db_run!(self, |c| {
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                diesel::insert_into(events::table)
                    .values(chunk)
                    .execute(c)?;
            }
            Ok(())
        })
    }

    /// A subject's events, oldest first.
    pub fn subject_events(&mut self, subject_id: &str) -> QueryResult<Vec<EventRow>> {
        db_run!(self, |c| {
            events::table
                .filter(events::subject_id.eq(subject_id))
                .order(events::leaf_index)
                .load(c)
        })
    }

    /// Events by id (at most 500 per call).
    pub fn events_by_ids(&mut self, ids: &[String]) -> QueryResult<Vec<EventRow>> {
        db_run!(self, |c| {
            events::table.filter(events::id.eq_any(ids)).load(c)
        })
    }

    /// A tenant's events after a leaf index (all, without one), oldest first, with the subjects' addresses.
    pub fn tenant_events(
        &mut self,
        tenant_id: &str,
        after: Option<u64>,
        limit: i64,
    ) -> QueryResult<Vec<(EventRow, Option<String>)>> {
        db_run!(self, |c| {
            events::table
                .inner_join(subjects::table)
                .filter(
                    events::tenant_id
                        .eq(tenant_id)
                        .and(events::leaf_index.ge(LeafIndex::first_after(after))),
                )
                .order(events::leaf_index)
                .limit(limit)
                .select((events::all_columns, subjects::address))
                .load(c)
        })
    }
}
