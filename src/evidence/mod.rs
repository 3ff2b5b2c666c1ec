//! Evidence for a regulator: one self-contained JSON bundle per address — the tenant, the
//! subject's opening (address, the VRF proof of its label, the salt of its evidence hashes), the
//! log's VRF key (its parameters leaf, proven the only one), every event as its exact leaf bytes with an RFC 9162
//! inclusion proof against one signed checkpoint (also as C2SP `tlog-proof@v1` text), the
//! collection points the events name (content, leaf, proof), the send decision per purpose, and
//! the subject map's proof that no event of the address is missing.
//! The types and the offline verifier live in the SDK crate (`sdk/rust`), shared with clients.
//! Format: `docs/evidence-format.md`. No HTTP here (`api/`), no SQL (`store/`).

pub mod outcomes;
pub mod page;
pub mod receipt;
pub mod report;
pub mod tenant;

use consent_ledger_sdk::consent::{collection_point_key, hold_key};
pub use consent_ledger_sdk::evidence::{
    verify, Bundle, CampaignProof, Completeness, Contacts, EventEvidence, Holds, LogIdentity,
    MapBucket, Opening, Parameters, ProvenDecision, ProvenEntry, ProvenLeaf, ProvenTemplate,
    PurposeDecision, PurposeLabel, Relabelled, TenantIdentity, Witnessed, DECISION_FORMAT, FORMAT,
};
use consent_ledger_sdk::label::parameters_key;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::consent::address::EmailAddress;
use crate::consent::{self, plain_id};
use crate::error::DomainError;
use crate::log::hash::Hash;
use crate::log::map::MapProof;
use crate::log::{Log, LogError};
use crate::store::{EventRow, LeafIndex, Store};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use consent_ledger_sdk::consent::{ConsentLeaf, RelabelLeaf};

/// The chain ending at leaf `head`, oldest first (`consent::chain_of`), in one read.
fn chain_from(store: &Store, head: Option<u64>) -> Result<Vec<(u64, Vec<u8>)>, DomainError> {
    store.read(|r| consent::chain_of(r, head))
}

