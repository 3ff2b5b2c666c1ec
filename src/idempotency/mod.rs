//! Idempotency keys: a request that carries an `Idempotency-Key` is recorded once. The one entry
//! point, [`record_once`], claims the key before the request is validated, has the request's
//! last event complete it in its own transaction, releases it if nothing was recorded, and
//! replays the first answer (rebuilt from the request's leaves) when the request comes again;
//! keys are purged after [`RETENTION_MS`] by the [`Housekeeper`]. Answers are domain values
//! ([`Answer`]); the HTTP layer renders them. Not here: reading the header (`api`), the events
//! themselves (`consent`).

mod housekeeper;

use serde::Serialize;
use serde_json::{json, Value};

use crate::consent::links::Links;
use crate::consent::model::{
    ImportSummary, Ineffective, RecordedBatch, RecordedEvent, SignupRecorded,
};
use crate::consent::{recorded, ConsentEventEntry};
use crate::error::DomainError;
use crate::log::{Appended, Leaf, Log, LogEntry, LogError};
use crate::now_millis;
use crate::store::{IdempotencyRow, Repo, Store, StoreError};
use consent_ledger_sdk::consent::Status;
pub use housekeeper::Housekeeper;

/// A client's `Idempotency-Key`, under the scope of its kind of caller (`api:`, `pk:<key>:`), so
/// that a public form can never replay or block a sender's call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key a client sent (the header's bytes), scoped: 1–255 visible ASCII characters.
    pub fn parse(scope: &str, sent: &[u8]) -> Result<Self, DomainError> {
        if !sent.iter().all(|b| (32..127).contains(b) || *b == b'\t') {
            return Err(DomainError::Malformed(
                "Idempotency-Key must be visible ASCII".into(),
            ));
        }
        if sent.is_empty() || sent.len() > 255 || !sent.iter().all(u8::is_ascii_graphic) {
            return Err(DomainError::Malformed(
                "Idempotency-Key must be 1–255 visible ASCII characters".into(),
            ));
        }
        Ok(Self(format!("{scope}{}", String::from_utf8_lossy(sent))))
    }
}

/// The answer to a request that recorded events, in its shape (the same on a replay).
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// One event.
    Event(RecordedEvent),
    /// A batch.
    Batch(RecordedBatch),
    /// A public signup (no confirmation link).
    Signup(SignupRecorded),
    /// An import.
    Import(ImportSummary),
}

/// What became of a request.
#[derive(Debug)]
pub enum Outcome {
    /// Its events were recorded now.
    Recorded(Answer),
    /// It was recorded before under its key: the first answer, again.
    Replayed(Answer),
}

/// Records the entries `prepare` validates (blocking work, run off the async threads) once per
/// `key`: the first request with a key records them and answers; a retry with the same key and
/// request gets the first answer again; another request under the key is a conflict.
#[allow(clippy::too_many_arguments)]
pub async fn record_once<P, E>(
    store: &Store,
    log: &Log,
    links: &Links,
    tenant_id: &str,
    key: Option<IdempotencyKey>,
    request: &[u8],
    shape: AnswerShape,
    prepare: P,
) -> Result<Outcome, E>
where
    P: FnOnce() -> Result<Vec<ConsentEventEntry>, E> + Send + 'static,
    E: From<DomainError> + From<LogError> + From<StoreError> + Send + 'static,
{
    let mark = match key {
        None => None,
        Some(key) => {
            let (claim_store, links, tenant, request) = (
                store.clone(),
                links.clone(),
                tenant_id.to_string(),
                request.to_vec(),
            );
            let claimed = store
                .blocking(false, move || {
                    claim(&claim_store, &links, &tenant, &key, &request, shape)
                })
                .await?;
            match claimed {
                Claim::Replay(answer) => return Ok(Outcome::Replayed(answer)),
                Claim::Proceed(mark) => Some(mark),
            }
        }
    };
    let recorded = async {
        // One event is a short query; a batch or an import is not.
        let single = matches!(shape, AnswerShape::Event | AnswerShape::Signup);
        let mut entries = store.blocking(single, prepare).await?;
        let count = entries.len();
        if let (Some(mark), Some(last)) = (&mark, entries.last_mut()) {
            last.answer_idempotency(mark.clone().with_count(count));
        }
        let entries = entries
            .into_iter()
            .map(|e| Box::new(e) as Box<dyn LogEntry>)
            .collect();
        Ok::<_, E>(log.append_entries(entries).await?)
    }
    .await;
    match recorded {
        Ok(appended) => {
            // Only an opt-in after earlier events of its subject reads the log for its answer.
            let effects = if appended.iter().any(crate::consent::may_be_bound) {
                let (reader, appended) = (store.clone(), appended.clone());
                store
                    .blocking(true, move || reader.read(|r| effects(r, &appended, shape)))
                    .await?
            } else {
                vec![None; appended.len()]
            };
            Ok(Outcome::Recorded(answer(&appended, effects, links, shape)))
        }
        Err(e) => {
            if let Some(mark) = mark {
                let release_store = store.clone();
                let released = store
                    .blocking(false, move || release(&release_store, &mark))
                    .await;
                if let Err(release) = released {
                    tracing::warn!(error = %release, "idempotency key not released");
                }
            }
            Err(e)
        }
    }
}

