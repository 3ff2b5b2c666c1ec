//! A C2SP `tlog-witness`: the judgement behind `POST /add-checkpoint`. For each log it knows (by
//! origin and key) it keeps the latest checkpoint it cosigned, in a state directory, and cosigns a
//! new one only if it is signed by the log, its `old` size is the one it holds, and the
//! consistency proof from that size verifies — so two views of one log never both get its
//! cosignature. Check-and-update is atomic (one lock; the state file is replaced by rename after
//! an fsync). An **auditing** witness also replays every leaf up to the checkpoint (`audit`: the
//! subject map and the chain rule) and cosigns only a checkpoint that ends with a map leaf it
//! checked, so a quorum of them makes completeness hold against the operator. Fetching the
//! leaves is the caller's ([`LeafSource`]). HTTP lives in `api::witness`; the log's side of the
//! protocol in `cosigning.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use consent_ledger_sdk::evidence::verify::b64_hash;
use sha2::{Digest, Sha256};

use super::audit::MapAuditor;
use super::cosign::Cosigner;
use super::hash::Hash;
use super::monitor::Alarm;
use super::note::{split_note, Checkpoint, NoteVerifier};
use super::proof::verify_consistency;

/// Why a checkpoint is not cosigned; each maps to the protocol's HTTP status.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WitnessError {
    /// The request body is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The witness does not follow this origin (404).
    #[error("this witness does not follow the log {0:?}")]
    UnknownLog(String),
    /// No signature by the log's key verifies (403).
    #[error("the checkpoint is not signed by the log's key: {0}")]
    NotSigned(String),
    /// `old` is not the size of the latest checkpoint cosigned (409, the body is that size).
    #[error("the latest checkpoint cosigned for this log has size {latest}, not {old}")]
    OldSizeMismatch {
        /// The size the client sent.
        old: u64,
        /// The size the witness holds.
        latest: u64,
    },
    /// Same size, different root: the log forked (422).
    #[error("a checkpoint of size {0} with another root was already cosigned: the log forked")]
    Fork(u64),
    /// The consistency proof does not verify (422).
    #[error("the consistency proof from size {0} to {1} does not verify")]
    Inconsistent(u64, u64),
    /// The checkpoint cannot be consistent with what was cosigned, whatever the proof (422): a
    /// size-0 checkpoint whose root is not the empty tree's, or a proof where none can be.
    #[error("{0}")]
    Unprocessable(String),
    /// The state could not be read or written (500).
    #[error("witness state: {0}")]
    State(String),
    /// The leaves up to the checkpoint do not pass the audit (422): not cosigned, ever.
    #[error("the checkpoint fails this witness's audit: {0}")]
    AuditFailed(String),
    /// The log's leaves could not be read for the audit (503): try again.
    #[error("cannot audit the checkpoint now: {0}")]
    AuditUnavailable(String),
}

/// Where an auditing witness reads a log's leaves: `fetch(start, end)` gives leaves from
/// `start` (as many as it likes, at most up to `end`).
pub type LeafSource = Box<dyn Fn(u64, u64) -> Result<Vec<Vec<u8>>, String> + Send + Sync>;

/// A witness: its key, the logs it follows, its state directory.
pub struct Witness {
    cosigner: Cosigner,
    logs: HashMap<String, NoteVerifier>,
    state: PathBuf,
    lock: Mutex<()>,
    /// The logs this witness audits (by origin): the auditor and where it reads the leaves.
    audits: HashMap<String, Mutex<(MapAuditor, LeafSource)>>,
}

impl Witness {
    /// A witness for `logs` (verifier keys), keeping its state in `state` (created if missing).
    pub fn new(cosigner: Cosigner, logs: &[String], state: &Path) -> Result<Self, String> {
        let logs = logs
            .iter()
            .map(|vkey| {
                NoteVerifier::parse(vkey)
                    .map(|v| (v.name().to_string(), v))
                    .map_err(|e| format!("log key {vkey:?}: {e}"))
            })
            .collect::<Result<HashMap<_, _>, _>>()?;
        if logs.is_empty() {
            return Err("a witness needs at least one log to follow (--log VKEY)".into());
        }
        std::fs::create_dir_all(state)
            .map_err(|e| format!("cannot create the state directory {}: {e}", state.display()))?;
        Ok(Self {
            cosigner,
            logs,
            state: state.to_path_buf(),
            lock: Mutex::new(()),
            audits: HashMap::new(),
        })
    }

