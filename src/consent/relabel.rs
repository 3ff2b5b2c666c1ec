//! Relabelling: the one-time migration of subjects from before labels. A log created before it
//! had a VRF key names those subjects by salted commitments, which nothing links to the
//! address's label; the relabel worker appends, for each such subject that still has its
//! address, one `relabel` leaf naming its label (`subject`), its salted commitment (`from`) and
//! that commitment's chain head (`prev`), and from then on names the subject by its label. The
//! label's chain then runs through the older history, so a bundle of the address shows it all,
//! and the salted commitment is closed (auditors alarm on a leaf that names it later).
//! Resumable: each batch commits with its leaves; a restart goes on with the subjects left.
//!
//! Not here: the leaf's definition (`consent_ledger_sdk::consent::RelabelLeaf`), its checks in
//! the verifiers and the auditor (`log::audit`), SQL (`store`).

use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::Duration;

use consent_ledger_sdk::consent::{RelabelLeaf, RelabelType};

use super::subject::commitment;
use crate::log::hash::Hash;
use crate::log::{Chain, Leaf, Log, LogEntry, LogError};
use crate::rfc3339;
use crate::store::{Repo, Store};

/// Subjects relabelled per append (one transaction).
const BATCH: i64 = 500;

/// How long the worker waits before trying again after a failure.
const RETRY: Duration = Duration::from_secs(5);

/// The relabel worker: relabels every subject from before labels, then stops. Dropping it stops
/// it between batches.
pub struct Relabeller {
    _stop: Sender<()>,
}

impl Relabeller {
    /// Starts it (nothing to do, and it ends at once, in a log without such subjects).
    pub fn start(store: Store, log: Log) -> std::io::Result<Self> {
        let (stop, stopped) = channel::<()>();
        std::thread::Builder::new()
            .name("relabelling".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().build() {
                    Ok(runtime) => runtime,
                    Err(e) => return tracing::error!(error = %e, "relabelling cannot start"),
                };
                let (mut done, mut after) = (0u64, String::new());
                loop {
                    let wait = match runtime.block_on(relabel_batch(&store, &log, &after)) {
                        Ok(None) => {
                            if done > 0 {
                                tracing::info!(relabelled = done, "relabelling finished");
                            }
                            return;
                        }
                        Ok(Some((n, last))) => {
                            (done, after) = (done + n, last);
                            tracing::info!(
                                relabelled = done,
                                "relabelling subjects from before labels"
                            );
                            Duration::ZERO
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "relabelling: will retry");
                            RETRY
                        }
                    };
                    if let Err(RecvTimeoutError::Disconnected) = stopped.recv_timeout(wait) {
                        return;
                    }
                }
            })?;
        Ok(Self { _stop: stop })
    }
}

/// Relabels the next [`BATCH`] subjects after the id `after` in one append; returns how many
/// were relabelled and the last id tried, or `None` when none is left. A subject that cannot be
/// relabelled (see [`RelabelEntry`]) stays salted, logged, and is passed over.
pub async fn relabel_batch(
    store: &Store,
    log: &Log,
    after: &str,
) -> Result<Option<(u64, String)>, LogError> {
    let ids = store.read(|r: &mut Repo<'_>| Ok::<_, LogError>(r.salted_subjects(after, BATCH)?))?;
    let Some(last) = ids.last().cloned() else {
        return Ok(None);
    };
    let entries: Vec<Box<dyn LogEntry>> = ids
        .into_iter()
        .map(|subject_id| Box::new(RelabelEntry { subject_id }) as Box<dyn LogEntry>)
        .collect();
    let appended = log.append_entries(entries).await?;
    Ok(Some((appended.len() as u64, last)))
}

/// One subject to relabel, by id. Declines (and logs why) for a subject that is gone, labelled
/// already, erased, whose salt does not open its commitment, or whose label has a chain of its
/// own already (two histories of one address: the operator's to explain, never merged here).
struct RelabelEntry {
    subject_id: String,
}

impl LogEntry for RelabelEntry {
    fn build(
        &mut self,
        r: &mut Repo<'_>,
        chain: &Chain<'_>,
        index: u64,
    ) -> Result<Option<Leaf>, LogError> {
        let Some(subject) = r.subject(&self.subject_id)?.filter(|s| !s.vrf) else {
            return Ok(None);
        };
        let (Some(address), Some(salt)) = (&subject.address, &subject.salt) else {
            return Ok(None);
        };
        let from: Hash = commitment(&subject.tenant_id, address, salt);
        if from.as_slice() != subject.commitment.as_slice() {
            tracing::error!(subject = %subject.id, "a salted subject's salt does not open its commitment: not relabelled");
            return Ok(None);
        }
        let label = chain.label(&subject.tenant_id, address);
        if let Some(head) = chain.prev(&label) {
            tracing::error!(
                subject = %subject.id,
                label_head = head,
                "a salted subject's address has a labelled history already: not relabelled"
            );
            return Ok(None);
        }
        let Some(prev) = chain.prev(&from) else {
            // No leaf names it (an address the service only made links for): the row alone.
            r.relabel_subject(&subject.id, &label, None)?;
            return Ok(None);
        };
        let leaf = RelabelLeaf {
            leaf_type: RelabelType::Relabel,
            v: 1,
            tenant: subject.tenant_id.clone(),
            subject: crate::hex(&label),
            from: crate::hex(&from),
            prev,
            recorded_at: rfc3339(chain.now()),
        };
        r.relabel_subject(&subject.id, &label, Some(index))?;
        Ok(Some(Leaf::of(&leaf)?))
    }
}
