//! A log monitor's judgement: each checkpoint it sees must be signed by the log's key, never
//! smaller than the largest seen, consistent (RFC 9162 consistency proof) with the previous one,
//! and the only root ever seen for its size — two roots for one size is a split view (a fork).
//! The history lives in a state directory (`<size>.checkpoint` files, the signed notes), so a
//! restarted monitor keeps its memory. Fetching is the caller's (the CLI uses HTTP); this module
//! has no network and no database.

use std::path::{Path, PathBuf};

use super::hash::Hash;
use super::note::{Checkpoint, NoteVerifier};
use super::proof::verify_consistency;

fn at(index: &Option<u64>) -> String {
    index.map_or("no event".to_string(), |i| format!("leaf {i}"))
}

/// What went wrong, worth waking someone for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Alarm {
    /// The checkpoint's signature or format is bad.
    #[error("bad checkpoint: {0}")]
    BadCheckpoint(String),
    /// The tree shrank.
    #[error("the tree shrank: size {seen} was seen before, the log now shows {now}")]
    Shrank {
        /// Largest size seen.
        seen: u64,
        /// Size now.
        now: u64,
    },
    /// Two roots for one size.
    #[error("split view: two different roots for tree size {0} (the log forked)")]
    SplitView(u64),
    /// The monitor's own memory cannot be read or written: not the log's fault, but nothing
    /// can be judged until it is fixed.
    #[error("state directory: {0}")]
    State(String),
    /// A subject map leaf is not the map of the leaves before it.
    #[error("the subject map leaf at {0} does not match the leaves before it: the log misstates which events an address has")]
    MapMismatch(u64),
    /// A leaf's `prev` is not its subject's latest leaf before it: the chain skips an event
    /// (or names one that is not the subject's).
    #[error("leaf {leaf} names {} as its subject's previous event, but the log's latest event of that subject before it is {}: the log skips or misplaces an event of an address", at(.prev), at(.head))]
    ChainBroken {
        /// The leaf whose `prev` is wrong.
        leaf: u64,
        /// What it names.
        prev: Option<u64>,
        /// What the map says.
        head: Option<u64>,
    },
    /// A leaf names a subject but its `prev` is not a leaf index.
    #[error("leaf {0} has a malformed prev: {1}")]
    MalformedChain(u64, String),
    /// A leaf claims to have been recorded before this witness cosigned a tree without it.
    #[error("leaf {leaf} says it was recorded at {recorded_at}, but this witness cosigned a tree without it at Unix time {cosigned}: the log back-dates it")]
    BackDated {
        /// The leaf.
        leaf: u64,
        /// Its `recorded_at`.
        recorded_at: String,
        /// When this witness last cosigned (a tree without the leaf), Unix seconds.
        cosigned: u64,
    },
    /// An erasure the law did not allow: consent in force, the retention period not run since
    /// the subject's last event, or a period other than the tenant's legal holds give.
    #[error("leaf {leaf} erases a subject's records before the law allows: {why}")]
    UnlawfulErasure {
        /// The `erasure` leaf.
        leaf: u64,
        /// Why it was not allowed.
        why: String,
    },
    /// A leaf claims to have been recorded later than this witness's clock says it is now.
    #[error("leaf {leaf} says it was recorded at {recorded_at}, but this witness's clock says it is Unix time {now}: the log dates it in the future")]
    FutureDated {
        /// The leaf.
        leaf: u64,
        /// Its `recorded_at`.
        recorded_at: String,
        /// This witness's time, Unix seconds.
        now: u64,
    },
    /// The leaves served do not hash to the checkpoint's root.
    #[error("the leaves served do not hash to the root of the checkpoint of size {0}")]
    EntriesMismatch(u64),
    /// The leaves could not be fetched.
    #[error("cannot fetch the leaves: {0}")]
    Fetch(String),
    /// The new checkpoint does not extend the previous one.
    #[error("size {to} is not consistent with size {from}: {why}")]
    Inconsistent {
        /// Previous size.
        from: u64,
        /// New size.
        to: u64,
        /// Why.
        why: String,
    },
}

/// What a checkpoint came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The first checkpoint seen.
    First(u64),
    /// Already seen.
    Unchanged(u64),
    /// A larger tree, consistent with the previous one.
    Grew {
        /// Previous size.
        from: u64,
        /// New size.
        to: u64,
    },
}

/// A monitor of one log.
pub struct Monitor {
    verifier: NoteVerifier,
    dir: PathBuf,
}

