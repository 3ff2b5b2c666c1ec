//! The sequencer: the one writer of the tree. A dedicated thread takes append requests from a
//! channel, commits everything queued as one transaction (group commit: leaves, changed tiles,
//! the new tree state by compare-and-swap on its size), answers each request with its indexes
//! only after the commit, and publishes signed checkpoints at most one interval later. Each
//! checkpoint's tree ends with a `subject_map` leaf committing to the subject map (`map.rs`) of
//! every leaf before it, appended in the same transaction that signs the checkpoint. The first
//! checkpoint with labels also appends the one `log_parameters` leaf (the VRF public key).
//!
//! Several processes may share one database: each transaction holds the database's writer lock
//! (`Store::write`), and a sequencer that finds the stored size moved reloads its frontier first,
//! so appends from all processes form one tree — never a fork.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::chain::{self, Chain, Recent};
use super::hash::Hash;
use super::map::{self, SubjectMap};
use super::note::NoteSigner;
use super::tiles::Frontier;
use super::{
    load_frontier, sign_checkpoint, Appended, Labeler, Leaf, LogEntry, LogError, LogSettings,
};
use crate::store::{LeafIndex, NewLeaf, Repo, Staged, Store};
use consent_ledger_sdk::label::LogParameters;

/// How often an idle sequencer looks for appends by other processes left without a checkpoint.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// One caller's entries and where to send their leaves and indexes.
pub(super) struct AppendRequest {
    pub entries: Vec<Box<dyn LogEntry>>,
    pub reply: oneshot::Sender<Result<Vec<Appended>, LogError>>,
}

pub(super) struct Sequencer {
    store: Store,
    signer: Arc<NoteSigner>,
    labeler: Arc<Labeler>,
    settings: LogSettings,
    /// The right edge of the tree as of our last commit; `None` after a failed transaction.
    frontier: Option<Frontier>,
    /// The chain heads of the leaves past the map, and the tree size they cover; `None` after a
    /// failed transaction.
    recent: Option<(u64, Recent)>,
    /// The subject map as of the latest checkpoint we published or caught up with (shared with
    /// readers, who prove against it; changed only after the commit that logged its root).
    map: Arc<RwLock<SubjectMap>>,
    /// Largest size committed by us and not yet covered by a checkpoint we know of.
    unpublished: bool,
    /// When the earliest acknowledgement no checkpoint covers yet was sent (for the metrics).
    acknowledged_since: Option<Instant>,
    last_publish: Instant,
    /// Whether the last write failed: shown by `/readyz`.
    writes_failing: Arc<AtomicBool>,
    /// A map leaf that was due at start but could not be written: retried with publication.
    map_pending: bool,
}

impl Sequencer {
    pub fn new(
        store: Store,
        signer: Arc<NoteSigner>,
        labeler: Arc<Labeler>,
        settings: LogSettings,
        frontier: Frontier,
        map: Arc<RwLock<SubjectMap>>,
        recent: Recent,
    ) -> Self {
        Self {
            store,
            signer,
            labeler,
            settings,
            recent: Some((frontier.size(), recent)),
            frontier: Some(frontier),
            map,
            unpublished: false,
            acknowledged_since: None,
            last_publish: Instant::now(),
            writes_failing: Arc::default(),
            map_pending: false,
        }
    }

    /// The flag this sequencer sets while its writes fail.
    pub fn writes_failing(&self) -> Arc<AtomicBool> {
        self.writes_failing.clone()
    }

    /// Notes how a write went. After a failure of the database (a full disk, an I/O error) it
    /// also asks the store for relief (on SQLite, truncating the WAL, which a full disk stops
    /// from being checkpointed into the database), so the next attempt has room.
    fn wrote(&self, result: Result<(), &LogError>) {
        let failing = match result {
            Ok(()) => false,
            Err(LogError::Store(e)) if e.is_outage() => {
                self.store.relieve();
                true
            }
            Err(_) => false,
        };
        if self.writes_failing.swap(failing, Ordering::Relaxed) != failing {
            match failing {
                true => tracing::error!(
                    "writes to the database fail: appends answer 503, /readyz 503; retrying"
                ),
                false => tracing::info!("writes to the database succeed again"),
            }
        }
    }

