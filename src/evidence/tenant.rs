//! Whole-tenant evidence: every subject of one tenant as of one checkpoint, as JSON lines
//! (`consent-ledger/tenant-evidence/v1`; the types and the verifier are the SDK's,
//! `evidence::tenant`). The header proves, through the checkpoint's subject map leaf and the
//! tenants' directory, the root and count of the tenant's map; then one line per subject key in
//! key order, with its chain of leaves as of the checkpoint, each proven, and its opening.
//!
//! Built a page of subjects at a time from the log's tenant map, so memory does not grow with
//! the tenant. An export resumes at the same checkpoint after the last key it delivered
//! ([`Resume`]): the map may have moved on since, so each key's chain is cut back to the leaves
//! before the checkpoint (a key first named after it is left out) — what the map said then.
//! No HTTP here (`api/evidence.rs`), no SQL (`store/`).

use std::collections::HashMap;

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use consent_ledger_sdk::evidence::tenant::{
    DirectoryBucket, SubjectRecord, TenantHeader, TENANT_FORMAT,
};

use super::{
    kept_evidence, leaf_with_proof, log_identity, tenant_identity, Holds, Opening, Parameters,
    ProvenLeaf,
};
use crate::consent;
use crate::error::DomainError;
use crate::log::hash::Hash;
use crate::log::{Log, LogError};
use crate::store::Store;

/// Subjects read, proven and written per page (also the most a subjects query names).
const PAGE: usize = 256;

/// Where an interrupted export goes on: its checkpoint's size and the last key it delivered.
#[derive(Clone, Copy, Debug)]
pub struct Resume {
    /// The header's checkpoint size.
    pub size: u64,
    /// The key of the last subject line received.
    pub after: Hash,
}

/// A whole-tenant export under way: call [`Export::next_chunk`] until it gives `None`.
pub struct Export {
    store: Store,
    log: Log,
    tenant: String,
    size: u64,
    after: Option<Hash>,
    header: Option<Vec<u8>>,
    done: bool,
}

/// Begins the export of `tenant_id` (its header, as of the latest checkpoint with a subject
/// map), or resumes one. Everything a caller can get wrong is refused here, before a byte.
pub fn begin(
    store: &Store,
    log: &Log,
    tenant_id: &str,
    resume: Option<Resume>,
) -> Result<Export, DomainError> {
    let tenant = consent::tenant(store, tenant_id)?;
    let (size, after, header) = match resume {
        Some(Resume { size, after }) => {
            let latest = log.subject_map_size();
            let is_map = size > 0
                && size <= latest
                && store.read(|r| {
                    Ok::<_, DomainError>(
                        r.leaf_data(size - 1, size)?
                            .first()
                            .and_then(|l| crate::log::map::map_leaf(l))
                            .is_some(),
                    )
                })?;
            if !is_map {
                return Err(DomainError::Invalid(format!(
                    "size {size} is not the checkpoint of an export (one that ends with a \
                     subject map, at most {latest}): pass the size of the export's header"
                )));
            }
            (size, Some(after), None)
        }
        None => {
            let (directory, subjects, [parameters, holds]) = log.tenant_directory(tenant_id)?;
            let size = parameters.size;
            let checkpoint = log.checkpoint(size)?;
            let prove = |index: u64| super::proven_leaf(store, log, index, &checkpoint);
            let hold_leaves: Vec<u64> = store
                .read(|r| Ok::<_, DomainError>(r.legal_holds(tenant_id)?))?
                .iter()
                .map(|h| h.leaf_index.get())
                .filter(|&i| i < size)
                .collect();
            let header = TenantHeader {
                format: TENANT_FORMAT.into(),
                generated_at: crate::rfc3339(crate::now_millis()),
                log: log_identity(log, &checkpoint),
                checkpoint: checkpoint.note.clone(),
                tenant: tenant_identity(tenant),
                map_leaf: prove(size - 1)?,
                subjects,
                directory: DirectoryBucket {
                    bucket: directory.bucket as u32,
                    entries: B64.encode(&directory.entries),
                    path: directory.path.iter().map(|h| B64.encode(h)).collect(),
                },
                parameters: {
                    let (bucket, bucket_entries, bucket_path) = super::bucket_of(&parameters);
                    Parameters {
                        leaf: parameters.value.map(prove).transpose()?,
                        bucket,
                        bucket_entries,
                        bucket_path,
                    }
                },
                holds: {
                    let (bucket, bucket_entries, bucket_path) = super::bucket_of(&holds);
                    Holds {
                        leaves: hold_leaves
                            .into_iter()
                            .map(prove)
                            .collect::<Result<_, _>>()?,
                        bucket,
                        bucket_entries,
                        bucket_path,
                    }
                },
                witnessed: super::witnessed(log, size)?,
            };
            (size, None, Some(line(&header)))
        }
    };
    Ok(Export {
        store: store.clone(),
        log: log.clone(),
        tenant: tenant_id.to_string(),
        size,
        after,
        header,
        done: false,
    })
}

