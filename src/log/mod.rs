//! The append-only Merkle log: its Rust API ([`Log`]) for appending leaves and reading signed
//! checkpoints, tiles and proofs. Storage-backed: the tree lives in the database as C2SP tiles;
//! memory holds only the right edge ([`tiles::Frontier`]).
//!
//! Submodules: `hash` (RFC 9162 hashing), `jcs` (canonical leaf JSON), `note` (signed notes and
//! checkpoints), `tiles` (tile addressing, frontier), `proof` (proof building and verifying),
//! `map` (the subject map every checkpoint commits to), `label` (the VRF key naming subjects), `monitor` (following a log),
//! `cosign`, `policy`, `witness`, `cosigning` (C2SP witness cosignatures: format, quorum
//! policies, the witness's judgement, and the log asking its witnesses),
//! `sequencer` (the single writer). HTTP lives in `api`, SQL in `store`.

pub mod audit;
mod chain;
pub use chain::Chain;
mod label;
pub use consent_ledger_sdk::{cosign, hash, jcs, map, note, policy, proof, tiles};
pub use label::Labeler;
pub mod cosigning;
pub mod monitor;
mod sequencer;
mod tile_cache;
pub mod witness;

use std::ops::Range;
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use crate::store::{CheckpointRow, LeafIndex, LogMetaRow, Repo, Store, StoreError};
use hash::{empty_root, leaf_hash, Hash};
use map::{MapProof, SubjectMap};
use note::{Checkpoint, NoteError, NoteSigner};
use proof::{MissingTile, TileNodes, TileTree};
use sequencer::{AppendRequest, Sequencer};
use tiles::{split_hashes, Frontier, TileKind, TileRef, TILE_HEIGHT, TILE_WIDTH};

/// The largest leaf: C2SP entry bundles prefix each entry with a 16-bit length.
pub const MAX_LEAF_BYTES: usize = u16::MAX as usize;

/// Errors of the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The database failed or is unavailable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A leaf document is not acceptable.
    #[error("invalid leaf: {0}")]
    InvalidLeaf(String),
    /// An index or size is outside what the log can answer (a caller's mistake).
    #[error("{0}")]
    OutOfRange(String),
    /// The thing asked for does not exist (yet).
    #[error("{0}")]
    NotFound(String),
    /// The batch holding this append could not be committed; nothing of it was acknowledged.
    #[error("the append was not committed: {0}")]
    NotCommitted(String),
    /// The log is shutting down and takes no more appends.
    #[error("the log is shutting down")]
    ShuttingDown,
    /// The database does not belong to this log configuration.
    #[error("{0}")]
    Identity(String),
    /// Stored data contradicts itself; the log refuses to go on.
    #[error("the log's storage is inconsistent: {0}")]
    Corrupt(String),
    /// A signing or note error.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// A thread of the log's (the sequencer, the cosigning worker) could not be started.
    #[error("cannot start the {0} thread: {1}")]
    Spawn(&'static str, std::io::Error),
}

impl From<diesel::result::Error> for LogError {
    fn from(e: diesel::result::Error) -> Self {
        LogError::Store(StoreError::Query(e))
    }
}

impl From<MissingTile> for LogError {
    fn from(e: MissingTile) -> Self {
        LogError::Corrupt(e.to_string())
    }
}

/// A leaf ready for the log: RFC 8785 canonical JSON bytes and their leaf hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    bytes: Vec<u8>,
    hash: Hash,
}

impl Leaf {
    /// The leaf of a typed leaf document (the SDK's leaf structs), as [`Leaf::from_json`].
    pub fn of<T: serde::Serialize>(leaf: &T) -> Result<Self, LogError> {
        Self::from_json(&serde_json::to_value(leaf).expect("a leaf document serialises"))
    }

    /// Canonicalises a leaf document: a JSON object with a string `"type"`, integers only,
    /// at most 65,535 bytes once canonical.
    pub fn from_json(document: &Value) -> Result<Self, LogError> {
        let object = document
            .as_object()
            .ok_or_else(|| LogError::InvalidLeaf("a leaf must be a JSON object".into()))?;
        if !object.get("type").is_some_and(Value::is_string) {
            return Err(LogError::InvalidLeaf(
                "a leaf must have a string \"type\" member".into(),
            ));
        }
        let canonical =
            jcs::canonicalize(document).map_err(|e| LogError::InvalidLeaf(e.to_string()))?;
        if canonical.len() > MAX_LEAF_BYTES {
            return Err(LogError::InvalidLeaf(format!(
                "a leaf is at most {MAX_LEAF_BYTES} bytes canonical; this one is {}",
                canonical.len()
            )));
        }
        let bytes = canonical.into_bytes();
        Ok(Self {
            hash: leaf_hash(&bytes),
            bytes,
        })
    }