    /// Makes this an auditing witness of the log with verifier key `vkey` (one it follows),
    /// reading its leaves from `source`; the audit's memory is kept in the state directory.
    pub fn audit(mut self, vkey: &str, source: LeafSource) -> Result<Self, String> {
        let origin = NoteVerifier::parse(vkey)
            .map_err(|e| format!("log key {vkey:?}: {e}"))?
            .name()
            .to_string();
        if !self.logs.contains_key(&origin) {
            return Err(format!(
                "this witness does not follow {origin:?}: give its --log"
            ));
        }
        let dir = self.state_file(&origin).with_extension("audit.d");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let auditor = MapAuditor::open(&dir).map_err(|e| e.to_string())?;
        self.audits.insert(origin, Mutex::new((auditor, source)));
        Ok(self)
    }

    /// For an auditing witness of the log: replays the leaves up to `cp` (the subject map and
    /// the chain rule, and their hash to its root) and requires its last leaf to be a map leaf.
    fn audited(&self, origin: &str, cp: &Checkpoint, now: u64) -> Result<(), WitnessError> {
        let Some(audit) = self.audits.get(origin).filter(|_| cp.size > 0) else {
            // Nothing to audit in the empty tree.
            return Ok(());
        };
        let mut audit = audit.lock().expect("audit lock");
        let (auditor, source) = &mut *audit;
        if cp.size < auditor.size() {
            return Err(WitnessError::State(format!(
                "the audit has read {} leaves, more than the checkpoint's {}",
                auditor.size(),
                cp.size
            )));
        }
        // When this witness last cosigned for the log (a tree without the new leaves).
        let cosigned = std::fs::read_to_string(self.state_file(origin).with_extension("time"))
            .ok()
            .and_then(|t| t.trim().parse().ok());
        auditor
            .advance_since(cp, &**source, Some((cosigned, now)))
            .map_err(|alarm| match alarm {
                Alarm::Fetch(e) => WitnessError::AuditUnavailable(e),
                Alarm::State(e) => WitnessError::State(e),
                other => {
                    tracing::error!(alarm = %other, "an audited log failed the audit");
                    WitnessError::AuditFailed(other.to_string())
                }
            })?;
        if !auditor.ends_with_map() {
            return Err(WitnessError::AuditFailed(format!(
                "the checkpoint of size {} does not end with a subject_map leaf",
                cp.size
            )));
        }
        Ok(())
    }

    /// The witness's verifier key.
    pub fn vkey(&self) -> String {
        self.cosigner.vkey()
    }

    fn state_file(&self, origin: &str) -> PathBuf {
        self.state.join(format!(
            "{}.checkpoint",
            crate::hex(&Sha256::digest(origin))
        ))
    }