/// One JSON line.
fn line<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).expect("evidence serialises");
    bytes.push(b'\n');
    bytes
}

impl Export {
    /// The next lines (the header first, then a page of subjects); `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, DomainError> {
        if let Some(header) = self.header.take() {
            return Ok(Some(header));
        }
        while !self.done {
            let page = self
                .log
                .tenant_subjects(&self.tenant, self.after.as_ref(), PAGE);
            self.done = page.len() < PAGE;
            let Some(&(last, _)) = page.last() else {
                break;
            };
            self.after = Some(last);
            let records = self.records(&page)?;
            if !records.is_empty() {
                return Ok(Some(records.iter().flat_map(line).collect()));
            }
        }
        Ok(None)
    }

    /// The subject lines of a page of (key, head now): each chain as of the checkpoint, proven.
    /// The reads take one connection, on this thread; the labels' VRF proofs (most of the work)
    /// and the lines' building run on two.
    fn records(&self, page: &[(Hash, u64)]) -> Result<Vec<SubjectRecord>, DomainError> {
        let size = self.size;
        let keys: Vec<Vec<u8>> = page.iter().map(|(k, _)| k.to_vec()).collect();
        let (chains, subjects) = self.store.read(|r| {
            let mut chains = Vec::with_capacity(page.len());
            for (key, head) in page {
                let mut chain = consent::chain_of(r, Some(*head))?;
                // The map moved on since the checkpoint: its state then (a chain is in log
                // order). A key first named after it has nothing left, or — a label whose
                // relabelling came after — only the salted history, which is another key's.
                chain.retain(|(index, _)| *index < size);
                let named = chain
                    .last()
                    .and_then(|(_, bytes)| crate::log::map::leaf_subject(bytes));
                if named == Some(*key) {
                    chains.push((*key, chain));
                }
            }
            let mut subjects = HashMap::new();
            for row in r.subjects_by_labels(&self.tenant, &keys)? {
                let events = match row.salt {
                    Some(_) => r.subject_events(&row.id)?,
                    None => Vec::new(),
                };
                subjects.insert(row.commitment.clone(), (row, events));
            }
            Ok::<_, DomainError>((chains, subjects))
        })?;
        let indexes: Vec<u64> = chains
            .iter()
            .flat_map(|(_, chain)| chain.iter().map(|(i, _)| *i))
            .collect();
        let mut paths = self.log.inclusion_proofs(&indexes, size)?.into_iter();
        let proven: Vec<(Hash, Vec<ProvenLeaf>, u64)> = chains
            .into_iter()
            .map(|(key, chain)| {
                let events = chain
                    .iter()
                    .map(|(index, bytes)| {
                        let path = paths.next().ok_or_else(|| {
                            LogError::Corrupt("an inclusion proof is missing".into())
                        })?;
                        Ok(leaf_with_proof(*index, bytes, &path, None))
                    })
                    .collect::<Result<Vec<_>, DomainError>>()?;
                Ok((key, events, chain.last().map_or(0, |(i, _)| *i)))
            })
            .collect::<Result<_, DomainError>>()?;
        let record = |(key, events, head): (Hash, Vec<ProvenLeaf>, u64)| SubjectRecord {
            key: crate::hex(&key),
            head,
            subject: subjects
                .get(key.as_slice())
                .and_then(|(row, rows)| self.opening(row, rows)),
            events,
        };
        let mut first = proven;
        let second = first.split_off(first.len() / 2);
        Ok(std::thread::scope(|scope| {
            let second = scope.spawn(|| second.into_iter().map(record).collect::<Vec<_>>());
            let mut records: Vec<SubjectRecord> = first.into_iter().map(record).collect();
            records.extend(
                second
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
            records
        }))
    }

    /// A kept subject's opening: its address with the VRF proof of its label, its salt, and the
    /// evidence of its events up to the checkpoint. `None` once erased.
    fn opening(
        &self,
        row: &crate::store::SubjectRow,
        events: &[crate::store::EventRow],
    ) -> Option<Opening> {
        let (address, salt) = (row.address.as_deref()?, row.salt.as_deref()?);
        let covered: Vec<_> = events
            .iter()
            .filter(|e| e.leaf_index.get() < self.size)
            .cloned()
            .collect();
        Some(Opening {
            email: address.to_string(),
            salt: B64.encode(salt),
            commitment: crate::hex(&row.commitment),
            vrf_proof: Some(B64.encode(self.log.labeler().prove(&self.tenant, address))),
            evidence: kept_evidence(&covered),
        })
    }
}
