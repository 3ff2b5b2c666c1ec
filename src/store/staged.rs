//! The consent rows of one sequencer batch, held back and written together: the consent events
//! of a batch write their subjects, events, state rows and webhook deliveries here, and the
//! sequencer writes them all at once. On PostgreSQL, where every statement is a round trip made
//! under the writer lock, that is a multi-row statement per table (per 1,000 rows); on SQLite,
//! which has no round trips, diesel writes these rows one statement each, still prepared once.
//! The rows the batch will read are loaded the same way first ([`Staged::prefetch`]: by id, and
//! by label for addresses with no row), and reads of those tables by the batch's entries are
//! answered from here, so each entry sees what the entries before it wrote. An address nothing
//! was loaded for is looked up by itself, once.
//!
//! Everything is written in the batch's own transaction: nothing is acknowledged before it
//! commits, as without staging. An entry that does not stage its rows (an erasure, a
//! relabelling, …) is built only after the staged rows are written and forgotten (`flush`), so
//! it reads them from the database and the entries after it read its changes from there.
//!
//! Not here: what the rows say (`consent::entries`), when a batch is written (the sequencer).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use diesel::QueryResult;

use super::{DeliveryRow, EventRow, LeafIndex, Repo, StateEntryRow, SubjectRow, WebhookRow};

/// Ids, addresses or labels per `IN` list when loading.
const LOOKUPS_PER_QUERY: usize = 500;

/// What an entry will look up: its subject, by id (a link's opt-out), by address, and by the
/// address's label (a new or erased address). Gathered from the whole batch before it is built.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a> {
    /// The tenant.
    pub tenant_id: &'a str,
    /// The normalised address.
    pub address: &'a str,
    /// The address's label, if computed.
    pub label: Option<&'a [u8]>,
    /// The subject id an unsubscribe link names.
    pub subject_id: Option<&'a str>,
    /// The id of the subject that had this address when the event was validated.
    pub found_id: Option<&'a str>,
}

/// The rows of one batch: those read (as they are now, with what the batch changed) and those
/// to write.
#[derive(Default)]
pub struct Staged {
    /// Every subject read or made in this batch, as it is now, by id.
    subjects: HashMap<String, SubjectRow>,
    /// Lookups answered so far: the subject with this tenant and address, or none.
    by_address: HashMap<(String, String), Option<String>>,
    /// Lookups answered so far: the labelled subject with this label, or none.
    by_label: HashMap<Vec<u8>, Option<String>>,
    /// Ids known to have no row.
    no_subject: HashSet<String>,
    /// Subjects to insert.
    new: BTreeSet<String>,
    /// Stored subjects with a new latest leaf.
    moved: BTreeSet<String>,
    /// Every state row of the subjects read, by subject and purpose.
    state: HashMap<String, BTreeMap<String, StateEntryRow>>,
    /// State rows to write (subject, purpose).
    state_changed: BTreeSet<(String, String)>,
    /// Each tenant's active webhooks, oldest first.
    webhooks: HashMap<String, Vec<WebhookRow>>,
    events: Vec<EventRow>,
    deliveries: Vec<DeliveryRow>,
}

