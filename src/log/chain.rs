//! Each address's chain as the log states it: for every subject, the index of the latest leaf
//! naming it, which the subject's next event must name as its `prev`. Derived from the log's
//! leaves and its signed subject map, never from the `subjects` rows: the sequencer takes `prev`
//! from here, so a row edited to point back cannot make an event skip an opt-out, and
//! [`open`] refuses a database whose rows disagree with the log.
//!
//! Not here: the map's construction (`map`), the auditors' replay of the same rule (`audit`),
//! SQL (`store`).

use std::collections::HashMap;

use super::hash::Hash;
use super::map::{self, SubjectMap};
use super::{sequencer, LogError};
use crate::store::Repo;

/// The heads of leaves past the map's size: what the sequencer keeps beside the map, which
/// moves only at checkpoints.
pub(super) type Recent = HashMap<Hash, u64>;

/// Leaves read at a time when replaying a stretch of the log.
const CHUNK: u64 = 10_000;

/// Where a subject's chain ends, for an entry being built: the heads of the batch being built,
/// then those committed since the last checkpoint, then the checkpoint's map.
pub struct Chain<'a> {
    pub(super) map: &'a SubjectMap,
    pub(super) recent: &'a Recent,
    pub(super) batch: &'a Recent,
}

impl Chain<'_> {
    /// The index of the latest leaf naming `subject`, if any: the `prev` of its next event.
    pub fn prev(&self, subject: &Hash) -> Option<u64> {
        self.batch
            .get(subject)
            .or_else(|| self.recent.get(subject))
            .copied()
            .or_else(|| self.map.head(subject))
    }
}

/// The (subject, index, prev) of every leaf in `start..end` that names a subject, in order.
fn links(
    r: &mut dyn Repo,
    start: u64,
    end: u64,
) -> Result<Vec<(Hash, u64, Option<u64>)>, LogError> {
    let mut links = Vec::new();
    let mut at = start;
    while at < end {
        let to = end.min(at + CHUNK);
        for (i, leaf) in r.leaf_data(at as i64, to as i64)?.iter().enumerate() {
            let index = at + i as u64;
            if let Some(key) = map::leaf_subject(leaf) {
                let prev = map::leaf_prev(leaf)
                    .map_err(|e| LogError::Corrupt(format!("leaf {index}: {e}")))?;
                links.push((key, index, prev));
            }
        }
        at = to;
    }
    Ok(links)
}

/// The (subject, index) of every leaf in `start..end` that names a subject.
pub(super) fn subjects_of(
    r: &mut dyn Repo,
    start: u64,
    end: u64,
) -> Result<Vec<(Hash, u64)>, LogError> {
    Ok(links(r, start, end)?
        .into_iter()
        .map(|(key, index, _)| (key, index))
        .collect())
}

/// The heads of the leaves in `start..end` (each subject's latest there).
pub(super) fn recent_of(r: &mut dyn Repo, start: u64, end: u64) -> Result<Recent, LogError> {
    Ok(subjects_of(r, start, end)?.into_iter().collect())
}

/// The chain heads of a log of `size` leaves, under the writer lock: the map of its latest
/// checkpoint (checked against that checkpoint's map leaf) and the heads of the leaves after it.
/// The map is built from the rows' heads only where the log confirms them: each subject named
/// after the checkpoint gets the `prev` of its first leaf there, and the result must hash to the
/// signed map root; then every row must name the head the log gives. A log from before the map
/// (its latest checkpoint ends without a map leaf) is replayed from its first leaf.
pub(super) fn open(r: &mut dyn Repo, size: u64) -> Result<(SubjectMap, Recent), LogError> {
    let checkpointed = r.latest_checkpoint()?.map_or(0, |cp| cp.tree_size as u64);
    let base = if checkpointed <= size && sequencer::ends_with_map(r, checkpointed)? {
        checkpointed
    } else {
        0
    };
    let rows: HashMap<Hash, u64> = r
        .subject_heads()?
        .into_iter()
        .filter_map(|(key, index)| Some((Hash::try_from(key).ok()?, u64::try_from(index).ok()?)))
        .collect();
    let after = links(r, base, size)?;
    let mut at_base = if base == 0 {
        HashMap::new()
    } else {
        rows.clone()
    };
    let mut recent = Recent::new();
    for (key, index, prev) in after {
        if !recent.contains_key(&key) {
            // The subject's first leaf after the checkpoint names its head at the checkpoint.
            match prev {
                Some(p) if p >= base => {
                    return Err(LogError::Corrupt(format!(
                        "leaf {index} names leaf {p} as its subject's previous event, but the \
                         first event after the checkpoint of size {base} must follow one before it"
                    )))
                }
                Some(p) => at_base.insert(key, p),
                None => at_base.remove(&key),
            };
        }
        recent.insert(key, index);
    }
    let map = SubjectMap::from_heads(base, at_base);
    sequencer::check_map_leaf(r, base, &map.root())?;
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