impl Monitor {
    /// A monitor verifying with `vkey`, remembering in `dir` (created if missing).
    pub fn new(vkey: &str, dir: &Path) -> Result<Self, String> {
        let verifier = NoteVerifier::parse(vkey).map_err(|e| format!("verifier key: {e}"))?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Self {
            verifier,
            dir: dir.to_path_buf(),
        })
    }

    fn open(&self, note: &str) -> Result<Checkpoint, Alarm> {
        self.verifier.checkpoint(note).map_err(Alarm::BadCheckpoint)
    }

    fn path(&self, size: u64) -> PathBuf {
        self.dir.join(format!("{size:020}.checkpoint"))
    }

    /// The checkpoint seen for `size`, if any. A state file that cannot be read or no longer
    /// verifies is an error: the monitor must never quietly forget what it saw.
    pub fn seen(&self, size: u64) -> Result<Option<Checkpoint>, Alarm> {
        let path = self.path(size);
        let note = match std::fs::read_to_string(&path) {
            Ok(note) => note,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Alarm::State(format!("{}: {e}", path.display()))),
        };
        self.verifier
            .checkpoint(&note)
            .map(Some)
            .map_err(|e| Alarm::State(format!("{} no longer verifies: {e}", path.display())))
    }

    /// The largest checkpoint seen.
    pub fn latest(&self) -> Result<Option<Checkpoint>, Alarm> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| Alarm::State(format!("{}: {e}", self.dir.display())))?;
        let mut largest = None;
        for entry in entries {
            let entry = entry.map_err(|e| Alarm::State(e.to_string()))?;
            let name = entry.file_name();
            let size = name
                .to_str()
                .and_then(|n| n.strip_suffix(".checkpoint"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(size) = size {
                largest = largest.max(Some(size));
            }
        }
        match largest {
            None => Ok(None),
            Some(size) => self.seen(size),
        }
    }

    /// Records a checkpoint: written whole (a temporary file, synced, renamed) or not at all.
    fn remember(&self, size: u64, note: &str) -> Result<(), Alarm> {
        crate::write_atomically(&self.path(size), note.as_bytes())
            .map_err(|e| Alarm::State(format!("{}: {e}", self.dir.display())))
    }

    /// Judges `note`, the log's current checkpoint. `consistency(from, to)` fetches the proof
    /// between two sizes. A good checkpoint is remembered; an alarm leaves the history as it was.
    pub fn observe(
        &self,
        note: &str,
        consistency: impl FnOnce(u64, u64) -> Result<Vec<Hash>, String>,
    ) -> Result<Observation, Alarm> {
        let cp = self.open(note)?;
        let same = self.seen(cp.size)?;
        if same.as_ref().is_some_and(|same| same.root != cp.root) {
            return Err(Alarm::SplitView(cp.size));
        }
        let observation = match self.latest()? {
            None => Observation::First(cp.size),
            Some(last) if cp.size < last.size => {
                return Err(Alarm::Shrank {
                    seen: last.size,
                    now: cp.size,
                })
            }
            Some(last) if cp.size == last.size => Observation::Unchanged(cp.size),
            Some(last) => {
                let inconsistent = |why: String| Alarm::Inconsistent {
                    from: last.size,
                    to: cp.size,
                    why,
                };
                if last.size > 0 {
                    let proof = consistency(last.size, cp.size).map_err(inconsistent)?;
                    if !verify_consistency(last.size, cp.size, &last.root, &cp.root, &proof) {
                        return Err(inconsistent("the consistency proof does not verify".into()));
                    }
                }
                Observation::Grew {
                    from: last.size,
                    to: cp.size,
                }
            }
        };
        if same.is_none() {
            self.remember(cp.size, note)?;
        }
        Ok(observation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::hash::{leaf_hash, node_hash};
    use crate::log::note::NoteSigner;

    fn note(signer: &NoteSigner, size: u64, root: Hash) -> String {
        let body = Checkpoint {
            origin: "test.example/log".into(),
            size,
            root,
        }
        .body();
        signer.sign(&body).unwrap()
    }

    #[test]
    fn judges_growth_shrinking_forks_and_its_own_memory() {
        let signer = NoteSigner::new("test.example/log", &[3; 32]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let monitor = Monitor::new(&signer.verifier_key(), dir.path()).unwrap();
        let (a, b, c) = (leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c"));
        let root2 = node_hash(&a, &b);
        let root3 = node_hash(&root2, &c);
        let no_proof = |_: u64, _: u64| -> Result<Vec<Hash>, String> { unreachable!() };
        assert_eq!(
            monitor.observe(&note(&signer, 2, root2), no_proof),
            Ok(Observation::First(2))
        );
        assert_eq!(
            monitor.observe(&note(&signer, 2, root2), no_proof),
            Ok(Observation::Unchanged(2))
        );
        // Size 2 → 3: the proof is [c] (RFC 9162 §2.1.4 for a power-of-two old size).
        assert_eq!(
            monitor.observe(&note(&signer, 3, root3), |from, to| {
                assert_eq!((from, to), (2, 3));
                Ok(vec![c])
            }),
            Ok(Observation::Grew { from: 2, to: 3 })
        );
        assert_eq!(
            monitor.observe(&note(&signer, 2, root2), no_proof),
            Err(Alarm::Shrank { seen: 3, now: 2 })
        );
        let other = node_hash(&root2, &leaf_hash(b"x"));
        assert_eq!(
            monitor.observe(&note(&signer, 3, other), no_proof),
            Err(Alarm::SplitView(3))
        );
        let bad_proof = monitor.observe(&note(&signer, 4, node_hash(&root2, &root2)), |_, _| {
            Ok(vec![a])
        });
        assert!(matches!(
            bad_proof,
            Err(Alarm::Inconsistent { from: 3, to: 4, .. })
        ));
        let stranger = NoteSigner::new("test.example/log", &[4; 32]).unwrap();
        assert!(matches!(
            monitor.observe(&note(&stranger, 5, root3), no_proof),
            Err(Alarm::BadCheckpoint(_))
        ));
        // Its memory damaged: an error, never a fresh start.
        std::fs::write(monitor.path(3), "garbage").unwrap();
        assert!(matches!(
            monitor.observe(&note(&signer, 3, root3), no_proof),
            Err(Alarm::State(_))
        ));
    }
}