impl Staged {
    /// Loads, a few queries for the whole batch, the subjects its entries will look up, their
    /// state rows and their tenants' webhooks.
    ///
    /// Subjects are loaded by id (the one validation found for the address, or a link's) and
    /// then known by the address they have now, under the writer lock: by primary key, not by
    /// a list of addresses, whose plan on PostgreSQL reads every subject of the tenant while
    /// the table has no statistics yet (`tenant_id = $1` with the list as a filter: measured
    /// at 350 rows read per address looked up). An address no subject was loaded for (a new
    /// one, or one whose subject changed since) is looked up by itself when its entry is
    /// built.
    pub fn prefetch(&mut self, r: &mut Repo<'_>, lookups: &[Lookup<'_>]) -> QueryResult<()> {
        let ids: Vec<String> = unique(
            lookups
                .iter()
                .flat_map(|l| [l.subject_id, l.found_id])
                .flatten(),
        );
        for chunk in ids.chunks(LOOKUPS_PER_QUERY) {
            self.remember_all(r.subjects_by_ids(chunk)?);
        }
        for id in ids {
            if !self.subjects.contains_key(&id) {
                self.no_subject.insert(id);
            }
        }
        // A label is looked up only for an address with no row found (a new or an erased
        // subject).
        let labels: Vec<Vec<u8>> = unique(
            lookups
                .iter()
                .filter(|l| self.address_lookup(l.tenant_id, l.address).is_none())
                .filter_map(|l| l.label),
        );
        for chunk in labels.chunks(LOOKUPS_PER_QUERY) {
            self.remember_all(r.subjects_with_labels(chunk)?);
        }
        for label in labels {
            self.by_label.entry(label).or_insert(None);
        }
        let read: Vec<String> = self.subjects.keys().cloned().collect();
        for chunk in read.chunks(LOOKUPS_PER_QUERY) {
            for row in r.all_state_entries_of(chunk)? {
                self.state
                    .entry(row.subject_id.clone())
                    .or_default()
                    .insert(row.purpose.clone(), row);
            }
        }
        for id in read {
            self.state.entry(id).or_default();
        }
        let tenants: BTreeSet<&str> = lookups.iter().map(|l| l.tenant_id).collect();
        for tenant in tenants {
            let hooks = r.tenant_webhooks(tenant)?;
            self.webhooks.insert(tenant.to_string(), hooks);
        }
        Ok(())
    }

    /// The id the batch knows for this address: `Some(None)` if it knows there is none.
    fn address_lookup(&self, tenant_id: &str, address: &str) -> Option<&Option<String>> {
        self.by_address
            .get(&(tenant_id.to_string(), address.to_string()))
    }

    /// Keeps a subject row as the batch's current copy (read from the database, or changed
    /// there by the caller: a restored address), and indexes it by address and label.
    pub fn remember(&mut self, row: SubjectRow) {
        // The copy it replaces no longer names its subject by its old address or key.
        if let Some(old) = self.subjects.get(&row.id) {
            if let Some(address) = &old.address {
                self.by_address
                    .remove(&(old.tenant_id.clone(), address.clone()));
            }
            if old.vrf {
                self.by_label.remove(&old.commitment);
            }
        }
        if let Some(address) = &row.address {
            self.by_address.insert(
                (row.tenant_id.clone(), address.clone()),
                Some(row.id.clone()),
            );
        }
        if row.vrf {
            self.by_label
                .insert(row.commitment.clone(), Some(row.id.clone()));
        }
        self.no_subject.remove(&row.id);
        self.subjects.insert(row.id.clone(), row);
    }

    fn remember_all(&mut self, rows: Vec<SubjectRow>) {
        for row in rows {
            // A row the batch changed is newer than the database's.
            if !self.subjects.contains_key(&row.id) {
                self.remember(row);
            }
        }
    }

    /// A subject by id.
    pub fn subject(&mut self, r: &mut Repo<'_>, id: &str) -> QueryResult<Option<SubjectRow>> {
        if let Some(row) = self.subjects.get(id) {
            return Ok(Some(row.clone()));
        }
        if self.no_subject.contains(id) {
            return Ok(None);
        }
        let row = r.subject(id)?;
        match &row {
            Some(row) => self.remember(row.clone()),
            None => drop(self.no_subject.insert(id.to_string())),
        }
        Ok(row)
    }

    /// The subject with this address.
    pub fn subject_by_address(
        &mut self,
        r: &mut Repo<'_>,
        tenant_id: &str,
        address: &str,
    ) -> QueryResult<Option<SubjectRow>> {
        let id = match self.address_lookup(tenant_id, address) {
            Some(id) => id.clone(),
            None => {
                let row = r.subject_by_address(tenant_id, address)?;
                let id = row.as_ref().map(|s| s.id.clone());
                self.remember_all(row.into_iter().collect());
                self.by_address
                    .insert((tenant_id.to_string(), address.to_string()), id.clone());
                id
            }
        };
        Ok(id.and_then(|id| self.subjects.get(&id).cloned()))
    }

    /// The labelled subject a label names.
    pub fn subject_by_label(
        &mut self,
        r: &mut Repo<'_>,
        label: &[u8],
    ) -> QueryResult<Option<SubjectRow>> {
        let id = match self.by_label.get(label) {
            Some(id) => id.clone(),
            None => {
                let row = r.subject_by_label(label)?;
                let id = row.as_ref().map(|s| s.id.clone());
                self.remember_all(row.into_iter().collect());
                self.by_label.insert(label.to_vec(), id.clone());
                id
            }
        };
        Ok(id.and_then(|id| self.subjects.get(&id).cloned()))
    }

    /// A new subject, to insert (it has no state rows yet).
    pub fn insert_subject(&mut self, row: SubjectRow) {
        self.new.insert(row.id.clone());
        self.state.insert(row.id.clone(), BTreeMap::new());
        self.remember(row);
    }

    /// Records the subject's latest leaf (at once, if the subject was not read through the
    /// batch).
    pub fn set_last_leaf(
        &mut self,
        r: &mut Repo<'_>,
        subject_id: &str,
        leaf_index: u64,
    ) -> QueryResult<()> {
        let Some(row) = self.subjects.get_mut(subject_id) else {
            return r.set_last_leaf(subject_id, leaf_index);
        };
        row.last_leaf_index = Some(LeafIndex(leaf_index));
        if !self.new.contains(subject_id) {
            self.moved.insert(subject_id.to_string());
        }
        Ok(())
    }

    /// All state rows of a subject, by purpose.
    pub fn all_state_entries(
        &mut self,
        r: &mut Repo<'_>,
        subject_id: &str,
    ) -> QueryResult<Vec<StateEntryRow>> {
        if !self.state.contains_key(subject_id) {
            let rows = r.all_state_entries(subject_id)?;
            self.state.insert(
                subject_id.to_string(),
                rows.into_iter().map(|s| (s.purpose.clone(), s)).collect(),
            );
        }
        Ok(self.state[subject_id].values().cloned().collect())
    }

    /// Inserts or replaces a state row.
    pub fn put_state_entry(&mut self, row: StateEntryRow) {
        let key = (row.subject_id.clone(), row.purpose.clone());
        self.state
            .entry(key.0.clone())
            .or_default()
            .insert(key.1.clone(), row);
        self.state_changed.insert(key);
    }

    /// An event, to insert.
    pub fn insert_event(&mut self, row: EventRow) {
        self.events.push(row);
    }

    /// A tenant's active webhooks, oldest first.
    pub fn tenant_webhooks(
        &mut self,
        r: &mut Repo<'_>,
        tenant_id: &str,
    ) -> QueryResult<&[WebhookRow]> {
        if !self.webhooks.contains_key(tenant_id) {
            let hooks = r.tenant_webhooks(tenant_id)?;
            self.webhooks.insert(tenant_id.to_string(), hooks);
        }
        Ok(&self.webhooks[tenant_id])
    }

    /// A webhook delivery, to insert.
    pub fn insert_delivery(&mut self, row: DeliveryRow) {
        self.deliveries.push(row);
    }

    /// Writes the staged rows (subjects first: the others refer to them) and forgets
    /// everything read, so that what is read next comes from the database.
    pub fn flush(&mut self, r: &mut Repo<'_>) -> QueryResult<()> {
        let taken = std::mem::take(self);
        let new: Vec<SubjectRow> = taken
            .new
            .iter()
            .map(|id| taken.subjects[id].clone())
            .collect();
        r.insert_subjects(&new)?;
        let heads: Vec<(String, LeafIndex)> = taken
            .moved
            .iter()
            .filter_map(|id| Some((id.clone(), taken.subjects[id].last_leaf_index?)))
            .collect();
        r.set_last_leaves(&heads)?;
        r.insert_events(&taken.events)?;
        let state: Vec<StateEntryRow> = taken
            .state_changed
            .iter()
            .map(|(subject, purpose)| taken.state[subject][purpose].clone())
            .collect();
        r.put_state_entries(&state)?;
        r.insert_deliveries(&taken.deliveries)?;
        Ok(())
    }
}

