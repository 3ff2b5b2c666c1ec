//! The sequencer: the one writer of the tree. A dedicated thread takes append requests from a
//! channel, commits everything queued as one transaction (group commit: leaves, changed tiles,
//! the new tree state by compare-and-swap on its size), answers each request with its indexes
//! only after the commit, and publishes signed checkpoints at most one interval later.
//!
//! Several processes may share one database: each transaction holds the database's writer lock
//! (`Store::write`), and a sequencer that finds the stored size moved reloads its frontier first,
//! so appends from all processes form one tree — never a fork.

use std::ops::Range;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::note::NoteSigner;
use super::tiles::Frontier;
use super::{load_frontier, sign_checkpoint, Leaf, LogError, LogSettings};
use crate::store::{NewLeaf, Repo, Store};

/// How often an idle sequencer looks for appends by other processes left without a checkpoint.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// One caller's leaves and where to send their indexes.
pub(super) struct AppendRequest {
    pub leaves: Vec<Leaf>,
    pub reply: oneshot::Sender<Result<Range<u64>, LogError>>,
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
                    let mut leaves = batch[0].leaves.len();
                    while leaves < self.settings.max_batch {
                        let Ok(next) = requests.try_recv() else { break };
                        leaves += next.leaves.len();
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
    fn commit(&mut self, batch: Vec<AppendRequest>) {
        let frontier = self.frontier.take();
        let placed_at = std::cell::Cell::new(None);
        let result = self.store.write(|r: &mut dyn Repo| {
            let state = r.log_state()?;
            let mut frontier = match frontier {
                Some(f) if f.size() == state.tree_size as u64 => f,
                // Another process appended, or our last transaction failed: start from the store.
                _ => load_frontier(r)?,
            };
            let start = frontier.size();
            placed_at.set(Some(start));
            let mut rows = Vec::with_capacity(batch.iter().map(|b| b.leaves.len()).sum());
            for leaf in batch.iter().flat_map(|b| b.leaves.iter()) {
                let index = frontier.size() as i64;
                frontier.push(leaf.hash());
                rows.push((index, leaf.hash(), leaf));
            }
            let new_leaves: Vec<NewLeaf<'_>> = rows
                .iter()
                .map(|(index, hash, leaf)| NewLeaf {
                    leaf_index: *index,
                    leaf_hash: hash,
                    data: leaf.bytes(),
                })
                .collect();
            r.insert_leaves(&new_leaves)?;
            for tile in frontier.take_writes() {
                r.put_tile(i32::from(tile.level), tile.index as i64, &tile.hashes)?;
            }
            let now = crate::now_millis();
            if !r.advance_log_state(start as i64, frontier.size() as i64, &frontier.root(), now)? {
                return Err(LogError::Corrupt(
                    "the tree state moved while the writer lock was held".into(),
                ));
            }
            Ok((Some(frontier), start))
        });
        // A failed COMMIT (a connection lost mid-commit, an I/O error) may still have committed:
        // look before answering, so a caller is never told "not committed" for leaves in the log.
        let result = result.or_else(|e| match placed_at.get() {
            Some(start) if self.batch_is_stored(start, &batch) => {
                tracing::warn!(error = %e, "commit reported an error, but the batch is stored");
                Ok((None, start))
            }
            _ => Err(e),
        });
        match result {
            Ok((frontier, start)) => {
                self.frontier = frontier;
                self.unpublished = true;
                let mut next = start;
                for request in batch {
                    let end = next + request.leaves.len() as u64;
                    let _ = request.reply.send(Ok(next..end));
                    next = end;
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

    /// Whether the batch's leaves are stored at `start..` (checked on a fresh connection).
    fn batch_is_stored(&self, start: u64, batch: &[AppendRequest]) -> bool {
        let expected: Vec<[u8; 32]> = batch
            .iter()
            .flat_map(|b| b.leaves.iter().map(Leaf::hash))
            .collect();
        let end = start + expected.len() as u64;
        let stored = self
            .store
            .read(|r| Ok::<_, LogError>(r.leaf_hashes(start as i64, end as i64)?));
        stored.is_ok_and(|stored| {
            stored.len() == expected.len() && stored.iter().zip(&expected).all(|(s, e)| s == e)
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