/// A cosigned checkpoint at least `size` and the consistency proof to it: waits (as for the
/// checkpoint) for every witness to cosign one, then takes the best there is. `None` when the log
/// has no witnesses or none has cosigned such a checkpoint yet.
fn witnessed(log: &Log, size: u64) -> Result<Option<Witnessed>, DomainError> {
    if log.witness_count() == 0 {
        return Ok(None);
    }
    // Witnesses answer within milliseconds; one that is down must not hold every bundle up.
    let deadline = Instant::now() + WITNESS_WAIT;
    let cosigned = loop {
        let found = log.cosigned_checkpoint(size)?;
        let complete = found
            .as_ref()
            .is_some_and(|(_, count)| *count >= log.witness_count());
        if complete || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let Some((cp, _)) = cosigned else {
        return Ok(None);
    };
    let consistency = if cp.size == size {
        Vec::new()
    } else {
        log.consistency_proof(size, cp.size)?
    };
    Ok(Some(Witnessed {
        checkpoint: cp.note,
        consistency: consistency.iter().map(|h| B64.encode(h)).collect(),
    }))
}

/// How long to wait for every witness to cosign a checkpoint that covers the bundle's.
const WITNESS_WAIT: Duration = Duration::from_secs(2);

/// How long to wait for a checkpoint that covers the address's newest event.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(5);

/// The evidence bundle for `email` in `tenant_id`.
pub fn bundle(
    store: &Store,
    log: &Log,
    tenant_id: &str,
    email: &str,
) -> Result<Bundle, DomainError> {
    Ok(bundle_covering(store, log, tenant_id, email, 0)?.0)
}

/// A leaf with its inclusion proof against `checkpoint`.
fn proven_leaf(
    store: &Store,
    log: &Log,
    index: u64,
    checkpoint: &crate::log::SignedCheckpoint,
) -> Result<ProvenLeaf, DomainError> {
    let bytes = store
        .read(|r| Ok::<_, DomainError>(r.leaf_data(index, index + 1)?))?
        .pop()
        .ok_or_else(|| DomainError::NotFound(format!("no leaf {index}")))?;
    let path = log.inclusion_proof(index, checkpoint.size)?;
    Ok(leaf_with_proof(
        index,
        &bytes,
        &path,
        Some(&checkpoint.note),
    ))
}

/// A leaf's bytes with its inclusion path, as evidence carries them (with the C2SP
/// `tlog-proof@v1` text when there is a `checkpoint` note to put in it).
fn leaf_with_proof(
    index: u64,
    bytes: &[u8],
    path: &[Hash],
    checkpoint: Option<&str>,
) -> ProvenLeaf {
    ProvenLeaf {
        leaf_index: index,
        leaf_hash: B64.encode(crate::log::hash::leaf_hash(bytes)),
        leaf: B64.encode(bytes),
        inclusion_proof: path.iter().map(|h| B64.encode(h)).collect(),
        tlog_proof: checkpoint
            .map(|note| verify::tlog_proof(index, path, note))
            .unwrap_or_default(),
    }
}

/// The log as evidence names it: the checkpoint's origin and the verifier key.
fn log_identity(log: &Log, checkpoint: &crate::log::SignedCheckpoint) -> LogIdentity {
    LogIdentity {
        origin: crate::log::note::Checkpoint::parse(
            checkpoint.note.split("\n\n").next().unwrap_or_default(),
        )
        .map(|c| c.origin)
        .unwrap_or_default(),
        verifier_key: log.verifier_key(),
    }
}

/// The tenant as evidence names it: id, legal name, purposes' labels, contacts.
fn tenant_identity(tenant: consent::model::Tenant) -> TenantIdentity {
    TenantIdentity {
        purposes: tenant
            .purposes
            .iter()
            .map(|p| PurposeLabel {
                purpose: p.purpose.clone(),
                label_ja: Some(p.label("ja").to_string()),
                label_en: Some(p.label("en").to_string()),
            })
            .collect(),
        contacts: Contacts {
            postal_address: tenant.postal_address,
            complaint_contact: tenant.complaint_contact,
            optout_contact: tenant.optout_contact,
            phone: tenant.phone,
            privacy_policy_url: tenant.privacy_policy_url,
            responsible_party: tenant.responsible_party,
        },
        id: tenant.id,
        legal_name: tenant.legal_name,
    }
}

/// The evidence bundle for `email`, at a checkpoint that also covers leaf `leaf` (and, as
/// always, the address's newest event), and that checkpoint.
fn bundle_covering(
    store: &Store,
    log: &Log,
    tenant_id: &str,
    email: &str,
    leaf: u64,
) -> Result<(Bundle, crate::log::SignedCheckpoint), DomainError> {
    let address = EmailAddress::parse(email)?;
    let tenant = consent::tenant(store, tenant_id)?;
    let (subject, events) = store.read(|r| {
        let subject = r
            .subject_by_address(tenant_id, address.as_str())?
            .ok_or_else(|| DomainError::NotFound("no events recorded for this address".into()))?;
        let events = r.subject_events(&subject.id)?;
        Ok::<_, DomainError>((subject, events))
    })?;
    let salt = subject
        .salt
        .clone()
        .ok_or_else(|| DomainError::NotFound("this address's personal data was erased".into()))?;
    // One checkpoint, ending with a subject map, that covers every event (the newest is at most
    // an interval old).
    let newest = events
        .iter()
        .map(|e| e.leaf_index.get())
        .max()
        .unwrap_or(0)
        .max(leaf);
    let key: Hash = subject
        .commitment
        .as_slice()
        .try_into()
        .map_err(|_| LogError::Corrupt("a stored commitment is not 32 bytes".into()))?;
    // A history begun before labels went on under the label through a relabel leaf: the map
    // proves of its salted commitment (the subject's, while its salt is kept) that nothing
    // named it after.
    let from = match &subject.salt {
        Some(salt) if subject.vrf => consent::commitment(tenant_id, address.as_str(), salt),
        _ => key,
    };
    let view = map_view(store, log, tenant_id, key, from, newest)?;
    let map_proof = &view.subject;
    let checkpoint = log.checkpoint(map_proof.size)?;
    // Read again: the map is as of its checkpoint, and events recorded meanwhile may be in it.
    // Those recorded since are newer than the bundle.
    let (events, holds) = store.read(|r| {
        Ok::<_, DomainError>((r.subject_events(&subject.id)?, r.legal_holds(tenant_id)?))
    })?;
    let covered = |index: LeafIndex| index.get() < map_proof.size;
    let events: Vec<_> = events
        .into_iter()
        .filter(|e| covered(e.leaf_index))
        .collect();
    let prove = |index: u64| proven_leaf(store, log, index, &checkpoint);
    // The chain as the log links it: every event, erasure and relabelling, in log order.
    let chain: Vec<u64> = view.chain.iter().map(|(i, _)| *i).collect();
    let proven = chain
        .iter()
        .map(|&i| prove(i))
        .collect::<Result<Vec<_>, _>>()?;
    let templates = proven_templates(store, tenant_id, &view, &prove)?;
    // Every leaf of the chain is timed (an erasure's period is counted to its time).
    let mut timed: Vec<u64> = chain.clone();
    if leaf > 0 {
        timed.push(leaf);
    }
    let earlier = earlier(log, &timed, checkpoint.size)?;
    let decisions = decisions_of(&proven, &tenant.purposes);
    let witnessed = witnessed(log, checkpoint.size)?;
    let holds: Vec<u64> = holds
        .iter()
        .filter(|h| covered(h.leaf_index))
        .map(|h| h.leaf_index.get())
        .collect();
    let (completeness, relabelled, holds, parameters) = map_parts(&view, &holds, &prove)?;
    let evidence = kept_evidence(&events);
    // Proved only now, when asked for: a label alone is cheaper, and most are never shown.
    let vrf_proof = subject
        .vrf
        .then(|| B64.encode(log.labeler().prove(tenant_id, address.as_str())));
    let bundle = Bundle {
        format: FORMAT.into(),
        generated_at: crate::rfc3339(crate::now_millis()),
        log: log_identity(log, &checkpoint),
        checkpoint: checkpoint.note.clone(),
        tenant: tenant_identity(tenant),
        subject: Opening {
            email: address.as_str().to_string(),
            salt: B64.encode(&salt),
            commitment: crate::hex(&subject.commitment),
            vrf_proof,
            evidence,
        },
        events: proven,
        collection_points: templates,
        decisions,
        completeness,
        parameters: Some(parameters),
        holds: Some(holds),
        relabelled,
        witnessed,
        earlier,
    };
    Ok((bundle, checkpoint))
}

/// What the subject map of one checkpoint says of a subject: the proofs of its key, of the
/// parameters key and of its tenant's hold key, the chain its head begins, and — when that
/// chain went through a relabel leaf — the proof of the salted commitment it came from.
struct MapView {
    subject: MapProof,
    parameters: MapProof,
    holds: MapProof,
    chain: Vec<(u64, Vec<u8>)>,
    salted: Option<MapProof>,
    /// The collection points the chain's events name, each with the proof of its retirement
    /// key (in the same map).
    templates: Vec<(String, MapProof)>,
}

/// Waits (up to [`CHECKPOINT_WAIT`]) for a checkpoint with a subject map covering leaf `newest`,
/// and reads what its map says of subject `key`; `from` is the salted commitment its history
/// may have begun under (followed to the one a relabel leaf names).
fn map_view(
    store: &Store,
    log: &Log,
    tenant_id: &str,
    key: Hash,
    mut from: Hash,
    newest: u64,
) -> Result<MapView, DomainError> {
    let deadline = Instant::now() + CHECKPOINT_WAIT;
    let holds_key = hold_key(tenant_id);
    loop {
        match log.subject_proofs([&key, &parameters_key(), &holds_key, &from]) {
            Ok([subject, parameters, holds, salted]) if subject.size > newest => {
                let chain = chain_from(store, subject.value)?;
                let relabel = chain.iter().find_map(|(_, b)| RelabelLeaf::parse(b).ok());
                match relabel.as_ref().map(|l| crate::unhex32(&l.from)) {
                    Some(Some(named)) if named != from => {
                        from = named;
                        continue;
                    }
                    _ => {
                        let ids = template_ids(&chain);
                        let keys: Vec<Hash> = ids
                            .iter()
                            .map(|id| collection_point_key(tenant_id, id))
                            .collect();
                        let retirements = log.subject_proofs_of(&keys)?;
                        // The same map, or read all again (a checkpoint came meanwhile).
                        if retirements.iter().any(|p| p.size != subject.size) {
                            continue;
                        }
                        return Ok(MapView {
                            subject,
                            parameters,
                            holds,
                            chain,
                            salted: relabel.map(|_| salted),
                            templates: ids.into_iter().zip(retirements).collect(),
                        });
                    }
                }
            }
            Ok(_) | Err(LogError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if Instant::now() > deadline {
            return Err(DomainError::Log(LogError::NotCommitted(
                "no checkpoint covers this address's newest event yet; try again in a moment"
                    .into(),
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The map's side of a bundle, each part with the leaves it names: the subject's bucket
/// (completeness, with the map leaf), the salted commitment's (after a relabelling), the tenant's
/// hold chain (`holds`: its leaves the checkpoint covers) and the log's parameters.
fn map_parts(
    view: &MapView,
    holds: &[u64],
    prove: &dyn Fn(u64) -> Result<ProvenLeaf, DomainError>,
) -> Result<(Completeness, Option<Relabelled>, Holds, Parameters), DomainError> {
    let (bucket, bucket_entries, bucket_path) = bucket_of(&view.subject);
    let completeness = Completeness {
        map_leaf: prove(view.subject.size - 1)?,
        bucket,
        bucket_entries,
        bucket_path,
    };
    let relabelled = view.salted.as_ref().map(|salted| {
        let (bucket, bucket_entries, bucket_path) = bucket_of(salted);
        Relabelled {
            bucket,
            bucket_entries,
            bucket_path,
        }
    });
    let (bucket, bucket_entries, bucket_path) = bucket_of(&view.holds);
    let holds = Holds {
        leaves: holds.iter().map(|&i| prove(i)).collect::<Result<_, _>>()?,
        bucket,
        bucket_entries,
        bucket_path,
    };
    let (bucket, bucket_entries, bucket_path) = bucket_of(&view.parameters);
    let parameters = Parameters {
        leaf: view.parameters.value.map(prove).transpose()?,
        bucket,
        bucket_entries,
        bucket_path,
    };
    Ok((completeness, relabelled, holds, parameters))
}

/// The decisions, from the same events the bundle carries (the consent state is their replay,
/// by the same rules): no event recorded meanwhile can make them disagree.
fn decisions_of(
    proven: &[ProvenLeaf],
    purposes: &[consent::model::PurposeDefinition],
) -> Vec<PurposeDecision> {
    let leaves: Vec<(u64, ConsentLeaf)> = proven
        .iter()
        .filter_map(|p| {
            let bytes = B64.decode(&p.leaf).ok()?;
            Some((p.leaf_index, ConsentLeaf::parse(&bytes).ok()?))
        })
        .collect();
    let purposes: Vec<String> = purposes.iter().map(|p| p.purpose.clone()).collect();
    verify::decisions_from_leaves(&leaves, &purposes)
}

/// A map proof's bucket as a bundle carries it: its number, its entries and its path (base64).
fn bucket_of(proof: &MapProof) -> (u32, String, Vec<String>) {
    (
        proof.bucket as u32,
        B64.encode(&proof.entries),
        proof.path.iter().map(|h| B64.encode(h)).collect(),
    )
}

/// The collection points the consent events of a chain name, sorted, each once.
fn template_ids(chain: &[(u64, Vec<u8>)]) -> Vec<String> {
    let ids: BTreeSet<String> = chain
        .iter()
        .filter_map(|(_, bytes)| ConsentLeaf::parse(bytes).ok()?.collection_point)
        .collect();
    ids.into_iter().collect()
}

/// The screens (collection points) the events name, with their contents and their periods of
/// use — the registration leaf, the retirement leaf if the map names one, and the map's bucket
/// for the retirement key — each proven.
fn proven_templates(
    store: &Store,
    tenant_id: &str,
    view: &MapView,
    prove: &dyn Fn(u64) -> Result<ProvenLeaf, DomainError>,
) -> Result<Vec<ProvenTemplate>, DomainError> {
    let mut templates = Vec::new();
    for (id, retirement) in &view.templates {
        if !plain_id(id) {
            continue;
        }
        let Some(row) = store.read(|r| Ok::<_, DomainError>(r.collection_point(tenant_id, id)?))?
        else {
            continue;
        };
        let (bucket, bucket_entries, bucket_path) = bucket_of(retirement);
        templates.push(ProvenTemplate {
            id: row.id,
            content_type: row.content_type,
            content: B64.encode(&row.content),
            proof: prove(row.leaf_index.get())?,
            retired: retirement.value.map(prove).transpose()?,
            retirement: Some(MapBucket {
                bucket,
                bucket_entries,
                bucket_path,
            }),
        });
    }
    Ok(templates)
}

/// The "how" of each event, where it is kept (not erased), for the verifier to check against
/// the hash its leaf commits to.
fn kept_evidence(events: &[EventRow]) -> Vec<EventEvidence> {
    events
        .iter()
        .filter_map(|e| {
            let value = serde_json::from_str(e.evidence.as_deref()?).ok()?;
            Some(EventEvidence {
                leaf_index: e.leaf_index.get(),
                evidence: value,
            })
        })
        .collect()
}

/// For each leaf of `indexes` (the events, and a campaign proof's campaign leaf), the latest
/// checkpoint the witnesses cosigned without it and the earliest one with it (up to the
/// bundle's), once each, smallest first, with the consistency proof to the bundle's checkpoint
/// of `size`: they bound the leaf's time from below and from above. Empty without witnesses.
fn earlier(log: &Log, indexes: &[u64], size: u64) -> Result<Vec<Witnessed>, DomainError> {
    if log.witness_count() == 0 {
        return Ok(Vec::new());
    }
    let mut found = std::collections::BTreeMap::new();
    for &index in indexes {
        for cp in [
            log.cosigned_without(index)?,
            log.cosigned_with(index, size)?,
        ]
        .into_iter()
        .flatten()
        {
            found.entry(cp.size).or_insert(cp);
        }
    }
    found
        .into_values()
        .map(|cp| {
            let consistency = if cp.size == size {
                Vec::new()
            } else {
                log.consistency_proof(cp.size, size)?
            };
            Ok(Witnessed {
                checkpoint: cp.note,
                consistency: consistency.iter().map(|h| B64.encode(h)).collect(),
            })
        })
        .collect()
}

/// The send decision for `purpose` with its proof: the address's evidence bundle, and the
/// decision its events give (as of the bundle's checkpoint, which covers the address's newest
/// event). An address with no events has nothing to prove: its decision is `none`.
pub fn proven_decision(
    store: &Store,
    log: &Log,
    tenant_id: &str,
    email: &str,
    purpose: &str,
) -> Result<ProvenDecision, DomainError> {
    let known = store.read(|r| consent::known_purposes(r, tenant_id))?;
    consent::check_purposes(std::slice::from_ref(&purpose.to_string()), &known)?;
    let proof = bundle(store, log, tenant_id, email)?;
    let decision = proof
        .decisions
        .iter()
        .find(|d| d.purpose == purpose)
        .cloned()
        .ok_or_else(|| LogError::Corrupt(format!("the bundle has no decision for {purpose}")))?;
    Ok(ProvenDecision {
        format: DECISION_FORMAT.into(),
        decision,
        proof,
    })
}

/// The proof that `email` was in campaign check `id` with its decision: the campaign leaf and
/// the address's entry, with the address's evidence bundle at a checkpoint covering both.
pub fn campaign_proof(
    store: &Store,
    log: &Log,
    tenant_id: &str,
    id: &str,
    email: &str,
) -> Result<CampaignProof, DomainError> {
    let (row, entries, position) = consent::campaign_entry(store, tenant_id, id, email)?;
    let index = row.leaf_index.get();
    let (proof, checkpoint) = bundle_covering(store, log, tenant_id, email, index)?;
    let path = consent_ledger_sdk::campaign::path(&entries, position);
    Ok(CampaignProof {
        format: consent_ledger_sdk::campaign::CAMPAIGN_PROOF_FORMAT.into(),
        campaign: proven_leaf(store, log, index, &checkpoint)?,
        entry: ProvenEntry {
            index: position as u64,
            entry: B64.encode(entries[position].encode()),
            path: path.iter().map(|h| B64.encode(h)).collect(),
        },
        proof,
    })
}
