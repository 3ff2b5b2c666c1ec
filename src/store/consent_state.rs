//! The consent state: the latest effect per subject and purpose, written from the rules' result.

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::{consent_state, subjects};
use super::{LeafIndex, Repo, ROWS_PER_STATEMENT};

/// The latest effect for one subject and purpose.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = consent_state)]
pub struct StateEntryRow {
    /// Subject.
    pub subject_id: String,
    /// Purpose, or `*` for all.
    pub purpose: String,
    /// `granted`, `pending` or `withdrawn`.
    pub status: String,
    /// Legal basis of the event.
    pub basis: String,
    /// Since (recorded_at of the event), Unix ms.
    pub since: i64,
    /// The event.
    pub event_id: String,
    /// Its leaf.
    pub leaf_index: LeafIndex,
    /// The deciding event's claimed time, Unix ms: a stale opt-in cannot beat a newer opt-out.
    pub occurred_at: i64,
}

impl Repo<'_> {
    /// The send decision's rows in one query: the state rows for `purpose` and for all purposes
    /// (`*`) of the subject with this address.
    pub fn decision_rows(
        &mut self,
        tenant_id: &str,
        address: &str,
        purpose: &str,
    ) -> QueryResult<Vec<StateEntryRow>> {
        db_run!(self, |c| {
            subjects::table
                .inner_join(consent_state::table.on(consent_state::subject_id.eq(subjects::id)))
                .filter(
                    subjects::tenant_id
                        .eq(tenant_id)
                        .and(subjects::address.eq(address)),
                )
                .filter(
                    consent_state::purpose
                        .eq(purpose)
                        .or(consent_state::purpose.eq("*")),
                )
                .select(consent_state::all_columns)
                .load(c)
        })
    }

    /// A campaign pre-flight's rows in one query: for each subject of the tenant with one of
    /// these addresses (at most 500 per call), its address and its state rows for `purpose` and
    /// for all purposes (`*`); a subject with neither comes once, with `None`.
    pub fn check_rows(
        &mut self,
        tenant_id: &str,
        addresses: &[String],
        purpose: &str,
    ) -> QueryResult<Vec<(String, Option<StateEntryRow>)>> {
        db_run!(self, |c| {
            subjects::table
                .left_join(
                    consent_state::table.on(consent_state::subject_id.eq(subjects::id).and(
                        consent_state::purpose
                            .eq(purpose)
                            .or(consent_state::purpose.eq("*")),
                    )),
                )
                .filter(
                    subjects::tenant_id
                        .eq(tenant_id)
                        .and(subjects::address.eq_any(addresses)),
                )
                .select((
                    subjects::address.assume_not_null(),
                    consent_state::all_columns.nullable(),
                ))
                .load(c)
        })
    }

    /// The state rows of these subjects for these purposes (at most 500 subjects per call).
    pub fn state_entries_of(
        &mut self,
        subject_ids: &[String],
        purposes: &[String],
    ) -> QueryResult<Vec<StateEntryRow>> {
        db_run!(self, |c| {
            consent_state::table
                .filter(
                    consent_state::subject_id
                        .eq_any(subject_ids)
                        .and(consent_state::purpose.eq_any(purposes)),
                )
                .load(c)
        })
    }

    /// The state rows of a subject for these purposes.
    pub fn state_entries(
        &mut self,
        subject_id: &str,
        purposes: &[String],
    ) -> QueryResult<Vec<StateEntryRow>> {
        db_run!(self, |c| {
            consent_state::table
                .filter(
                    consent_state::subject_id
                        .eq(subject_id)
                        .and(consent_state::purpose.eq_any(purposes)),
                )
                .load(c)
        })
    }

    /// All state rows of a subject.
    pub fn all_state_entries(&mut self, subject_id: &str) -> QueryResult<Vec<StateEntryRow>> {
        db_run!(self, |c| {
            consent_state::table
                .filter(consent_state::subject_id.eq(subject_id))
                .order(consent_state::purpose)
                .load(c)
        })
    }

    /// All state rows of these subjects (at most 500 per call).
    pub fn all_state_entries_of(
        &mut self,
        subject_ids: &[String],
    ) -> QueryResult<Vec<StateEntryRow>> {
        db_run!(self, |c| {
            consent_state::table
                .filter(consent_state::subject_id.eq_any(subject_ids))
                .load(c)
        })
    }

    /// Inserts or replaces state rows. On PostgreSQL a multi-row upsert per
    /// [`ROWS_PER_STATEMENT`] (a round trip each); on SQLite, where diesel builds no multi-row
    /// upsert of these rows and a statement costs no round trip, an update and if need be an
    /// insert per row (both stay prepared: diesel never caches an upsert's).
    pub fn put_state_entries(&mut self, rows: &[StateEntryRow]) -> QueryResult<()> {
        use diesel::upsert::excluded;
        match self {
            Repo::Sqlite(c) => {
                for row in rows {
                    let updated =
                        diesel::update(consent_state::table.find((&row.subject_id, &row.purpose)))
                            .set((
                                consent_state::status.eq(&row.status),
                                consent_state::basis.eq(&row.basis),
                                consent_state::since.eq(row.since),
                                consent_state::event_id.eq(&row.event_id),
                                consent_state::leaf_index.eq(row.leaf_index),
                                consent_state::occurred_at.eq(row.occurred_at),
                            ))
                            .execute(*c)?;
                    if updated == 0 {
                        diesel::insert_into(consent_state::table)
                            .values(row)
                            .execute(*c)?;
                    }
                }
            }
            Repo::Postgres(c) => {
                for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                    diesel::insert_into(consent_state::table)
                        .values(chunk)
                        .on_conflict((consent_state::subject_id, consent_state::purpose))
                        .do_update()
                        .set((
                            consent_state::status.eq(excluded(consent_state::status)),
                            consent_state::basis.eq(excluded(consent_state::basis)),
                            consent_state::since.eq(excluded(consent_state::since)),
                            consent_state::event_id.eq(excluded(consent_state::event_id)),
                            consent_state::leaf_index.eq(excluded(consent_state::leaf_index)),
                            consent_state::occurred_at.eq(excluded(consent_state::occurred_at)),
                        ))
                        .execute(*c)?;
                }
            }
        }
        Ok(())
    }
}