/// The distinct values, sorted.
fn unique<'a, Q>(values: impl Iterator<Item = &'a Q>) -> Vec<Q::Owned>
where
    Q: ToOwned + ?Sized + 'a,
    Q::Owned: Ord,
{
    let set: BTreeSet<Q::Owned> = values.map(ToOwned::to_owned).collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, address: Option<&str>, key: u8) -> SubjectRow {
        SubjectRow {
            id: id.into(),
            tenant_id: "t".into(),
            address: address.map(str::to_string),
            salt: None,
            commitment: vec![key; 32],
            last_leaf_index: None,
            created_at: 0,
            erased_at: None,
            vrf: true,
        }
    }

    #[test]
    fn a_subject_remembered_again_is_no_longer_known_by_its_old_address() {
        let mut staged = Staged::default();
        staged.remember(row("s", Some("old@example.jp"), 1));
        staged.remember(row("s", Some("new@example.jp"), 2));
        assert_eq!(staged.address_lookup("t", "old@example.jp"), None);
        assert_eq!(
            staged.address_lookup("t", "new@example.jp"),
            Some(&Some("s".to_string()))
        );
        assert_eq!(staged.by_label.get(&vec![1; 32]), None);
        assert_eq!(
            staged.by_label.get(&vec![2; 32]),
            Some(&Some("s".to_string()))
        );
    }
}
