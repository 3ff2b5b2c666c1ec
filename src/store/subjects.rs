//! Subjects: one address of one tenant, its salt, the key leaves name it by, and the head of its chain.

use consent_ledger_sdk::consent::Status;
use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::{consent_state, events, subjects};
use super::{at_most_one, LeafIndex, Repo, ROWS_PER_STATEMENT};

/// A subject (one address of one tenant).
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = subjects)]
pub struct SubjectRow {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Normalised address; `None` once erased.
    pub address: Option<String>,
    /// Salt of its evidence hashes (and of a salted commitment); `None` once erased.
    pub salt: Option<Vec<u8>>,
    /// The key leaves name the subject by: its VRF label, or (subjects from before the log's
    /// VRF key) its salted commitment.
    pub commitment: Vec<u8>,
    /// Leaf index of the latest event.
    pub last_leaf_index: Option<LeafIndex>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, once erased.
    pub erased_at: Option<i64>,
    /// `commitment` is a VRF label (kept after erasure: the label's state outlives the address).
    pub vrf: bool,
}

/// A subject with a refusal: its id, its address (`None` once erased) and its key.
pub type RefusingSubject = (String, Option<String>, Vec<u8>);

impl Repo<'_> {
    /// A subject by id.
    pub fn subject(&mut self, id: &str) -> QueryResult<Option<SubjectRow>> {
        db_run!(self, |c| {
            subjects::table.find(id).load(c).map(at_most_one)
        })
    }

    /// The subject with this address.
    pub fn subject_by_address(
        &mut self,
        tenant_id: &str,
        address: &str,
    ) -> QueryResult<Option<SubjectRow>> {
        db_run!(self, |c| {
            subjects::table
                .filter(
                    subjects::tenant_id
                        .eq(tenant_id)
                        .and(subjects::address.eq(address)),
                )
                .load(c)
                .map(at_most_one)
        })
    }

    /// The subjects with these addresses (at most 500 per call).
    pub fn subjects_by_addresses(
        &mut self,
        tenant_id: &str,
        addresses: &[String],
    ) -> QueryResult<Vec<SubjectRow>> {
        db_run!(self, |c| {
            subjects::table
                .filter(
                    subjects::tenant_id
                        .eq(tenant_id)
                        .and(subjects::address.eq_any(addresses)),
                )
                .load(c)
        })
    }

    /// The labelled subjects of a tenant with these labels (at most 500 per call), erased or not.
    /// By the unique key alone, the tenant checked after: with `tenant_id = ?` in the query,
    /// SQLite's planner takes the (tenant, address) index for a long `IN` list and reads every
    /// subject of the tenant.
    pub fn subjects_by_labels(
        &mut self,
        tenant_id: &str,
        labels: &[Vec<u8>],
    ) -> QueryResult<Vec<SubjectRow>> {
        let rows = self.subjects_with_labels(labels)?;
        Ok(rows
            .into_iter()
            .filter(|s| s.tenant_id == tenant_id)
            .collect())
    }

    /// The labelled subjects with these labels, of any tenant (at most 500 per call).
    pub fn subjects_with_labels(&mut self, labels: &[Vec<u8>]) -> QueryResult<Vec<SubjectRow>> {
        db_run!(self, |c| {
            subjects::table
                .filter(subjects::vrf.and(subjects::commitment.eq_any(labels)))
                .load(c)
        })
    }

    /// The subjects with these ids (at most 500 per call).
    pub fn subjects_by_ids(&mut self, ids: &[String]) -> QueryResult<Vec<SubjectRow>> {
        db_run!(self, |c| {
            subjects::table.filter(subjects::id.eq_any(ids)).load(c)
        })
    }

    /// The subject a VRF label names.
    pub fn subject_by_label(&mut self, label: &[u8]) -> QueryResult<Option<SubjectRow>> {
        db_run!(self, |c| {
            subjects::table
                .filter(subjects::commitment.eq(label).and(subjects::vrf))
                .load(c)
                .map(at_most_one)
        })
    }

    /// Ids of subjects from before labels (a salted commitment) that still have their address,
    /// ascending, after `after`, at most `limit`: those the relabelling has still to link.
    pub fn salted_subjects(&mut self, after: &str, limit: i64) -> QueryResult<Vec<String>> {
        db_run!(self, |c| {
            subjects::table
                .filter(
                    subjects::vrf
                        .eq(false)
                        .and(subjects::address.is_not_null())
                        .and(subjects::id.gt(after)),
                )
                .select(subjects::id)
                .order(subjects::id)
                .limit(limit)
                .load(c)
        })
    }

    /// Subjects (id, address) of a tenant with a `withdrawn` row for one of `purposes`, ids
    /// after `after`, ascending, at most `limit`.
    pub fn withdrawn_subjects(
        &mut self,
        tenant_id: &str,
        purposes: &[String],
        after: &str,
        limit: i64,
    ) -> QueryResult<Vec<RefusingSubject>> {
        db_run!(self, |c| {
            subjects::table
                .inner_join(consent_state::table.on(consent_state::subject_id.eq(subjects::id)))
                .filter(subjects::tenant_id.eq(tenant_id))
                .filter(subjects::id.gt(after))
                .filter(consent_state::status.eq(Status::Withdrawn.as_str()))
                .filter(consent_state::purpose.eq_any(purposes))
                .select((subjects::id, subjects::address, subjects::commitment))
                .distinct()
                .order(subjects::id)
                .limit(limit)
                .load(c)
        })
    }

    /// Whether any subject of the tenant was erased (then an unknown address may be an erased
    /// one, found by its label).
    pub fn has_erased(&mut self, tenant_id: &str) -> QueryResult<bool> {
        db_run!(self, |c| {
            diesel::select(diesel::dsl::exists(
                subjects::table.filter(
                    subjects::tenant_id
                        .eq(tenant_id)
                        .and(subjects::erased_at.is_not_null()),
                ),
            ))
            .get_result(c)
        })
    }

    /// Inserts subjects, a multi-row statement per [`ROWS_PER_STATEMENT`].
    pub fn insert_subjects(&mut self, rows: &[SubjectRow]) -> QueryResult<()> {
        db_run!(self, |c| {
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                diesel::insert_into(subjects::table)
                    .values(chunk)
                    .execute(c)?;
            }
            Ok(())
        })
    }

    /// Records each subject's latest leaf (its row's `last_leaf_index`; nothing else changes).
    /// Every row must exist: one that does not is an error (`NotFound`), never a row made anew.
    /// On PostgreSQL one statement for all (each is a round trip); on SQLite, which has no round
    /// trips, an update per row, prepared once.
    pub fn set_last_leaves(&mut self, heads: &[(String, LeafIndex)]) -> QueryResult<()> {
        let updated = match &mut *self {
            Repo::Postgres(c) if !heads.is_empty() => {
                use diesel::sql_types::{Array, BigInt, Text};
                let (ids, indexes): (Vec<&str>, Vec<LeafIndex>) =
                    heads.iter().map(|(id, i)| (id.as_str(), *i)).unzip();
                diesel::sql_query(
                    "UPDATE subjects SET last_leaf_index = moved.head \
                     FROM unnest($1::text[], $2::bigint[]) AS moved (id, head) \
                     WHERE subjects.id = moved.id",
                )
                .bind::<Array<Text>, _>(ids)
                .bind::<Array<BigInt>, _>(indexes)
                .execute(*c)?
            }
            _ => {
                let mut updated = 0;
                for (id, index) in heads {
                    updated += db_run!(&mut *self, |c| {
                        diesel::update(subjects::table.find(id))
                            .set(subjects::last_leaf_index.eq(index))
                            .execute(c)
                    })?;
                }
                updated
            }
        };
        if updated != heads.len() {
            return Err(diesel::result::Error::NotFound);
        }
        Ok(())
    }

    /// Records the subject's latest leaf (see [`Self::set_last_leaves`]).
    pub fn set_last_leaf(&mut self, subject_id: &str, leaf_index: u64) -> QueryResult<()> {
        self.set_last_leaves(&[(subject_id.to_string(), LeafIndex(leaf_index))])
    }

    /// Names a subject by its label from now on, its latest leaf `leaf_index` (the relabel
    /// leaf, or its old head when it had no chain).
    pub fn relabel_subject(
        &mut self,
        subject_id: &str,
        label: &[u8],
        leaf_index: Option<u64>,
    ) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::update(subjects::table.find(subject_id))
                .set((
                    subjects::commitment.eq(label),
                    subjects::vrf.eq(true),
                    subjects::last_leaf_index.eq(leaf_index.map(LeafIndex)),
                ))
                .execute(c)
                .map(drop)
        })
    }

    /// Gives an erased subject its address back (it came back in a new event), with a fresh salt
    /// for the evidence hashes of its events from now on.
    pub fn restore_address(
        &mut self,
        subject_id: &str,
        address: &str,
        salt: &[u8],
    ) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::update(subjects::table.find(subject_id))
                .set((subjects::address.eq(address), subjects::salt.eq(salt)))
                .execute(c)
                .map(drop)
        })
    }

    /// Erases a subject's personal data: address, salt and evidence. Its consent state rows
    /// stay: they hold no personal data, and a refusal binds after erasure too.
    pub fn erase_subject(&mut self, subject_id: &str, now: i64) -> QueryResult<()> {
        db_run!(self, |c| {
            diesel::update(subjects::table.find(subject_id))
                .set((
                    subjects::address.eq(None::<String>),
                    subjects::salt.eq(None::<Vec<u8>>),
                    subjects::erased_at.eq(Some(now)),
                ))
                .execute(c)?;
            diesel::update(events::table.filter(events::subject_id.eq(subject_id)))
                .set(events::evidence.eq(None::<String>))
                .execute(c)
                .map(drop)
        })
    }

    /// Every subject's tenant and commitment (the tenant whose map its key is in), read when
    /// the log opens.
    pub fn subject_tenants(&mut self) -> QueryResult<Vec<(String, Vec<u8>)>> {
        db_run!(self, |c| {
            subjects::table
                .filter(subjects::last_leaf_index.is_not_null())
                .select((subjects::tenant_id, subjects::commitment))
                .load(c)
        })
    }

    /// Every subject commitment with the index of its latest leaf (the subjects' chain heads):
    /// the contents of the subject map (`log::map`), read when the log opens.
    pub fn subject_heads(&mut self) -> QueryResult<Vec<(Vec<u8>, LeafIndex)>> {
        db_run!(self, |c| {
            subjects::table
                .filter(subjects::last_leaf_index.is_not_null())
                .select((
                    subjects::commitment,
                    subjects::last_leaf_index.assume_not_null(),
                ))
                .load(c)
        })
    }
}