    /// A leaf as stored in the log (its bytes were canonical when appended).
    pub fn from_stored(bytes: Vec<u8>) -> Self {
        Self {
            hash: leaf_hash(&bytes),
            bytes,
        }
    }

    /// The canonical bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `SHA-256(0x00 || bytes)`.
    pub fn hash(&self) -> Hash {
        self.hash
    }
}

/// Something to append whose leaf is built inside the sequencer's transaction, once its index
/// is known. `build` may read and write other rows through `repo`; they commit with the leaf. A
/// leaf naming a subject takes its `prev` from `chain` (the log's own account, not a row).
/// It must not fail on content (validate before appending): an error fails the whole batch. An
/// entry whose precondition can only be decided under the writer lock (an erasure) declines
/// instead: it builds no leaf, writes nothing, and its caller learns so from an empty answer.
pub trait LogEntry: Send + 'static {
    /// Builds the leaf that goes at `index`, or `None` to decline.
    fn build(
        &mut self,
        repo: &mut Repo<'_>,
        chain: &Chain<'_>,
        index: u64,
    ) -> Result<Option<Leaf>, LogError>;

    /// The subject the built `leaf` names (what the subject map keeps its head for). By default
    /// read from the leaf; an entry that knows it says so without parsing the leaf again.
    fn subject(&self, leaf: &Leaf) -> Option<Hash> {
        map::leaf_subject(leaf.bytes())
    }

    /// Work done before the entry reaches the writer, on the appending request's thread (so
    /// the writer does not do it): e.g. labelling a new subject. By default nothing.
    fn prepare(&mut self, _labeler: &Labeler) {}

    /// For an entry that reads and writes its rows only through the batch's staged rows
    /// ([`Chain::staged`]), what it will look up there (loaded for the whole batch at once).
    /// Any other entry (the default) is built after the staged rows are written.
    fn stages(&self) -> Option<crate::store::Lookup<'_>> {
        None
    }
}

impl LogEntry for Leaf {
    fn build(&mut self, _: &mut Repo<'_>, _: &Chain<'_>, _: u64) -> Result<Option<Leaf>, LogError> {
        Ok(Some(self.clone()))
    }
}

/// Where an entry leaves its answer, decided inside the sequencer's transaction, for the caller
/// that appended it (an erasure's verdict, a campaign's results).
pub struct Reply<T>(Arc<Mutex<Option<T>>>);

impl<T> Default for Reply<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T> Clone for Reply<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Reply<T> {
    /// Leaves the answer (from the entry's `build`).
    pub fn set(&self, answer: T) {
        *self.0.lock().expect("reply lock") = Some(answer);
    }

    /// Takes the answer, once the entry has been appended.
    pub fn take(&self) -> Option<T> {
        self.0.lock().expect("reply lock").take()
    }
}

/// A leaf the log committed, and its index.
#[derive(Clone, Debug)]
pub struct Appended {
    /// Its index.
    pub index: u64,
    /// The leaf.
    pub leaf: Leaf,
}

/// Settings of the log (from [`crate::config::Config`]).
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// The checkpoint origin, also the signing key's name, if configured: an existing log must
    /// have it; `None` takes the existing log's.
    pub origin: Option<String>,
    /// The origin a new log is created with; `None`: refuse to create one (no unique name).
    pub new_origin: Option<String>,
    /// The longest time between an acknowledged append and a checkpoint covering it.
    pub checkpoint_interval: Duration,
    /// The most leaves committed in one transaction.
    pub max_batch: usize,
    /// Witnesses asked to cosign each new checkpoint.
    pub witnesses: Vec<cosigning::WitnessEndpoint>,
    /// Milliseconds added to the clock leaves are recorded by (drills and tests only).
    pub clock_offset_ms: i64,
    /// Runs the log as versions before subject labels did — no VRF key, no parameters leaf,
    /// new subjects named by salted commitments — to make test fixtures of such logs (never in
    /// service: `Config` cannot set it from a file or the environment).
    pub pre_labels: bool,
}

/// A published checkpoint as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
    /// The signed note text (C2SP signed-note carrying a tlog-checkpoint).
    pub note: String,
    /// Publication time, Unix milliseconds.
    pub published_at: i64,
}