    /// Runs until every sender is gone, then commits what is queued and publishes a last checkpoint.
    pub fn run(mut self, requests: Receiver<AppendRequest>) {
        loop {
            let wait = if self.unpublished {
                self.settings
                    .checkpoint_interval
                    .saturating_sub(self.last_publish.elapsed())
            } else {
                IDLE_CHECK
            };
            match requests.recv_timeout(wait) {
                Ok(first) => {
                    let mut batch = vec![first];
                    let mut leaves = batch[0].entries.len();
                    while leaves < self.settings.max_batch {
                        let Ok(next) = requests.try_recv() else { break };
                        leaves += next.entries.len();
                        batch.push(next);
                    }
                    self.commit(batch);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.publish_now();
                    return;
                }
            }
            if self.last_publish.elapsed() >= self.settings.checkpoint_interval
                && (self.unpublished || self.last_publish.elapsed() >= IDLE_CHECK)
            {
                self.publish_now();
            }
        }
    }

    /// Commits one batch and answers its requests.
    fn commit(&mut self, mut batch: Vec<AppendRequest>) {
        let started = Instant::now();
        let frontier = self.frontier.take();
        let recent = self.recent.take();
        let map = self.map.clone();
        let labeler = self.labeler.clone();
        let clock_offset = self.settings.clock_offset_ms;
        // The leaves built in the transaction, kept outside it for the unknown-outcome check,
        // and how many each request's entries built (an entry may decline).
        let built: RefCell<(u64, Vec<Leaf>, Vec<usize>)> = RefCell::new(Default::default());
        let result = self.store.write(|r: &mut Repo<'_>| {
            let state = r.log_state()?;
            let map = map.read().expect("map lock");
            let size = state.tree_size.get();
            let mut frontier = match frontier {
                Some(f) if f.size() == size => f,
                // Another process appended, or our last transaction failed: start from the store.
                _ => load_frontier(r)?,
            };
            let mut recent = recent_at(r, recent, map.size(), size)?;
            let start = frontier.size();
            let now = crate::now_millis().saturating_add(clock_offset);
            let mut leaves = Vec::with_capacity(batch.iter().map(|b| b.entries.len()).sum());
            let mut built_by = Vec::with_capacity(batch.len());
            let staged = RefCell::new(Staged::default());
            // Whether the staged rows hold nothing read: at the start, and after an entry that
            // does not stage its rows made them write and forget everything.
            let mut fresh = true;
            for i in 0..batch.len() {
                let before = leaves.len();
                for j in 0..batch[i].entries.len() {
                    if batch[i].entries[j].stages().is_none() {
                        // It reads and writes the database itself: it sees the staged rows
                        // there, and the entries after it see its changes.
                        staged.borrow_mut().flush(r)?;
                        fresh = true;
                    } else if fresh {
                        // Load what the entries up to the next one that does not stage will
                        // look up (that one writes and forgets them), a query per table.
                        let rest = batch[i].entries[j..]
                            .iter()
                            .chain(batch[i + 1..].iter().flat_map(|b| b.entries.iter()));
                        let lookups: Vec<_> = rest.map_while(|e| e.stages()).collect();
                        staged.borrow_mut().prefetch(r, &lookups)?;
                        fresh = false;
                    }
                    let entry = &mut batch[i].entries[j];
                    // The entry learns its index and its subject's chain, writes its own rows,
                    // and gives its leaf. (Heads go straight into `recent`: if the transaction
                    // fails, it is dropped with the frontier and reloaded.)
                    let index = start + leaves.len() as u64;
                    let chain = Chain {
                        map: &map,
                        recent: &recent,
                        labeler: &labeler,
                        now,
                        start,
                        batch: &leaves,
                        pre_labels: self.settings.pre_labels,
                        staged: &staged,
                    };
                    let Some(leaf) = entry.build(r, &chain, index)? else {
                        continue;
                    };
                    if let Some(subject) = entry.subject(&leaf) {
                        recent.insert(subject, index);
                    }
                    frontier.push(leaf.hash());
                    leaves.push(leaf);
                }
                built_by.push(leaves.len() - before);
            }
            staged.into_inner().flush(r)?;
            let recent = (frontier.size(), recent);
            if leaves.is_empty() {
                // Every entry declined: nothing to write.
                *built.borrow_mut() = (start, leaves, built_by);
                return Ok(Some((frontier, recent)));
            }
            store_leaves(r, start, &leaves, &mut frontier)?;
            *built.borrow_mut() = (start, leaves, built_by);
            Ok(Some((frontier, recent)))
        });
        let (start, leaves, counts) = built.into_inner();
        // A failed COMMIT (a connection lost mid-commit, an I/O error) may still have committed:
        // look before answering, so a caller is never told "not committed" for leaves in the log.
        let mut result = result.or_else(|e| {
            if !leaves.is_empty() && self.leaves_are_stored(start, &leaves) {
                tracing::warn!(error = %e, "commit reported an error, but the batch is stored");
                Ok(None)
            } else {
                Err(e)
            }
        });
        self.wrote(result.as_ref().map(drop));
        if let Ok(edge) = result.as_mut() {
            (self.frontier, self.recent) = edge.take().unzip();
            self.unpublished = true;
            self.acknowledged_since.get_or_insert_with(Instant::now);
        }
        crate::metrics::commit(leaves.len(), started.elapsed());
        answer(batch, result.map(drop), start, leaves, counts);
    }

    /// Whether `leaves` are stored at `start..` (checked on a fresh connection).
    fn leaves_are_stored(&self, start: u64, leaves: &[Leaf]) -> bool {
        let end = start + leaves.len() as u64;
        let stored = self
            .store
            .read(|r| Ok::<_, LogError>(r.leaf_hashes(start, end)?));
        stored.is_ok_and(|stored| {
            stored.len() == leaves.len()
                && stored
                    .iter()
                    .zip(leaves)
                    .all(|(s, l)| s.as_slice() == l.hash())
        })
    }

    fn publish_now(&mut self) {
        self.last_publish = Instant::now();
        let had_work = self.unpublished || self.map_pending;
        let published = self.publish().and_then(|size| match self.map_pending {
            true => self.publish_map_if_missing(),
            false => Ok(size),
        });
        match published {
            Ok(size) => {
                let lag = self.acknowledged_since.take().map(|t| t.elapsed());
                crate::metrics::checkpoint(size, lag);
                self.unpublished = false;
                self.map_pending = false;
                // Nothing to write proves nothing: while writes fail, try one that changes
                // nothing, so readiness returns only when writes do.
                if had_work || !self.writes_failing.load(Ordering::Relaxed) {
                    self.wrote(Ok(()));
                } else {
                    let probe = self.store.write(|r: &mut Repo<'_>| {
                        r.rewrite_log_meta()?;
                        Ok::<_, LogError>(())
                    });
                    self.wrote(probe.as_ref().map(drop));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "checkpoint not published");
                self.wrote(Err(&e));
            }
        }
    }

    /// Publishes a checkpoint of the committed tree if it is larger than the latest checkpoint
    /// (compare-and-swap on size, under the writer lock): first appends the `subject_map` leaf
    /// committing to the map of every leaf before it, then signs the tree that ends with it.
    /// Returns the latest checkpointed size.
    pub fn publish(&mut self) -> Result<u64, LogError> {
        // A cheap read first: most idle checks find nothing to do.
        let (state, latest) = self
            .store
            .read(|r| Ok::<_, LogError>((r.log_state()?, r.latest_checkpoint()?)))?;
        if let Some(latest) = latest.filter(|cp| cp.tree_size >= state.tree_size) {
            // Another process may have published: bring the map up to its checkpoint.
            self.catch_up_map(latest.tree_size.get())?;
            return Ok(latest.tree_size.get());
        }
        self.append_map_and_sign(false, None)
    }

    /// Runs a publication at start (a checkpoint, or with `map_if_missing` the map leaf an old
    /// log lacks); if the database fails (a full disk, I/O errors), leaves it to the running
    /// sequencer, which retries, and marks writes failing. Other errors are returned.
    pub fn publish_when_possible(&mut self, map_if_missing: bool) -> Result<(), LogError> {
        let published = match map_if_missing {
            true => self.publish_map_if_missing(),
            false => self.publish(),
        };
        match published {
            Ok(_) => Ok(()),
            Err(LogError::Store(e)) if e.is_outage() => {
                tracing::error!(error = %e, "checkpoint not published at start: will retry");
                self.unpublished = true;
                self.map_pending |= map_if_missing;
                self.wrote(Err(&LogError::Store(e)));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// On opening a log whose latest checkpoint does not end with a subject map (one written
    /// before the map existed), publishes one that does, so evidence can be given at once.
    pub fn publish_map_if_missing(&mut self) -> Result<u64, LogError> {
        self.append_map_and_sign(true, None)
    }

    /// On opening a log that has no `log_parameters` leaf yet (a new log, or one from before
    /// subject labels), appends it and publishes the checkpoint that ends with its map.
    pub fn publish_parameters_if_missing(&mut self) -> Result<u64, LogError> {
        let parameters = LogParameters::new(
            &self.labeler.public_key(),
            crate::rfc3339(crate::now_millis()),
        );
        let leaf = Leaf::of(&parameters)?;
        self.append_map_and_sign(true, Some(&leaf))
    }

    /// Appends the map leaf and signs the tree ending with it, under the writer lock; unless the
    /// latest checkpoint already covers the tree (and, with `unless_map_ends_it`, ends with a
    /// map leaf). With `parameters`, first appends that `log_parameters` leaf if the log has
    /// none, and does nothing else if it has.
    fn append_map_and_sign(
        &mut self,
        unless_map_ends_it: bool,
        parameters: Option<&Leaf>,
    ) -> Result<u64, LogError> {
        let frontier = self.frontier.take();
        let map = self.map.clone();
        let signer = self.signer.clone();
        let staged = RefCell::new(None);
        let result = self.store.write(|r: &mut Repo<'_>| {
            let state = r.log_state()?;
            let parameters = match parameters {
                Some(leaf) if r.log_meta()?.is_some_and(|m| m.parameters_leaf.is_none()) => {
                    Some(leaf)
                }
                _ => None,
            };
            if let Some(latest) = r.latest_checkpoint()? {
                let covered = latest.tree_size >= state.tree_size;
                if parameters.is_none()
                    && covered
                    && (!unless_map_ends_it || ends_with_map(r, state.tree_size.get())?)
                {
                    return Ok((None, latest.tree_size.get()));
                }
            }
            let mut frontier = match frontier {
                Some(f) if f.size() == state.tree_size.get() => f,
                _ => load_frontier(r)?,
            };
            let from = frontier.size();
            if from == 0 && parameters.is_none() {
                // The empty tree's checkpoint, published when the log is created: no map leaf.
                r.insert_checkpoint(&sign_checkpoint(&signer, 0, frontier.root())?)?;
                return Ok((Some(frontier), 0));
            }
            if let Some(leaf) = parameters {
                r.insert_leaves(&[NewLeaf {
                    leaf_index: LeafIndex(from),
                    leaf_hash: &leaf.hash(),
                    data: leaf.bytes(),
                }])?;
                r.set_parameters_leaf(from)?;
                frontier.push(leaf.hash());
            }
            let covers = frontier.size();
            let next = {
                let map = map.read().expect("map lock");
                let changes = chain::subjects_of(r, map.size(), covers)?;
                // The map leaf itself names no subject: the staged map covers it too.
                map.stage_named(covers + 1, changes)
            };
            let leaf = Leaf::from_json(&map::map_leaf_document(
                covers,
                &next.root(),
                next.count(),
                &next.tenants_root(),
            ))?;
            frontier.push(leaf.hash());
            let size = frontier.size();
            r.insert_leaves(&[NewLeaf {
                leaf_index: LeafIndex(covers),
                leaf_hash: &leaf.hash(),
                data: leaf.bytes(),
            }])?;
            for tile in frontier.take_writes() {
                r.put_tile(i32::from(tile.level), tile.index, &tile.hashes)?;
            }
            let root = frontier.root();
            if !r.advance_log_state(from, size, &root, crate::now_millis())? {
                return Err(LogError::Corrupt(
                    "the tree state moved while the writer lock was held".into(),
                ));
            }
            r.insert_checkpoint(&sign_checkpoint(&signer, size, root)?)?;
            *staged.borrow_mut() = Some(next);
            Ok((Some(frontier), size))
        });
        // On an error the frontier is reloaded next time, and the map stays as it was.
        let (frontier, size) = result?;
        self.frontier = frontier;
        if let Some(next) = staged.into_inner() {
            self.map.write().expect("map lock").apply(next);
            // The map now covers the whole tree: no head lies past it.
            self.recent = Some((size, Recent::new()));
        } else if self.frontier.is_none() {
            self.recent = None;
        }
        Ok(size)
    }

    /// Brings the map up to a checkpoint another process published, and checks its root against
    /// that checkpoint's map leaf.
    fn catch_up_map(&mut self, checkpoint_size: u64) -> Result<(), LogError> {
        let from = self.map.read().expect("map lock").size();
        if from >= checkpoint_size {
            return Ok(());
        }
        let map = self.map.clone();
        let signer = self.signer.clone();
        let next = self.store.read(|r| {
            let map = map.read().expect("map lock");
            let changes = chain::subjects_of(r, from, checkpoint_size)?;
            let next = map.stage_named(checkpoint_size, changes);
            check_map_leaf(
                r,
                &signer,
                checkpoint_size,
                &next.root(),
                &next.tenants_root(),
            )?;
            Ok::<_, LogError>(next)
        })?;
        self.map.write().expect("map lock").apply(next);
        // Heads now inside the map are the map's to give.
        if let Some((_, recent)) = &mut self.recent {
            recent.retain(|_, index| *index >= checkpoint_size);
        }
        Ok(())
    }
}

/// Whether the tree of `size` leaves ends with a subject map leaf (the empty tree needs none).
pub(super) fn ends_with_map(r: &mut Repo<'_>, size: u64) -> Result<bool, LogError> {
    if size == 0 {
        return Ok(true);
    }
    let leaf = r.leaf_data(size - 1, size)?;
    Ok(leaf.first().and_then(|l| map::map_leaf(l)).is_some())
}

/// Checks a map root against the map leaf that ends the tree of `size`, if it ends with one
/// (logs from before the map end their older checkpoints without). The map leaf is first proven
/// to be the one the log signed for that size (its inclusion, through the stored tiles, in the
/// signed checkpoint's root), so a row edited to match edited heads is caught: to pass, the
/// operator would have to sign another root for the same size, a fork witnesses see.
pub(super) fn check_map_leaf(
    r: &mut Repo<'_>,
    signer: &NoteSigner,
    size: u64,
    root: &Hash,
    tenants: &Hash,
) -> Result<(), LogError> {
    if size == 0 {
        return Ok(());
    }
    let Some(leaf) = r.leaf_data(size - 1, size)?.pop() else {
        return Err(LogError::Corrupt(format!("leaf {} is missing", size - 1)));
    };
    let Some(stated) = map::map_leaf(&leaf) else {
        return Ok(());
    };
    signed_leaf(r, signer, size - 1, &leaf, size)?;
    if stated.root != *root {
        return Err(LogError::Corrupt(format!(
            "the subject map rebuilt from the database does not match the map leaf {}: \
             the subjects' chain heads disagree with the log; refusing to run on them",
            size - 1
        )));
    }
    // A map leaf from before the tenants' directory states none.
    if stated.tenants.is_some_and(|t| t != *tenants) {
        return Err(LogError::Corrupt(format!(
            "the tenants' maps rebuilt from the database do not match the map leaf {}: a \
             subject row names another tenant than its leaves; refusing to run on them",
            size - 1
        )));
    }
    Ok(())
}

/// Checks that `leaf` is the leaf at `index` of the checkpoint of `size` the log signed.
fn signed_leaf(
    r: &mut Repo<'_>,
    signer: &NoteSigner,
    index: u64,
    leaf: &[u8],
    size: u64,
) -> Result<(), LogError> {
    let changed = || {
        LogError::Corrupt(format!(
            "the stored leaf {index} is not the one the checkpoint of size {size} signs: the \
             database was changed outside the service; refusing to run on it"
        ))
    };
    let row = r.checkpoint(size)?.ok_or_else(changed)?;
    let verifier = super::note::NoteVerifier::parse(&signer.verifier_key())?;
    let cp = verifier.checkpoint(&row.note).map_err(|_| changed())?;
    let path = super::proof::inclusion_proof(&mut super::tile_nodes(r), index, size)?;
    if cp.size != size
        || !super::proof::verify_inclusion(
            &super::hash::leaf_hash(leaf),
            index,
            size,
            &path,
            &cp.root,
        )
    {
        return Err(changed());
    }
    Ok(())
}

/// Answers each request of a batch: its leaves once committed, else that nothing was recorded.
fn answer(
    batch: Vec<AppendRequest>,
    result: Result<(), LogError>,
    start: u64,
    leaves: Vec<Leaf>,
    counts: Vec<usize>,
) {
    match result {
        Ok(()) => {
            let mut leaves = leaves.into_iter();
            let mut index = start;
            for (request, count) in batch.into_iter().zip(counts) {
                let appended: Vec<Appended> = leaves
                    .by_ref()
                    .take(count)
                    .map(|leaf| {
                        index += 1;
                        Appended {
                            index: index - 1,
                            leaf,
                        }
                    })
                    .collect();
                let _ = request.reply.send(Ok(appended));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "append batch not committed");
            // The cause is logged; the caller learns only that nothing was recorded.
            let why = if matches!(&e, LogError::Store(s) if s.is_outage()) {
                "the database failed while committing"
            } else {
                "the batch failed"
            };
            for request in batch {
                let _ = request.reply.send(Err(LogError::NotCommitted(why.into())));
            }
        }
    }
}

/// The subjects' heads since the map (`recent`) for a tree of `size` leaves: the ones kept if
/// they cover it, with the heads of leaves another process appended added, else read afresh.
fn recent_at(
    r: &mut Repo<'_>,
    recent: Option<(u64, Recent)>,
    map_size: u64,
    size: u64,
) -> Result<Recent, LogError> {
    Ok(match recent {
        Some((covers, recent)) if covers == size => recent,
        // Another process appended: add the heads of its leaves.
        Some((covers, mut recent)) if covers < size => {
            recent.extend(chain::recent_of(r, covers, size)?);
            recent
        }
        _ => chain::recent_of(r, map_size, size)?,
    })
}

/// Writes a batch's leaves at `start..`, the tiles the frontier completed, and the new tree
/// state (compare-and-swap from `start`: another writer cannot have moved it under the lock).
fn store_leaves(
    r: &mut Repo<'_>,
    start: u64,
    leaves: &[Leaf],
    frontier: &mut Frontier,
) -> Result<(), LogError> {
    let hashes: Vec<[u8; 32]> = leaves.iter().map(Leaf::hash).collect();
    let rows: Vec<NewLeaf<'_>> = leaves
        .iter()
        .zip(&hashes)
        .enumerate()
        .map(|(i, (leaf, hash))| NewLeaf {
            leaf_index: LeafIndex(start + i as u64),
            leaf_hash: hash,
            data: leaf.bytes(),
        })
        .collect();
    r.insert_leaves(&rows)?;
    for tile in frontier.take_writes() {
        r.put_tile(i32::from(tile.level), tile.index, &tile.hashes)?;
    }
    let now = crate::now_millis();
    if !r.advance_log_state(start, frontier.size(), &frontier.root(), now)? {
        return Err(LogError::Corrupt(
            "the tree state moved while the writer lock was held".into(),
        ));
    }
    Ok(())
}