    /// The latest checkpoint cosigned for a log (verified again: the state is not trusted blindly).
    fn latest(&self, log: &NoteVerifier) -> Result<Option<Checkpoint>, WitnessError> {
        match std::fs::read_to_string(self.state_file(log.name())) {
            Ok(note) => log.checkpoint(&note).map(Some).map_err(|e| {
                WitnessError::State(format!("the stored checkpoint does not verify: {e}"))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(WitnessError::State(e.to_string())),
        }
    }

    fn store(&self, origin: &str, note: &str) -> Result<(), WitnessError> {
        crate::write_atomically(&self.state_file(origin), note.as_bytes())
            .map_err(|e| WitnessError::State(e.to_string()))
    }

    /// Handles an `add-checkpoint` request body; returns the cosignature line(s) to answer with.
    pub fn add_checkpoint(&self, request: &str, now: u64) -> Result<String, WitnessError> {
        let bad = |m: &str| WitnessError::BadRequest(m.to_string());
        let (old, proof, note) = parse_request(request)?;
        let origin = note.split('\n').next().unwrap_or_default();
        let log = self
            .logs
            .get(origin)
            .ok_or_else(|| WitnessError::UnknownLog(origin.to_string()))?;
        // Strict: a line with the log key's name and ID that fails refuses the note, wherever
        // it stands (`NoteVerifier`).
        let cp = log.checkpoint(note).map_err(WitnessError::NotSigned)?;
        if old > cp.size {
            return Err(bad("the old size is larger than the checkpoint's size"));
        }
        let _guard = self.lock.lock().expect("witness lock");
        let latest = self.latest(log)?;
        let latest_size = latest.as_ref().map_or(0, |c| c.size);
        if old != latest_size {
            return Err(WitnessError::OldSizeMismatch {
                old,
                latest: latest_size,
            });
        }
        check_extends(latest.as_ref(), old, &proof, &cp)?;
        self.audited(origin, &cp, now)?;
        // The exact body, extension lines and all: that is what verifiers check against.
        let (body, _) = split_note(note).map_err(|e| bad(&e.to_string()))?;
        let lines = self
            .cosigner
            .cosign(body, now)
            .map_err(|e| bad(&e.to_string()))?;
        self.store(origin, note)?;
        let state = |e: std::io::Error| WitnessError::State(e.to_string());
        let file = self.state_file(origin);
        crate::write_atomically(&file.with_extension("time"), now.to_string().as_bytes())
            .map_err(state)?;
        // What monitors read: the checkpoint with the log's signature(s) this witness verified
        // and its own — no other line the note came with.
        crate::write_atomically(
            &file.with_extension("cosigned"),
            for_monitors(log, note, &lines).as_bytes(),
        )
        .map_err(state)?;
        Ok(lines)
    }

    /// The latest checkpoint this witness cosigned for the log whose origin hashes (SHA-256,
    /// lower-case hex) to `origin_hash`, with the log's signature and the cosignature(s) it
    /// answered with (tlog-witness, monitor retrieval); `None` if it cosigned none.
    pub fn cosigned(&self, origin_hash: &str) -> Result<Option<String>, WitnessError> {
        if consent_ledger_sdk::unhex32(origin_hash).is_none() {
            return Ok(None);
        }
        let file = self.state.join(format!("{origin_hash}.cosigned"));
        match std::fs::read_to_string(&file) {
            Ok(note) => return Ok(Some(note)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(WitnessError::State(e.to_string())),
        }
        // Cosigned before this file was kept: the stored checkpoint and the time it was
        // cosigned give the same line again (Ed25519 signs deterministically).
        let Some(log) = self
            .logs
            .values()
            .find(|log| crate::hex(&Sha256::digest(log.name())) == origin_hash)
        else {
            return Ok(None);
        };
        if self.latest(log)?.is_none() {
            return Ok(None);
        }
        let note = std::fs::read_to_string(self.state_file(log.name()))
            .map_err(|e| WitnessError::State(e.to_string()))?;
        let (body, _) = split_note(&note).map_err(|e| WitnessError::State(e.to_string()))?;
        let time = std::fs::read_to_string(file.with_extension("time"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| WitnessError::State("no time of the last cosignature".into()))?;
        let lines = self
            .cosigner
            .cosign(body, time)
            .map_err(|e| WitnessError::State(e.to_string()))?;
        Ok(Some(for_monitors(log, &note, &lines)))
    }
}

/// A cosigned checkpoint as monitors read it: the body, the log's signature lines (verified),
/// and this witness's cosignature lines.
fn for_monitors(log: &NoteVerifier, note: &str, lines: &str) -> String {
    let body = split_note(note).map(|(body, _)| body).unwrap_or_default();
    format!("{body}\n{}{lines}", log.own_lines(note))
}

/// An `add-checkpoint` body: the old size, the consistency proof, and the checkpoint note.
fn parse_request(request: &str) -> Result<(u64, Vec<Hash>, &str), WitnessError> {
    let bad = |m: &str| WitnessError::BadRequest(m.to_string());
    let (head, note) = request
        .split_once("\n\n")
        .ok_or_else(|| bad("no blank line before the checkpoint"))?;
    let mut lines = head.split('\n');
    let old: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("old "))
        .and_then(consent_ledger_sdk::parse_decimal)
        .ok_or_else(|| bad("the first line must be 'old <size>' (decimal, no leading zeroes)"))?;
    let proof: Vec<Hash> = lines
        .map(|l| b64_hash(l).ok_or_else(|| bad("a consistency proof line is not a base64 hash")))
        .collect::<Result<_, _>>()?;
    if proof.len() > 63 {
        return Err(bad("more than 63 consistency proof lines"));
    }
    Ok((old, proof, note))
}

/// Whether checkpoint `cp` extends `latest`, the last one this witness cosigned, by `proof` from
/// size `old` (tlog-witness: 409 for a fork or another size, 422 for a malformed proof).
fn check_extends(
    latest: Option<&Checkpoint>,
    old: u64,
    proof: &[Hash],
    cp: &Checkpoint,
) -> Result<(), WitnessError> {
    let unprocessable = |m: &str| WitnessError::Unprocessable(m.to_string());
    if cp.size == 0 && cp.root != super::hash::empty_root() {
        return Err(unprocessable(
            "a checkpoint of size 0 must have the empty tree's root (SHA-256 of nothing)",
        ));
    }
    if old == 0 && !proof.is_empty() {
        return Err(unprocessable(
            "the consistency proof must be empty when the old size is 0",
        ));
    }
    match latest {
        Some(latest) if latest.size == cp.size && latest.root != cp.root => {
            return Err(WitnessError::Fork(cp.size));
        }
        Some(latest) if latest.size == cp.size && !proof.is_empty() => {
            return Err(unprocessable(
                "the consistency proof must be empty for the same size",
            ));
        }
        // The empty tree is consistent with any tree: no proof from size 0.
        Some(latest)
            if latest.size > 0
                && latest.size < cp.size
                && !verify_consistency(latest.size, cp.size, &latest.root, &cp.root, proof) =>
        {
            return Err(WitnessError::Inconsistent(latest.size, cp.size));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::cosign::CosignatureVerifier;
    use crate::log::hash::{leaf_hash, node_hash};
    use crate::log::note::NoteSigner;
    use base64::{engine::general_purpose::STANDARD as B64, Engine};

    fn checkpoint(log: &NoteSigner, size: u64, root: &Hash) -> String {
        log.sign(
            &Checkpoint {
                origin: log.name().into(),
                size,
                root: *root,
            }
            .body(),
        )
        .unwrap()
    }

    #[test]
    fn the_witness_cosigns_only_consistent_growth() {
        let dir = tempfile::tempdir().unwrap();
        let log = NoteSigner::new("example.jp/log", &[5; 32]).unwrap();
        let cosigner = Cosigner::generate("witness.example.jp/w").unwrap();
        let verifier = CosignatureVerifier::parse(&cosigner.vkey()).unwrap();
        let witness = Witness::new(cosigner, &[log.verifier_key()], dir.path()).unwrap();
        let (a, b, c) = (leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c"));
        let one = checkpoint(&log, 1, &a);
        let two = checkpoint(&log, 2, &node_hash(&a, &b));
        let forked_two = checkpoint(&log, 2, &node_hash(&a, &c));

        let line = witness
            .add_checkpoint(&format!("old 0\n\n{one}"), 10)
            .unwrap();
        assert_eq!(verifier.cosigned_at(&format!("{one}{line}")), Some(10));
        // A stale client learns the size; a proof that does not verify is refused.
        assert_eq!(
            witness.add_checkpoint(&format!("old 0\n\n{two}"), 11),
            Err(WitnessError::OldSizeMismatch { old: 0, latest: 1 })
        );
        assert_eq!(
            witness.add_checkpoint(&format!("old 1\n{}\n\n{two}", B64.encode(c)), 11),
            Err(WitnessError::Inconsistent(1, 2))
        );
        let line = witness
            .add_checkpoint(&format!("old 1\n{}\n\n{two}", B64.encode(b)), 12)
            .unwrap();
        assert_eq!(verifier.cosigned_at(&format!("{two}{line}")), Some(12));
        // The same size again is fine; another root of it is a fork: "If the old size matches
        // the checkpoint size, the witness MUST check that the root hashes are also identical.
        // If they don't match, the witness MUST respond with a "422 Unprocessable Entity" HTTP
        // status code." (`api::witness` maps `Fork` to 422.)
        assert!(witness
            .add_checkpoint(&format!("old 2\n\n{two}"), 13)
            .is_ok());
        assert_eq!(
            witness.add_checkpoint(&format!("old 2\n\n{forked_two}"), 14),
            Err(WitnessError::Fork(2))
        );
        // Strangers, forgeries and nonsense.
        let other = NoteSigner::new("other.example/log", &[6; 32]).unwrap();
        assert!(matches!(
            witness.add_checkpoint(&format!("old 0\n\n{}", checkpoint(&other, 1, &a)), 15),
            Err(WitnessError::UnknownLog(_))
        ));
        let impostor = NoteSigner::new("example.jp/log", &[7; 32]).unwrap();
        assert!(matches!(
            witness.add_checkpoint(&format!("old 2\n\n{}", checkpoint(&impostor, 3, &a)), 15),
            Err(WitnessError::NotSigned(_))
        ));
        for garbage in [
            "",
            "old 01\n\nx",
            "old 3\n\n",
            "old 5\n\n{two}",
            "new 1\n\n",
        ] {
            assert!(witness
                .add_checkpoint(&garbage.replace("{two}", &two), 15)
                .is_err());
        }
        // Monitors read what was cosigned last: the log's note and the witness's line.
        let hash = crate::hex(&Sha256::digest("example.jp/log"));
        let stored = witness.cosigned(&hash).unwrap().unwrap();
        assert!(stored.starts_with(&two) && verifier.cosigned_at(&stored) == Some(13));
        assert_eq!(witness.cosigned(&"0".repeat(64)).unwrap(), None);
        // A witness that cosigned before it kept this file gives the same answer again.
        std::fs::remove_file(dir.path().join(format!("{hash}.cosigned"))).unwrap();
        assert_eq!(witness.cosigned(&hash).unwrap().unwrap(), stored);
        // The state survives a restart, and is where the witness left it.
        let cosigner = Cosigner::generate("witness.example.jp/w").unwrap();
        let again = Witness::new(cosigner, &[log.verifier_key()], dir.path()).unwrap();
        assert_eq!(
            again.add_checkpoint(&format!("old 0\n\n{one}"), 16),
            Err(WitnessError::OldSizeMismatch { old: 0, latest: 2 })
        );
    }

    /// The C2SP tlog-witness sentences on the empty tree, proofs from size 0, and a failing
    /// signature line by the log's key, each as a case.
    #[test]
    fn the_witness_follows_tlog_witness_to_the_letter() {
        let dir = tempfile::tempdir().unwrap();
        let log = NoteSigner::new("example.jp/log", &[5; 32]).unwrap();
        let cosigner = Cosigner::generate("witness.example.jp/w").unwrap();
        let witness = Witness::new(cosigner, &[log.verifier_key()], dir.path()).unwrap();
        let a = leaf_hash(b"a");
        // "A checkpoint of size zero MUST have the root hash of the empty tree, which RFC 6962,
        // Section 2.1 defines as the hash of the empty string. Otherwise, the witness MUST
        // respond with a "422 Unprocessable Entity" HTTP status code."
        assert!(matches!(
            witness.add_checkpoint(&format!("old 0\n\n{}", checkpoint(&log, 0, &a)), 1),
            Err(WitnessError::Unprocessable(_))
        ));
        let empty = checkpoint(&log, 0, &crate::log::hash::empty_root());
        assert!(witness
            .add_checkpoint(&format!("old 0\n\n{empty}"), 2)
            .is_ok());
        // "If the proof is not empty when the old size is zero, or if a Merkle Consistency
        // Proof doesn't verify, the witness MUST respond with a "422 Unprocessable Entity"."
        let one = checkpoint(&log, 1, &a);
        assert!(matches!(
            witness.add_checkpoint(&format!("old 0\n{}\n\n{one}", B64.encode(a)), 3),
            Err(WitnessError::Unprocessable(_))
        ));
        // "The witness MUST respond with a "403 Forbidden" HTTP status code if [...] a signature
        // line's key name and ID match a trusted key but the signature itself fails to verify",
        // wherever that line stands.
        let (body, good) = one.split_once("\n\n").unwrap();
        let mut blob = B64
            .decode(good.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        blob[10] ^= 1;
        let bad = format!("\u{2014} example.jp/log {}\n", B64.encode(&blob));
        for note in [
            format!("{body}\n\n{bad}{good}"),
            format!("{body}\n\n{good}{bad}"),
        ] {
            assert!(matches!(
                witness.add_checkpoint(&format!("old 0\n\n{note}"), 4),
                Err(WitnessError::NotSigned(_))
            ));
        }
        assert!(witness
            .add_checkpoint(&format!("old 0\n\n{one}"), 5)
            .is_ok());
    }
}