impl TryFrom<CheckpointRow> for SignedCheckpoint {
    type Error = LogError;
    fn try_from(row: CheckpointRow) -> Result<Self, LogError> {
        Ok(Self {
            size: row.tree_size.get(),
            root: row
                .root_hash
                .try_into()
                .map_err(|_| LogError::Corrupt("checkpoint root is not 32 bytes".into()))?,
            note: row.note,
            published_at: row.published_at,
        })
    }
}

/// The bytes of a tile and whether they are final (a full tile never changes).
#[derive(Clone, Debug)]
pub struct TileData {
    /// Concatenated hashes, or an entry bundle for the entries tile.
    pub bytes: Vec<u8>,
    /// True for a full tile.
    pub full: bool,
}

struct Inner {
    store: Store,
    signer: Arc<NoteSigner>,
    labeler: Arc<Labeler>,
    map: Arc<RwLock<SubjectMap>>,
    /// Full tiles' trees, for the proofs this process serves.
    tiles: Mutex<tile_cache::TileCache>,
    cosigning: Mutex<Option<cosigning::Cosigning>>,
    witnesses: Vec<cosigning::WitnessEndpoint>,
    appends: RwLock<Option<mpsc::Sender<AppendRequest>>>,
    sequencer: Mutex<Option<JoinHandle<()>>>,
    /// Set by the sequencer while its writes fail (a full disk, I/O errors, the database down),
    /// cleared by its next success.
    writes_failing: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Inner {
    fn stop(&self) {
        self.appends.write().expect("appends lock").take();
        if let Some(thread) = self.sequencer.lock().expect("sequencer lock").take() {
            let _ = thread.join();
        }
        self.cosigning.lock().expect("cosigning lock").take();
    }
}

/// Refuses a log whose parameters leaf (the map's head for the parameters key) states another
/// VRF key than the stored secret's: labels must be the ones the log commits to.
fn check_parameters(
    r: &mut Repo<'_>,
    map: &SubjectMap,
    recent: &chain::Recent,
    labeler: &Labeler,
) -> Result<(), LogError> {
    let key = consent_ledger_sdk::label::parameters_key();
    let Some(index) = recent.get(&key).copied().or_else(|| map.head(&key)) else {
        return Ok(());
    };
    let leaf = r.leaf_data(index, index + 1)?;
    let stated = leaf
        .first()
        .ok_or_else(|| LogError::Corrupt(format!("no leaf {index}")))
        .and_then(|bytes| {
            consent_ledger_sdk::label::LogParameters::parse(bytes)
                .and_then(|p| p.public_key())
                .map_err(|e| LogError::Corrupt(format!("leaf {index}, the parameters: {e}")))
        })?;
    if stated != labeler.public_key() {
        return Err(LogError::Corrupt(format!(
            "the log's parameters leaf {index} commits to another VRF key than the stored \
             secret's: refusing to label subjects under a key the log does not commit to \
             (restore the database's VRF secret)"
        )));
    }
    Ok(())
}

/// The log. Cheap to clone; all clones share one sequencer thread.
#[derive(Clone)]
pub struct Log {
    inner: Arc<Inner>,
}

impl Log {
    /// Opens the log in a migrated database: creates its identity and signing key on first use,
    /// checks the stored tree, publishes a checkpoint if the tree is ahead of the last one, and
    /// starts the sequencer.
    pub fn open(store: Store, settings: LogSettings) -> Result<Self, LogError> {
        let meta = identity(&store, &settings)?;
        if let Some(configured) = settings.origin.as_ref().filter(|o| **o != meta.origin) {
            return Err(LogError::Identity(format!(
                "this database holds the log {:?}, but the configured origin is {configured:?}; \
                 a log's origin never changes: set origin = {:?}, or leave it unset",
                meta.origin, meta.origin
            )));
        }
        let seed: [u8; 32] = meta
            .signing_seed
            .as_slice()
            .try_into()
            .map_err(|_| LogError::Corrupt("the stored signing seed is not 32 bytes".into()))?;
        let signer = Arc::new(NoteSigner::new(&meta.origin, &seed)?);
        let labeler = Arc::new(match meta.vrf_secret.as_deref() {
            Some(secret) => Labeler::new(secret)?,
            // A log from before labels (a test fixture): a key no leaf commits to, never stored.
            None => Labeler::new(&Labeler::generate()?)?,
        });

        // Under the writer lock: the frontier, the heads and the checkpoint are one state, even
        // while another process appends.
        let (frontier, map, recent) = store.write(|r: &mut Repo<'_>| {
            let frontier = load_frontier(r)?;
            let (map, recent) = chain::open(r, &signer, frontier.size())?;
            check_parameters(r, &map, &recent, &labeler)?;
            Ok::<_, LogError>((frontier, map, recent))
        })?;
        let map = Arc::new(RwLock::new(map));
        // The sequencer writes through a connection of its own: readers cannot starve it.
        let writer = store.dedicated(1)?;
        let witnesses = settings.witnesses.clone();
        let settings_pre_labels = settings.pre_labels;
        let mut sequencer = Sequencer::new(
            writer,
            signer.clone(),
            labeler.clone(),
            settings,
            frontier,
            map.clone(),
            recent,
        );
        let writes_failing = sequencer.writes_failing();
        // A log on a full disk (or failing I/O) still opens, to serve reads: a checkpoint it
        // cannot write now is published by the sequencer as soon as writes succeed again.
        sequencer.publish_when_possible(false)?;
        sequencer.publish_when_possible(true)?;
        if !settings_pre_labels && meta.parameters_leaf.is_none() {
            sequencer.publish_parameters_if_missing()?;
        }
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("log-sequencer".into())
            .spawn(move || sequencer.run(rx))
            .map_err(|e| LogError::Spawn("sequencer", e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                signer,
                labeler,
                map,
                tiles: Mutex::default(),
                cosigning: Mutex::new(None),
                witnesses,
                appends: RwLock::new(Some(tx)),
                sequencer: Mutex::new(Some(thread)),
                writes_failing,
            }),
        })
    }

    /// Appends leaves as one contiguous run and returns their indexes once the batch holding them
    /// is durably committed. A checkpoint covering them follows within the checkpoint interval.
    pub async fn append(&self, leaves: Vec<Leaf>) -> Result<Range<u64>, LogError> {
        let entries = leaves
            .into_iter()
            .map(|l| Box::new(l) as Box<dyn LogEntry>)
            .collect();
        let appended = self.append_entries(entries).await?;
        let start = appended.first().map_or(0, |a| a.index);
        Ok(start..start + appended.len() as u64)
    }

    /// Appends entries as one contiguous run. Each entry builds its leaf inside the sequencer's
    /// transaction, knowing its index, and may write rows of its own there: they commit with the
    /// leaf or not at all. Returns the leaves and indexes once durably committed.
    pub async fn append_entries(
        &self,
        mut entries: Vec<Box<dyn LogEntry>>,
    ) -> Result<Vec<Appended>, LogError> {
        if entries.is_empty() {
            return Err(LogError::InvalidLeaf("nothing to append".into()));
        }
        for entry in &mut entries {
            entry.prepare(&self.inner.labeler);
        }
        let (reply, answer) = oneshot::channel();
        {
            let appends = self.inner.appends.read().expect("appends lock");
            let sender = appends.as_ref().ok_or(LogError::ShuttingDown)?;
            sender
                .send(AppendRequest { entries, reply })
                .map_err(|_| LogError::ShuttingDown)?;
        }
        answer.await.map_err(|_| LogError::ShuttingDown)?
    }

    /// The log's origin (its checkpoints' first line, its key's name): fixed for its life.
    pub fn origin(&self) -> &str {
        self.inner.signer.name()
    }

    /// Appends one entry that answers through `reply`, and takes its answer once committed
    /// (`None` if it left none).
    pub async fn append_for<T>(
        &self,
        entry: impl LogEntry,
        reply: &Reply<T>,
    ) -> Result<Option<T>, LogError> {
        self.append_entries(vec![Box::new(entry) as Box<dyn LogEntry>])
            .await?;
        Ok(reply.take())
    }

    /// The verifier key: `<origin>+<hex key id>+<base64(0x01 || public key)>`.
    pub fn verifier_key(&self) -> String {
        self.inner.signer.verifier_key()
    }

    /// The VRF key that labels subjects.
    pub fn labeler(&self) -> &Labeler {
        &self.inner.labeler
    }

    /// A key for another purpose (e.g. recipients' links), derived from the log's signing key.
    pub fn derive_key(&self, label: &str) -> [u8; 32] {
        self.inner.signer.derive_key(label)
    }

    /// Whether the sequencer's last write failed (it retries; appends answer 503 meanwhile).
    pub fn writes_failing(&self) -> bool {
        self.inner
            .writes_failing
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the sequencer is running (for readiness).
    pub fn is_running(&self) -> bool {
        let running = self
            .inner
            .sequencer
            .lock()
            .expect("sequencer lock")
            .as_ref()
            .is_some_and(|t| !t.is_finished());
        running && self.inner.appends.read().expect("appends lock").is_some()
    }

    /// Stops taking appends, commits what is queued, and stops the sequencer. Idempotent.
    pub fn shutdown(&self) {
        self.inner.stop();
    }

    /// The latest signed checkpoint.
    pub fn latest_checkpoint(&self) -> Result<SignedCheckpoint, LogError> {
        self.inner.store.read(latest_checkpoint)
    }

    /// The checkpoint published for tree size `size`.
    pub fn checkpoint(&self, size: u64) -> Result<SignedCheckpoint, LogError> {
        self.inner.store.read(|r| {
            let row = r.checkpoint(in_range(size)?)?.ok_or_else(|| {
                LogError::NotFound(format!("no checkpoint was published for tree size {size}"))
            })?;
            with_cosignatures(r, row)
        })
    }

    /// Up to `limit` checkpoints with size greater than `after` (all when `None`), oldest first.
    pub fn checkpoints(
        &self,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<SignedCheckpoint>, LogError> {
        let after = after.map(in_range).transpose()?;
        self.inner.store.read(|r| {
            let rows = r.checkpoints_after(after, i64::from(limit))?;
            let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
                return Ok(Vec::new());
            };
            // One query for the page's cosignatures, not one per checkpoint.
            let mut lines = r
                .cosignatures_between(first.tree_size.get(), last.tree_size.get())?
                .into_iter()
                .peekable();
            rows.into_iter()
                .map(|row| {
                    let size = row.tree_size;
                    let mut cp = SignedCheckpoint::try_from(row)?;
                    while let Some((_, line)) = lines.next_if(|(s, _)| *s == size) {
                        cp.note.push_str(&line);
                    }
                    Ok(cp)
                })
                .collect()
        })
    }

    /// What the subject map of the latest checkpoint that has one says about each of `keys`
    /// (one map: the same checkpoint), with the proofs, in order; the map leaf is that
    /// checkpoint's last leaf (`size - 1`).
    pub fn subject_proofs<const N: usize>(
        &self,
        keys: [&Hash; N],
    ) -> Result<[MapProof; N], LogError> {
        let proofs = self.subject_proofs_of(&keys.map(|key| *key))?;
        Ok(proofs
            .try_into()
            .unwrap_or_else(|_| unreachable!("one proof per key")))
    }

    /// [`Self::subject_proofs`] for any number of keys (none: none).
    pub fn subject_proofs_of(&self, keys: &[Hash]) -> Result<Vec<MapProof>, LogError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let proofs: Vec<MapProof> = {
            let map = self.inner.map.read().expect("map lock");
            keys.iter().map(|key| map.prove(key)).collect()
        };
        let size = proofs.first().map_or(0, |p| p.size);
        let is_map_leaf = size > 0
            && self
                .inner
                .store
                .read(|r| sequencer::ends_with_map(r, size))?;
        if !is_map_leaf {
            return Err(LogError::NotFound(
                "no checkpoint with a subject map has been published yet".into(),
            ));
        }
        Ok(proofs)
    }

    /// What the latest subject map says of `tenant`, as a whole-tenant export begins: the
    /// directory's proof for the tenant, its subject count, and the proofs of the parameters
    /// key and of the tenant's hold key — one map, read at once, ending the checkpoint of their
    /// `size`.
    pub fn tenant_directory(
        &self,
        tenant: &str,
    ) -> Result<
        (
            consent_ledger_sdk::tenants::DirectoryProof,
            u64,
            [MapProof; 2],
        ),
        LogError,
    > {
        let (directory, subjects, parameters, holds) = {
            let map = self.inner.map.read().expect("map lock");
            (
                map.tenants().prove(tenant),
                map.tenants().map(tenant).map_or(0, |m| m.count()),
                map.prove(&consent_ledger_sdk::label::parameters_key()),
                map.prove(&consent_ledger_sdk::consent::hold_key(tenant)),
            )
        };
        let size = parameters.size;
        if size == 0
            || !self
                .inner
                .store
                .read(|r| sequencer::ends_with_map(r, size))?
        {
            return Err(LogError::NotFound(
                "no checkpoint with a subject map has been published yet".into(),
            ));
        }
        Ok((directory, subjects, [parameters, holds]))
    }

    /// The size of the checkpoint the latest subject map ends.
    pub fn subject_map_size(&self) -> u64 {
        self.inner.map.read().expect("map lock").size()
    }

    /// Up to `limit` of `tenant`'s subjects in the latest subject map, in key order after
    /// `after`, each with its head there.
    pub fn tenant_subjects(
        &self,
        tenant: &str,
        after: Option<&Hash>,
        limit: usize,
    ) -> Vec<(Hash, u64)> {
        let map = self.inner.map.read().expect("map lock");
        map.tenants()
            .map(tenant)
            .map(|m| m.page(after, limit))
            .unwrap_or_default()
    }

    /// The inclusion proofs of leaves `indexes` in the tree of `size` leaves, in one read (the
    /// tiles they share are read once).
    pub fn inclusion_proofs(&self, indexes: &[u64], size: u64) -> Result<Vec<Vec<Hash>>, LogError> {
        self.inner.store.read(|r| {
            check_size(r, size)?;
            if let Some(index) = indexes.iter().find(|&&i| i >= size) {
                return Err(LogError::OutOfRange(format!(
                    "index {index} is not below the tree size {size}"
                )));
            }
            let mut nodes = cached_tile_nodes(r, &self.inner.tiles);
            indexes
                .iter()
                .map(|&index| proof::inclusion_proof(&mut nodes, index, size))
                .collect()
        })
    }

    /// How many witnesses the log asks to cosign its checkpoints.
    pub fn witness_count(&self) -> usize {
        self.inner.witnesses.len()
    }

    /// Starts offering each new checkpoint to the configured witnesses, from a thread of its own,
    /// until the log shuts down (a last pass then offers the final checkpoint). A worker of
    /// `serve`'s: one-off commands never start it. Nothing to do without witnesses.
    pub fn start_cosigning(&self) -> Result<(), LogError> {
        if self.inner.witnesses.is_empty() {
            return Ok(());
        }
        let cosigning =
            cosigning::Cosigning::start(self.inner.store.clone(), self.inner.witnesses.clone())?;
        *self.inner.cosigning.lock().expect("cosigning lock") = Some(cosigning);
        Ok(())
    }

    /// Of the checkpoints of at least `size` leaves that witnesses cosigned, the one with the
    /// most cosignatures (the largest of those), with them, and how many there are.
    pub fn cosigned_checkpoint(
        &self,
        size: u64,
    ) -> Result<Option<(SignedCheckpoint, usize)>, LogError> {
        self.inner.store.read(|r| {
            let mut counts = std::collections::BTreeMap::<u64, usize>::new();
            for s in r.cosigned_sizes(in_range(size)?)? {
                *counts.entry(s.get()).or_default() += 1;
            }
            let Some((&best, &count)) = counts.iter().max_by_key(|(s, c)| (**c, **s)) else {
                return Ok(None);
            };
            let row = r
                .checkpoint(best)?
                .ok_or_else(|| LogError::Corrupt("a cosigned checkpoint is missing".into()))?;
            Ok(Some((with_cosignatures(r, row)?, count)))
        })
    }

    /// The latest checkpoint witnesses cosigned without leaf `index` (of a size at most
    /// `index`), with its cosignature lines; `None` if there is none.
    pub fn cosigned_without(&self, index: u64) -> Result<Option<SignedCheckpoint>, LogError> {
        self.cosigned_at(|r| Ok(r.latest_cosigned_at_most(in_range(index)?)?))
    }

    /// The earliest checkpoint witnesses cosigned with leaf `index` (of a size above `index`)
    /// and at most `size` leaves, with its cosignature lines; `None` if there is none.
    pub fn cosigned_with(
        &self,
        index: u64,
        size: u64,
    ) -> Result<Option<SignedCheckpoint>, LogError> {
        self.cosigned_at(|r| Ok(r.earliest_cosigned_above(in_range(index)?, in_range(size)?)?))
    }

    /// The cosigned checkpoint of the size `find` gives, with its cosignature lines.
    fn cosigned_at(
        &self,
        find: impl FnOnce(&mut Repo<'_>) -> Result<Option<LeafIndex>, LogError>,
    ) -> Result<Option<SignedCheckpoint>, LogError> {
        self.inner.store.read(|r| {
            let Some(size) = find(r)? else {
                return Ok(None);
            };
            let row = r
                .checkpoint(size.get())?
                .ok_or_else(|| LogError::Corrupt("a cosigned checkpoint is missing".into()))?;
            Ok(Some(with_cosignatures(r, row)?))
        })
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3.1).
    /// `size` may be at most the latest checkpoint's size.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LogError> {
        self.inner.store.read(|r| {
            check_size(r, size)?;
            if index >= size {
                return Err(LogError::OutOfRange(format!(
                    "index {index} is not below the tree size {size}"
                )));
            }
            proof::inclusion_proof(&mut cached_tile_nodes(r, &self.inner.tiles), index, size)
        })
    }

    /// The index of the first leaf with `hash` in the tree of `size` leaves, and its proof.
    pub fn inclusion_proof_by_hash(
        &self,
        hash: &Hash,
        size: u64,
    ) -> Result<(u64, Vec<Hash>), LogError> {
        self.inner.store.read(|r| {
            check_size(r, size)?;
            let index = r
                .leaf_index_by_hash(hash, in_range(size)?)?
                .ok_or_else(|| {
                    LogError::NotFound(format!("no leaf with this hash in the first {size} leaves"))
                })?
                .get();
            Ok((
                index,
                proof::inclusion_proof(&mut cached_tile_nodes(r, &self.inner.tiles), index, size)?,
            ))
        })
    }

    /// The consistency proof between trees of `from` and `to` leaves (RFC 9162 §2.1.4.1),
    /// `0 < from <= to <= latest checkpoint size`.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>, LogError> {
        self.inner.store.read(|r| {
            check_size(r, to)?;
            if from == 0 || from > to {
                return Err(LogError::OutOfRange(format!(
                    "need 0 < from <= to; got from={from}, to={to}"
                )));
            }
            proof::consistency_proof(&mut cached_tile_nodes(r, &self.inner.tiles), from, to)
        })
    }

    /// A C2SP tile (hashes or entries), if the latest checkpoint covers it.
    pub fn tile(&self, tile: TileRef) -> Result<TileData, LogError> {
        self.inner.store.read(|r| {
            let size = latest_checkpoint(r)?.size;
            let not_found = || {
                LogError::NotFound(format!(
                    "tile {} is not in the tree of size {size}",
                    tile.path()
                ))
            };
            let width = u64::from(tile.width);
            let first = tile.index.checked_mul(TILE_WIDTH).ok_or_else(not_found)?;
            let available = match tile.kind {
                TileKind::Hashes(level) => size
                    .checked_shr(u32::from(level) * TILE_HEIGHT)
                    .unwrap_or(0),
                TileKind::Entries => size,
            };
            if first.checked_add(width).is_none_or(|end| end > available) {
                return Err(not_found());
            }
            let bytes = match tile.kind {
                TileKind::Hashes(level) => {
                    let mut stored = r
                        .tile(i32::from(level), in_range(tile.index)?)?
                        .unwrap_or_default();
                    if stored.len() < tile.width as usize * 32 {
                        return Err(LogError::Corrupt(format!(
                            "tile {} is shorter than the tree needs",
                            tile.path()
                        )));
                    }
                    stored.truncate(tile.width as usize * 32);
                    stored
                }
                TileKind::Entries => {
                    let data = r.leaf_data(in_range(first)?, in_range(first + width)?)?;
                    if data.len() as u64 != width {
                        return Err(LogError::Corrupt(format!(
                            "leaves missing for tile {}",
                            tile.path()
                        )));
                    }
                    tiles::entry_bundle(&data)
                }
            };
            Ok(TileData {
                bytes,
                full: width == TILE_WIDTH,
            })
        })
    }
}