/// How long a reservation without an answer may block its key when its owner cannot be told
/// gone (it named none, or it lives): after this its request is known dead (its events would
/// have completed the reservation in their own transaction). A reservation whose owner process
/// is gone (`Store::owner_gone`: it holds its lock no more) is taken over at once.
const ABANDONED_AFTER_MS: i64 = 60_000;

/// What to do with a request that carries an `Idempotency-Key`.
enum Claim {
    /// First use: go on, and let the last entry carry this mark.
    Proceed(IdempotencyMark),
    /// Seen before: answer this again.
    Replay(Answer),
}

/// The shape of a request's answer, rebuilt on replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerShape {
    /// One [`RecordedEvent`].
    Event,
    /// A [`RecordedBatch`].
    Batch,
    /// A [`SignupRecorded`] (public: no confirmation link).
    Signup,
    /// An [`ImportSummary`].
    Import,
}

impl AnswerShape {
    fn name(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Batch => "batch",
            Self::Signup => "signup",
            Self::Import => "import",
        }
    }
}

/// Carried by the last entry of a request: its transaction records the answer under the key.
#[derive(Clone, Debug)]
pub struct IdempotencyMark {
    tenant_id: String,
    key: String,
    count: u64,
    shape: AnswerShape,
    /// The reservation's `created_at` as this claim set it: a takeover sets another, so a
    /// request whose key was taken over cannot complete it (and records nothing).
    claimed_at: i64,
}

/// What each appended opt-in a refusal binds changed nothing for (read from its subject's
/// chain in the log); for other shapes, nothing is read.
fn effects(
    r: &mut Repo<'_>,
    appended: &[Appended],
    shape: AnswerShape,
) -> Result<Vec<Option<Ineffective>>, DomainError> {
    match shape {
        AnswerShape::Event | AnswerShape::Batch => appended
            .iter()
            .map(|a| crate::consent::effect(r, a))
            .collect(),
        AnswerShape::Signup | AnswerShape::Import => Ok(vec![None; appended.len()]),
    }
}

/// The answer to a request that recorded `appended` (at least one event), in its shape, with
/// each event's [`effects`].
fn answer(
    appended: &[Appended],
    effects: Vec<Option<Ineffective>>,
    links: &Links,
    shape: AnswerShape,
) -> Answer {
    let mut events: Vec<RecordedEvent> = appended.iter().map(|a| recorded(a, links)).collect();
    for (event, ineffective) in events.iter_mut().zip(effects) {
        event.effective = ineffective.is_none();
        event.ineffective = ineffective;
    }
    match shape {
        AnswerShape::Event => Answer::Event(events.swap_remove(0)),
        AnswerShape::Batch => Answer::Batch(RecordedBatch { events }),
        AnswerShape::Import => Answer::Import(ImportSummary {
            imported: appended.len() as u64,
            first_leaf_index: appended.first().map_or(0, |a| a.index),
            last_leaf_index: appended.last().map_or(0, |a| a.index),
        }),
        AnswerShape::Signup => Answer::Signup(SignupRecorded {
            event_id: events[0].event_id.clone(),
            leaf_index: events[0].leaf_index,
            status: Status::Pending.as_str().into(),
        }),
    }
}

impl IdempotencyMark {
    /// The number of events the request records.
    pub fn with_count(mut self, count: usize) -> Self {
        self.count = count as u64;
        self
    }
}

