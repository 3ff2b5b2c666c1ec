//! The sequencer: the one writer of the tree. A dedicated thread takes append requests from a
//! channel, commits everything queued as one transaction (group commit: leaves, changed tiles,
//! the new tree state by compare-and-swap on its size), answers each request with its indexes
//! only after the commit, and publishes signed checkpoints at most one interval later.
//!
//! Several processes may share one database: each transaction holds the database's writer lock
//! (`Store::write`), and a sequencer that finds the stored size moved reloads its frontier first,
//! so appends from all processes form one tree — never a fork.

use std::cell::RefCell;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::note::NoteSigner;
use super::tiles::Frontier;
use super::{load_frontier, sign_checkpoint, Appended, Leaf, LogEntry, LogError, LogSettings};
use crate::store::{NewLeaf, Repo, Store};

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
    settings: LogSettings,
    /// The right edge of the tree as of our last commit; `None` after a failed transaction.
    frontier: Option<Frontier>,
    /// Largest size committed by us and not yet covered by a checkpoint we know of.
    unpublished: bool,
    last_publish: Instant,
}

impl Sequencer {
    pub fn new(
        store: Store,
        signer: Arc<NoteSigner>,
        settings: LogSettings,
        frontier: Frontier,
    ) -> Self {
        Self {
            store,
            signer,
            settings,
            frontier: Some(frontier),
            unpublished: false,
            last_publish: Instant::now(),
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
        let frontier = self.frontier.take();
        // The leaves built in the transaction, kept outside it for the unknown-outcome check.
        let built: RefCell<(u64, Vec<Leaf>)> = RefCell::new((0, Vec::new()));
        let result = self.store.write(|r: &mut dyn Repo| {
            let state = r.log_state()?;
            let mut frontier = match frontier {
                Some(f) if f.size() == state.tree_size as u64 => f,
                // Another process appended, or our last transaction failed: start from the store.
                _ => load_frontier(r)?,
            };
            let start = frontier.size();
            let mut leaves = Vec::with_capacity(batch.iter().map(|b| b.entries.len()).sum());
            for entry in batch.iter_mut().flat_map(|b| b.entries.iter_mut()) {
                // The entry learns its index, writes its own rows, and gives its leaf.
                let leaf = entry.build(r, start + leaves.len() as u64)?;
                frontier.push(leaf.hash());
                leaves.push(leaf);
            }
            let hashes: Vec<[u8; 32]> = leaves.iter().map(Leaf::hash).collect();
            let rows: Vec<NewLeaf<'_>> = leaves
                .iter()
                .zip(&hashes)
                .enumerate()
                .map(|(i, (leaf, hash))| NewLeaf {
                    leaf_index: (start + i as u64) as i64,
                    leaf_hash: hash,
                    data: leaf.bytes(),
                })
                .collect();
            r.insert_leaves(&rows)?;
            for tile in frontier.take_writes() {
                r.put_tile(i32::from(tile.level), tile.index as i64, &tile.hashes)?;
            }
            let now = crate::now_millis();
            if !r.advance_log_state(start as i64, frontier.size() as i64, &frontier.root(), now)? {
                return Err(LogError::Corrupt(
                    "the tree state moved while the writer lock was held".into(),
                ));
            }
            *built.borrow_mut() = (start, leaves);
            Ok(Some(frontier))
        });
        let (start, leaves) = built.into_inner();
        // A failed COMMIT (a connection lost mid-commit, an I/O error) may still have committed:
        // look before answering, so a caller is never told "not committed" for leaves in the log.
        let result = result.or_else(|e| {
            if !leaves.is_empty() && self.leaves_are_stored(start, &leaves) {
                tracing::warn!(error = %e, "commit reported an error, but the batch is stored");
                Ok(None)
            } else {
                Err(e)
            }
        });
        match result {
            Ok(frontier) => {
                self.frontier = frontier;
                self.unpublished = true;
                let mut leaves = leaves.into_iter();
                let mut index = start;
                for request in batch {
                    let appended: Vec<Appended> = leaves
                        .by_ref()
                        .take(request.entries.len())
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
                for request in batch {
                    let _ = request
                        .reply
                        .send(Err(LogError::NotCommitted(e.to_string())));
                }
            }
        }
    }

    /// Whether `leaves` are stored at `start..` (checked on a fresh connection).
    fn leaves_are_stored(&self, start: u64, leaves: &[Leaf]) -> bool {
        let end = start + leaves.len() as u64;
        let stored = self
            .store
            .read(|r| Ok::<_, LogError>(r.leaf_hashes(start as i64, end as i64)?));
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
        match publish(&self.store, &self.signer) {
            Ok(_) => self.unpublished = false,
            Err(e) => tracing::error!(error = %e, "checkpoint not published"),
        }
    }
}

/// Publishes a checkpoint of the committed tree if it is larger than the latest checkpoint
/// (compare-and-swap on size, under the writer lock); returns the latest checkpointed size.
pub(super) fn publish(store: &Store, signer: &NoteSigner) -> Result<u64, LogError> {
    // A cheap read first: most idle checks find nothing to do.
    let (state, latest) =
        store.read(|r| Ok::<_, LogError>((r.log_state()?, r.latest_checkpoint()?)))?;
    if latest
        .as_ref()
        .is_some_and(|cp| cp.tree_size >= state.tree_size)
    {
        return Ok(latest.map_or(0, |cp| cp.tree_size as u64));
    }
    store.write(|r: &mut dyn Repo| {
        let state = r.log_state()?;
        if let Some(latest) = r.latest_checkpoint()? {
            if latest.tree_size >= state.tree_size {
                return Ok(latest.tree_size as u64);
            }
        }
        let root = state
            .root_hash
            .as_slice()
            .try_into()
            .map_err(|_| LogError::Corrupt("the stored root is not 32 bytes".into()))?;
        let row = sign_checkpoint(signer, state.tree_size as u64, root)?;
        r.insert_checkpoint(&row)?;
        Ok(state.tree_size as u64)
    })
}
