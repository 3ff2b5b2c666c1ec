//! Each address's chain as the log states it: for every subject, the index of the latest leaf
//! naming it, which the subject's next event must name as its `prev`. Derived from the log's
//! leaves and its signed subject map, never from the `subjects` rows: the sequencer takes `prev`
//! from here, so a row edited to point back cannot make an event skip an opt-out, and
//! [`open`] refuses a database whose rows disagree with the log.
//!
//! Not here: the map's construction (`map`), the auditors' replay of the same rule (`audit`),
//! SQL (`store`).

use std::cell::{RefCell, RefMut};
use std::collections::HashMap;

use super::hash::Hash;
use super::map::{self, SubjectMap};
use super::note::NoteSigner;
use super::{sequencer, Labeler, LogError};
use crate::store::{LeafIndex, Repo, Staged};
use consent_ledger_sdk::consent::hold_key;
use consent_ledger_sdk::label::parameters_key;
use consent_ledger_sdk::tenants::leaf_tenant;

/// The heads of leaves past the map's size: what the sequencer keeps beside the map, which
/// moves only at checkpoints.
pub(super) type Recent = HashMap<Hash, u64>;

/// Leaves read at a time when replaying a stretch of the log.
const CHUNK: u64 = 10_000;

/// Where a subject's chain ends, for an entry being built: the heads of the leaves past the
/// checkpoint (committed since, and built so far in this batch), then the checkpoint's map. And
/// the log's VRF key, for an entry that must name a new subject it could not label before.
pub struct Chain<'a> {
    pub(super) map: &'a SubjectMap,
    pub(super) recent: &'a Recent,
    pub(super) labeler: &'a Labeler,
    /// The log's time for this batch, Unix ms.
    pub(super) now: i64,
    /// The index of the batch's first leaf: leaves from here on are being built, not stored.
    pub(super) start: u64,
    /// The leaves built so far in this batch (`start..`).
    pub(super) batch: &'a [super::Leaf],
    /// Whether the log runs as versions before labels did (a test fixture: `LogSettings`).
    pub(super) pre_labels: bool,
    /// The consent rows the batch has read and written so far (see [`LogEntry::stages`](super::LogEntry::stages)).
    pub(super) staged: &'a RefCell<Staged>,
}

impl Chain<'_> {
    /// The time the batch is recorded at (the log's clock), Unix ms: every entry's
    /// `recorded_at`.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// The bytes of leaf `index`: stored, or built earlier in this batch (not stored yet).
    pub fn leaf(&self, r: &mut Repo<'_>, index: u64) -> Result<Option<Vec<u8>>, LogError> {
        if index >= self.start {
            let built = usize::try_from(index - self.start).ok();
            return Ok(built
                .and_then(|i| self.batch.get(i))
                .map(|l| l.bytes().to_vec()));
        }
        Ok(r.leaf_data(index, index + 1)?.pop())
    }

    /// The batch's staged consent rows, for an entry that [stages](super::LogEntry::stages) them.
    pub fn staged(&self) -> RefMut<'_, Staged> {
        self.staged.borrow_mut()
    }

    /// Whether new subjects are named by salted commitments, as before labels (test fixtures
    /// of such logs only).
    pub fn pre_labels(&self) -> bool {
        self.pre_labels
    }

    /// The label of an address (see [`Labeler::label`]).
    pub fn label(&self, tenant_id: &str, address: &str) -> Hash {
        self.labeler.label(tenant_id, address)
    }

    /// The index of the latest leaf naming `subject`, if any: the `prev` of its next event.
    pub fn prev(&self, subject: &Hash) -> Option<u64> {
        self.recent
            .get(subject)
            .copied()
            .or_else(|| self.map.head(subject))
    }
}

/// Every leaf in `start..end`, with its index, read in chunks.
fn for_each_leaf(
    r: &mut Repo<'_>,
    start: u64,
    end: u64,
    mut each: impl FnMut(u64, &[u8]),
) -> Result<(), LogError> {
    let mut at = start;
    while at < end {
        let to = end.min(at + CHUNK);
        for (i, leaf) in r.leaf_data(at, to)?.iter().enumerate() {
            each(at + i as u64, leaf);
        }
        at = to;
    }
    Ok(())
}

/// The (subject, index, tenant whose map the subject is in) of every leaf in `start..end` that
/// names a subject.
pub(super) fn subjects_of(
    r: &mut Repo<'_>,
    start: u64,
    end: u64,
) -> Result<Vec<(Hash, u64, Option<String>)>, LogError> {
    let mut subjects = Vec::new();
    for_each_leaf(r, start, end, |index, leaf| {
        if let Some(key) = map::leaf_subject(leaf) {
            subjects.push((key, index, leaf_tenant(leaf)));
        }
    })?;
    Ok(subjects)
}

/// The heads of the leaves in `start..end` (each subject's latest there).
pub(super) fn recent_of(r: &mut Repo<'_>, start: u64, end: u64) -> Result<Recent, LogError> {
    Ok(subjects_of(r, start, end)?
        .into_iter()
        .map(|(key, index, _)| (key, index))
        .collect())
}