/// Claims an idempotency key for a request answered in `shape`.
fn claim(
    store: &Store,
    links: &Links,
    tenant_id: &str,
    key: &IdempotencyKey,
    request: &[u8],
    shape: AnswerShape,
) -> Result<Claim, DomainError> {
    let key = key.0.as_str();
    // Keyed, so a stored request (which holds an address) cannot be guessed back from a list.
    let digest = links
        .fingerprint(
            &[
                tenant_id.as_bytes(),
                b"\n",
                shape.name().as_bytes(),
                b"\n",
                request,
            ]
            .concat(),
        )
        .to_vec();
    let now = now_millis();
    let owner = store.owner();
    store.write(|r: &mut Repo<'_>| {
        let mark = |claimed_at| IdempotencyMark {
            tenant_id: tenant_id.into(),
            key: key.into(),
            count: 1,
            shape,
            claimed_at,
        };
        match r.idempotent_answer(tenant_id, key)? {
            None => {
                let row = IdempotencyRow {
                    tenant_id: tenant_id.into(),
                    key: key.into(),
                    request_sha256: digest,
                    status: 0,
                    body: None,
                    created_at: now,
                    owner: owner.clone(),
                };
                r.reserve_idempotency_key(&row)?;
                Ok(Claim::Proceed(mark(now)))
            }
            Some(row) if row.request_sha256 != digest => Err(DomainError::Conflict(
                "this Idempotency-Key was used with a different request".into(),
            )),
            Some(IdempotencyRow {
                body: Some(body), ..
            }) => Ok(Claim::Replay(rebuild_answer(r, links, &body)?)),
            Some(row) => {
                let gone = match row.owner.as_deref() {
                    Some(held) if owner.as_deref() != Some(held) => {
                        store.owner_gone(held)?.then_some(held)
                    }
                    _ => None,
                };
                let stale_before = now - ABANDONED_AFTER_MS;
                // Strictly later than the claim it replaces, so that claim can never complete.
                let claimed_at = now.max(row.created_at + 1);
                if r.take_over_idempotency_key(
                    tenant_id,
                    key,
                    stale_before,
                    gone,
                    claimed_at,
                    owner.as_deref(),
                )? {
                    Ok(Claim::Proceed(mark(claimed_at)))
                } else {
                    Err(DomainError::Conflict(
                        "a request with this Idempotency-Key is in progress; retry in a moment"
                            .into(),
                    ))
                }
            }
        }
    })
}

/// Frees a claimed key whose request failed (nothing was recorded), so it can be retried.
fn release(store: &Store, mark: &IdempotencyMark) -> Result<(), DomainError> {
    store.write(|r: &mut Repo<'_>| {
        Ok::<_, DomainError>(r.release_idempotency_key(
            &mark.tenant_id,
            &mark.key,
            mark.claimed_at,
        )?)
    })
}

/// The answer of a request, rebuilt from its leaves: `{"first", "count", "batch"}`.
fn rebuild_answer(r: &mut Repo<'_>, links: &Links, marker: &str) -> Result<Answer, DomainError> {
    let marker: Value = serde_json::from_str(marker)
        .map_err(|e| DomainError::Invalid(format!("stored answer: {e}")))?;
    let (first, count) = (
        marker["first"].as_u64().unwrap_or(0),
        marker["count"].as_u64().unwrap_or(0),
    );
    let end = first
        .checked_add(count)
        .ok_or_else(|| DomainError::Invalid("stored answer: its leaves overflow".into()))?;
    let appended: Vec<Appended> = r
        .leaf_data(first, end)?
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| Appended {
            index: first + i as u64,
            leaf: Leaf::from_stored(bytes),
        })
        .collect();
    let shape = match marker["shape"].as_str() {
        Some("batch") => AnswerShape::Batch,
        Some("signup") => AnswerShape::Signup,
        Some("import") => AnswerShape::Import,
        _ => AnswerShape::Event,
    };
    let effects = effects(r, &appended, shape)?;
    Ok(answer(&appended, effects, links, shape))
}

/// Records the answer under the key, in the transaction of the request's last entry.
pub(crate) fn complete_key(
    r: &mut Repo<'_>,
    mark: &IdempotencyMark,
    last_index: u64,
) -> Result<(), crate::log::LogError> {
    let marker = json!({"first": last_index + 1 - mark.count, "count": mark.count, "shape": mark.shape.name()});
    let completed = r.complete_idempotency_key(
        &mark.tenant_id,
        &mark.key,
        mark.claimed_at,
        201,
        &marker.to_string(),
    )?;
    if !completed {
        // Taken over (its owner looked gone, or it ran past the timeout): the retry that took
        // it records the events; this request must record nothing, or they would be twice.
        return Err(crate::log::LogError::NotCommitted(
            "its Idempotency-Key was taken over by a retry".into(),
        ));
    }
    Ok(())
}

/// How long an idempotency key is kept: a retry within this time replays the first answer
/// (the API promises at least 24 hours).
pub const RETENTION_MS: i64 = 48 * 3600 * 1000;

/// Deletes idempotency keys older than [`RETENTION_MS`] at `now`; returns how many.
pub fn purge(store: &Store, now: i64) -> Result<usize, DomainError> {
    store.write(|r: &mut Repo<'_>| {
        Ok::<_, DomainError>(r.purge_idempotency_keys(now - RETENTION_MS)?)
    })
}