/// The log's identity row: created (origin, signing key, VRF key) on first use; a log from
/// before subject labels gets its VRF key on first opening, and one that has committed to a
/// key must still have it.
fn identity(store: &Store, settings: &LogSettings) -> Result<LogMetaRow, LogError> {
    let origin = settings.new_origin.clone();
    let meta = store.write(|r: &mut Repo<'_>| {
        if let Some(meta) = r.log_meta()? {
            return Ok::<_, LogError>(meta);
        }
        let Some(origin) = &origin else {
            return Err(LogError::Identity(
                "a new log needs a unique name, and this service listens beyond this \
                 machine while public_url names only this machine: set public_url to the \
                 address clients reach it at (the log is named after it), or set origin"
                    .into(),
            ));
        };
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| LogError::Corrupt(format!("no randomness for a key: {e}")))?;
        r.init_log(origin, &seed, &empty_root(), crate::now_millis())?;
        Ok(r.log_meta()?.expect("just inserted"))
    })?;
    Ok(match (&meta.vrf_secret, meta.parameters_leaf) {
        (Some(_), _) => meta,
        (None, Some(index)) => {
            return Err(LogError::Corrupt(format!(
                "the log committed to a VRF key in leaf {index}, but the database has no \
                 VRF secret: restore it from a backup (a new key would give every address a \
                 second label)"
            )))
        }
        (None, None) if settings.pre_labels => meta,
        (None, None) => store.write(|r: &mut Repo<'_>| {
            r.init_vrf_secret(&Labeler::generate()?)?;
            Ok::<_, LogError>(r.log_meta()?.expect("the log exists"))
        })?,
    })
}