/// The subjects' rows as (key → latest leaf), the parameters leaf's and each tenant's latest
/// hold's, refusing malformed or duplicate ones.
fn row_heads(r: &mut Repo<'_>) -> Result<HashMap<Hash, u64>, LogError> {
    let mut rows = HashMap::new();
    let parameters = r.log_meta()?.and_then(|m| m.parameters_leaf);
    let parameters = parameters.map(|i| (parameters_key().to_vec(), i));
    // Each tenant's hold chain, under its hold key.
    let holds: Vec<(Vec<u8>, LeafIndex)> = r
        .hold_heads()?
        .into_iter()
        .filter_map(|(tenant, head)| Some((hold_key(&tenant).to_vec(), head?)))
        .collect();
    for (key, index) in r
        .subject_heads()?
        .into_iter()
        .chain(parameters)
        .chain(holds)
    {
        let malformed = || {
            LogError::Corrupt(format!(
                "a subject row has the commitment {} and the latest leaf {index}, not a 32-byte \
                 commitment and a leaf index: refusing to run on it",
                crate::hex(&key)
            ))
        };
        let key = Hash::try_from(key.as_slice()).map_err(|_| malformed())?;
        let index = index.get();
        if rows.insert(key, index).is_some() {
            return Err(LogError::Corrupt(format!(
                "two subject rows have the commitment {}: refusing to run on them",
                crate::hex(&key)
            )));
        }
    }
    Ok(rows)
}

/// The chain heads of a log of `size` leaves, under the writer lock: the map of its latest
/// checkpoint (checked against that checkpoint's signed map leaf) and the heads of the leaves
/// after it. The map is built from the rows' heads only where the log confirms them: each
/// subject named after the checkpoint gets the `prev` of its first leaf there (a `prev` that
/// cannot be read leaves the row's), and the result must hash to the signed map root; then every
/// row must name the head the log gives. A log from before the map (its latest checkpoint ends
/// without a map leaf) is replayed from its first leaf.
pub(super) fn open(
    r: &mut Repo<'_>,
    signer: &NoteSigner,
    size: u64,
) -> Result<(SubjectMap, Recent), LogError> {
    let checkpointed = r.latest_checkpoint()?.map_or(0, |cp| cp.tree_size.get());
    let base = if checkpointed <= size && sequencer::ends_with_map(r, checkpointed)? {
        checkpointed
    } else {
        0
    };
    let rows = row_heads(r)?;
    let mut at_base = if base == 0 {
        HashMap::new()
    } else {
        rows.clone()
    };
    let mut recent = Recent::new();
    let mut misplaced = None;
    for_each_leaf(r, base, size, |index, leaf| {
        let Some(key) = map::leaf_subject(leaf) else {
            return;
        };
        if !recent.contains_key(&key) {
            // The subject's first leaf after the checkpoint names its head at the checkpoint.
            match map::leaf_prev(leaf) {
                Ok(Some(p)) if p >= base => misplaced = Some((index, p)),
                Ok(Some(p)) => {
                    at_base.insert(key, p);
                }
                Ok(None) => {
                    at_base.remove(&key);
                }
                Err(_) => {}
            }
        }
        recent.insert(key, index);
    })?;
    if let Some((index, p)) = misplaced {
        return Err(LogError::Corrupt(format!(
            "leaf {index} names leaf {p} as its subject's previous event, but the first event \
             after the checkpoint of size {base} must follow one before it"
        )));
    }
    // Each subject row's tenant: the tenant whose map its key is in.
    let tenants: HashMap<Hash, String> = r
        .subject_tenants()?
        .into_iter()
        .filter_map(|(tenant, key)| Some((Hash::try_from(key.as_slice()).ok()?, tenant)))
        .collect();
    let map = SubjectMap::from_named_heads(
        base,
        at_base
            .into_iter()
            .map(|(key, index)| (key, index, tenants.get(&key).cloned())),
    );
    sequencer::check_map_leaf(r, signer, base, &map.root(), &map.tenants().root())?;
    for (key, index) in &recent {
        if rows.get(key) != Some(index) {
            return Err(disagreement(key, rows.get(key).copied(), Some(*index)));
        }
    }
    if base == 0 {
        if let Some((key, index)) = rows.iter().find(|(key, _)| !recent.contains_key(*key)) {
            return Err(disagreement(key, Some(*index), None));
        }
    }
    Ok((map, recent))
}

/// A row that names another head than the log: refuse to run on it.
fn disagreement(key: &Hash, row: Option<u64>, log: Option<u64>) -> LogError {
    let at = |i: Option<u64>| i.map_or("none".to_string(), |i| format!("leaf {i}"));
    LogError::Corrupt(format!(
        "the database says the latest event of subject {} is {}, but the log says {}: a row was \
         changed outside the service; refusing to run on it (restore the database, or audit the \
         log with `consent-ledger monitor --audit-map`)",
        crate::hex(key),
        at(row),
        at(log)
    ))
}