/// A position a caller names, refused when it is beyond what the database can store (SQL's
/// signed `BIGINT`): no leaf or tree is that large.
fn in_range(n: u64) -> Result<u64, LogError> {
    match i64::try_from(n) {
        Ok(_) => Ok(n),
        Err(_) => Err(LogError::OutOfRange(format!("{n} is too large"))),
    }
}

fn latest_checkpoint(r: &mut Repo<'_>) -> Result<SignedCheckpoint, LogError> {
    let row = r
        .latest_checkpoint()?
        .ok_or_else(|| LogError::NotFound("no checkpoint has been published yet".into()))?;
    with_cosignatures(r, row)
}

/// A stored checkpoint, its note followed by the witnesses' cosignature lines.
fn with_cosignatures(r: &mut Repo<'_>, row: CheckpointRow) -> Result<SignedCheckpoint, LogError> {
    let lines = r.cosignatures(row.tree_size.get())?;
    let mut cp = SignedCheckpoint::try_from(row)?;
    for line in lines {
        cp.note.push_str(&line);
    }
    Ok(cp)
}

/// Refuses tree sizes the log has not published a checkpoint for.
fn check_size(r: &mut Repo<'_>, size: u64) -> Result<(), LogError> {
    let latest = r
        .latest_checkpoint_size()?
        .ok_or_else(|| LogError::NotFound("no checkpoint has been published yet".into()))?
        .get();
    if size == 0 || size > latest {
        return Err(LogError::OutOfRange(format!(
            "tree size {size} is not covered: the latest checkpoint has size {latest} (use 1..={latest})"
        )));
    }
    Ok(())
}

fn read_tile(r: &mut Repo<'_>, level: u8, index: u64) -> Result<Vec<Hash>, LogError> {
    let bytes = r
        .tile(i32::from(level), in_range(index)?)?
        .ok_or(MissingTile {
            level,
            index,
            node_level: u32::from(level) * TILE_HEIGHT,
            node_index: index * TILE_WIDTH,
        })?;
    split_hashes(&bytes)
        .ok_or_else(|| LogError::Corrupt(format!("tile {level}/{index} has a torn hash")))
}

fn tile_nodes<'r, 'c>(
    r: &'r mut Repo<'c>,
) -> TileNodes<impl FnMut(u8, u64) -> Result<Arc<TileTree>, LogError> + use<'r, 'c>> {
    TileNodes::new(move |level, index| Ok(Arc::new(TileTree::new(read_tile(r, level, index)?))))
}

/// [`tile_nodes`] through the log's cache of tiles: what serving proofs uses.
fn cached_tile_nodes<'r, 'c, 't>(
    r: &'r mut Repo<'c>,
    cache: &'t Mutex<tile_cache::TileCache>,
) -> tile_cache::CachedNodes<'t, &'r mut Repo<'c>> {
    tile_cache::CachedNodes::new(cache, r)
}

impl tile_cache::Stored for &mut Repo<'_> {
    fn tile(&mut self, level: u8, index: u64) -> Result<Vec<Hash>, LogError> {
        read_tile(self, level, index)
    }

    fn leaf_hashes(&mut self, start: u64, end: u64) -> Result<Vec<Hash>, LogError> {
        Repo::leaf_hashes(self, start, end)?
            .into_iter()
            .map(|h| {
                h.try_into()
                    .map_err(|_| LogError::Corrupt("a stored leaf hash is not 32 bytes".into()))
            })
            .collect()
    }
}

/// Rebuilds the frontier from the stored state and checks it against the stored root.
fn load_frontier(r: &mut Repo<'_>) -> Result<Frontier, LogError> {
    let state = r.log_state()?;
    let frontier = Frontier::load(state.tree_size.get(), |level, index| {
        read_tile(r, level, index)
    })?;
    if frontier.root().as_slice() != state.root_hash.as_slice() {
        return Err(LogError::Corrupt(format!(
            "the stored tiles do not hash to the stored root at size {}",
            state.tree_size
        )));
    }
    Ok(frontier)
}

/// Signs the checkpoint of a tree state.
fn sign_checkpoint(signer: &NoteSigner, size: u64, root: Hash) -> Result<CheckpointRow, LogError> {
    let body = Checkpoint {
        origin: signer.name().to_string(),
        size,
        root,
    }
    .body();
    Ok(CheckpointRow {
        tree_size: LeafIndex(size),
        root_hash: root.to_vec(),
        note: signer.sign(&body)?,
        published_at: crate::now_millis(),
    })
}
