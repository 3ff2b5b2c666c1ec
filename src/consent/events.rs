//! Consent events: validation of what a sender (or a form, a link, an import) submits into
//! entries ready to append ([`ConsentEventEntry`]), batches of them, the answer for an appended
//! event, and cleaning evidence a person's client sent. What an entry writes when the sequencer
//! appends it lives in `entries`; the rules that decide its effect in the SDK's `consent`.

use super::validate::{check_purposes, optional_text, parse_time, text};
use super::{known_purposes, new_id, plain_id, ConsentEventEntry};
use crate::error::DomainError;
use serde_json::Value;

use super::address::EmailAddress;
use super::exceptions::check_basis_evidence;
use super::links::Links;
use super::model::*;
use super::state::{pending, state_of};

use crate::log::{Appended, LogError};
use crate::now_millis;
use crate::store::{Repo, Store};
use consent_ledger_sdk::consent::{bound_by_refusal, replay, ConsentLeaf};
use consent_ledger_sdk::map::leaf_prev;

/// Most events in one batch.
pub const MAX_BATCH: usize = 1000;

/// Validates an event against the tenant's purposes, collection points and current state, and
/// returns the entry to append. Reads only; nothing is written until the log appends the entry.
pub fn prepare_event(
    store: &Store,
    tenant_id: &str,
    input: NewEvent,
) -> Result<ConsentEventEntry, DomainError> {
    prepare(store, tenant_id, input, false)
}

/// [`prepare_event`], for an event given now or (`imported`) imported from a legacy system.
fn prepare(
    store: &Store,
    tenant_id: &str,
    input: NewEvent,
    imported: bool,
) -> Result<ConsentEventEntry, DomainError> {
    let address = EmailAddress::parse(&input.email)?;
    let receiver = Receiver {
        role: input.received_by.role,
        name: text("received_by.name", &input.received_by.name, 200)?,
    };
    let occurred_at = claimed_time(input.event, input.occurred_at.as_deref())?;
    let basis = match (input.event, input.basis) {
        (EventKind::OptIn, basis) => Some(basis.unwrap_or(Basis::Consent)),
        (_, None) => None,
        (_, Some(_)) => return Err(DomainError::Invalid("basis belongs to opt-ins only".into())),
    };
    if input.confirmation_required && input.event != EventKind::OptIn {
        return Err(DomainError::Invalid(
            "confirmation_required belongs to opt-ins only".into(),
        ));
    }
    if let Some(basis) = basis {
        check_basis_evidence(basis, input.evidence.as_ref(), occurred_at)?;
    }
    let evidence = input.evidence.map(checked_evidence).transpose()?;
    store.read(|r| {
        let purposes =
            event_purposes(&input.purposes, input.event, &known_purposes(r, tenant_id)?)?;
        if let Some(cp) = &input.collection_point {
            in_use(r, tenant_id, cp, occurred_at)?;
        }
        let subject = r.subject_by_address(tenant_id, address.as_str())?;
        if input.event == EventKind::Confirm {
            let pending = match &subject {
                Some(s) => pending(&state_of(&r.all_state_entries(&s.id)?), purposes.as_deref()),
                None => Vec::new(),
            };
            if pending.is_empty() {
                return Err(DomainError::Conflict(
                    "nothing awaits confirmation for this address and purposes".into(),
                ));
            }
        }
        Ok(ConsentEventEntry {
            tenant_id: tenant_id.to_string(),
            event_id: new_id(),
            address,
            kind: input.event,
            purposes,
            basis,
            method: input.method,
            collection_point: input.collection_point,
            receiver,
            occurred_at,
            confirmation_required: input.confirmation_required,
            evidence,
            idempotency: None,
            confirms: None,
            imported,
            subject_id: None,
            found: subject.as_ref().map(|s| s.id.clone()),
            needs_label: subject.is_none() || input.event == EventKind::OptOut,
            label: None,
            commitment: None,
        })
    })
}

/// Checks that collection point `id` is registered, and was in use when the event claims to
/// have happened (`claimed`, Unix ms): not retired, or retired after it (an import, or a
/// consent recorded late) — the rule the verifiers check (`consent::in_use`).
fn in_use(r: &mut Repo<'_>, tenant_id: &str, id: &str, claimed: i64) -> Result<(), DomainError> {
    let row = match plain_id(id) {
        true => r.collection_point(tenant_id, id)?,
        false => None,
    };
    let Some(row) = row else {
        return Err(DomainError::Invalid(format!(
            "unknown collection point {id:?}: register it first"
        )));
    };
    match row
        .superseded_at
        .filter(|_| row.retired_leaf_index.is_some())
    {
        Some(retired) if claimed >= retired => Err(DomainError::Invalid(format!(
            "collection point {id:?} was retired at {}: a consent given since names the screen \
             in use (register it); only one given before may name this one",
            crate::rfc3339(retired)
        ))),
        _ => Ok(()),
    }
}

/// The time an event claims (`occurred_at`, else now), in Unix ms. A refusal is never turned
/// away for a client's clock: a future time is taken as now; another event's may be at most
/// five minutes ahead.
fn claimed_time(kind: EventKind, occurred_at: Option<&str>) -> Result<i64, DomainError> {
    let now = now_millis();
    let claimed = match occurred_at {
        Some(t) => parse_time("occurred_at", t)?,
        None => now,
    };
    match kind {
        EventKind::OptOut => Ok(claimed.min(now)),
        _ if claimed > now + 5 * 60_000 => {
            Err(DomainError::Invalid("occurred_at is in the future".into()))
        }
        _ => Ok(claimed),
    }
}

/// The evidence of an event, its texts checked, as stored.
fn checked_evidence(e: Evidence) -> Result<serde_json::Value, DomainError> {
    for (field, value) in [
        ("ip", &e.ip),
        ("user_agent", &e.user_agent),
        ("confirmation_message_id", &e.confirmation_message_id),
        ("note", &e.note),
        ("transaction_reference", &e.transaction_reference),
        ("published_in", &e.published_in),
    ] {
        optional_text(&format!("evidence.{field}"), value.as_deref(), 1000)?;
    }
    Ok(serde_json::to_value(e).expect("evidence serialises"))
}

/// An event's purposes, sorted and each once, all of them `known`; `None` for all purposes
/// (an opt-out's or a confirmation's, never an opt-in's).
fn event_purposes(
    purposes: &Purposes,
    kind: EventKind,
    known: &[String],
) -> Result<Option<Vec<String>>, DomainError> {
    match (purposes, kind) {
        (Purposes::All(_), EventKind::OptIn) => Err(DomainError::Invalid(
            "an opt-in names its purposes; \"all\" is for opt-outs and confirmations".into(),
        )),
        (Purposes::All(_), _) => Ok(None),
        (Purposes::List(list), _) => {
            let mut list = list.clone();
            list.sort();
            list.dedup();
            check_purposes(&list, known)?;
            Ok(Some(list))
        }
    }
}

/// Validates every event of a batch; all must pass for any to be recorded.
pub fn prepare_events(
    store: &Store,
    tenant_id: &str,
    batch: EventBatch,
) -> Result<Vec<ConsentEventEntry>, DomainError> {
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH {
        return Err(DomainError::Invalid(format!(
            "a batch holds 1–{MAX_BATCH} events"
        )));
    }
    prepare_all(
        store,
        tenant_id,
        batch.events.into_iter().map(Ok).enumerate(),
        false,
    )
}

/// Validates numbered events (or the reason one could not even be read): the entries only if every
/// one is valid, otherwise each invalid one by number (`InvalidItems`). Shared by batches and imports.
pub(crate) fn prepare_all(
    store: &Store,
    tenant_id: &str,
    items: impl Iterator<Item = (usize, Result<NewEvent, DomainError>)>,
    imported: bool,
) -> Result<Vec<ConsentEventEntry>, DomainError> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (number, item) in items {
        match item.and_then(|event| prepare(store, tenant_id, event, imported)) {
            Ok(entry) => entries.push(entry),
            Err(e @ (DomainError::Invalid(_) | DomainError::Conflict(_))) => {
                errors.push((number, e.to_string()))
            }
            Err(e) => return Err(e),
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(DomainError::InvalidItems(errors))
    }
}

/// The chain ending at leaf `head`, as the log links it (each leaf's `prev`), oldest first:
/// every leaf of a subject — events, erasures, a relabelling and the older history before it.
pub fn chain_of(r: &mut Repo<'_>, head: Option<u64>) -> Result<Vec<(u64, Vec<u8>)>, DomainError> {
    let mut chain = Vec::new();
    let mut at = head;
    while let Some(index) = at {
        let bytes = r
            .leaf_data(index, index + 1)?
            .pop()
            .ok_or_else(|| LogError::Corrupt(format!("no leaf {index}")))?;
        at = leaf_prev(&bytes)
            .map_err(|e| LogError::Corrupt(format!("leaf {index}: {e}")))?
            .filter(|prev| *prev < index);
        chain.push((index, bytes));
    }
    chain.reverse();
    Ok(chain)
}

/// Whether an appended leaf is an opt-in after earlier events of its subject: only such an
/// opt-in can be bound by a refusal ([`effect`] then reads its chain).
pub fn may_be_bound(appended: &Appended) -> bool {
    ConsentLeaf::parse(appended.leaf.bytes())
        .is_ok_and(|leaf| leaf.event == EventKind::OptIn && leaf.prev.is_some())
}

/// What an appended opt-in changed nothing for: the purposes a refusal before it binds, as the
/// SDK's rules say of the subject's chain in the log (`None`: it took effect for all).
pub fn effect(r: &mut Repo<'_>, appended: &Appended) -> Result<Option<Ineffective>, DomainError> {
    let Ok(leaf) = ConsentLeaf::parse(appended.leaf.bytes()) else {
        return Ok(None);
    };
    // Only an opt-in after earlier events of its subject can be bound (as `may_be_bound`).
    if leaf.event != EventKind::OptIn || leaf.prev.is_none() {
        return Ok(None);
    }
    let earlier: Vec<(u64, ConsentLeaf)> = chain_of(r, leaf.prev)?
        .into_iter()
        .filter_map(|(i, bytes)| ConsentLeaf::parse(&bytes).ok().map(|l| (i, l)))
        .collect();
    let state = replay(earlier.iter().map(|(i, l)| (*i, l)));
    let purposes = bound_by_refusal(&state, &leaf);
    Ok((!purposes.is_empty()).then(|| Ineffective {
        reason: format!(
            "a refusal binds {}: only fresh consent (basis consent) given after the refusal lifts \
             it, whatever the basis claimed (Art. 3(3)); the event is recorded, and the address \
             may still not be mailed for {}",
            purposes.join(", "),
            if purposes.len() == 1 { "it" } else { "them" }
        ),
        purposes,
    }))
}

/// The answer for an appended event (with its confirmation link, for a pending opt-in).
pub fn recorded(appended: &Appended, links: &Links) -> RecordedEvent {
    let doc: Value = serde_json::from_slice(appended.leaf.bytes()).expect("our leaves are JSON");
    RecordedEvent {
        event_id: doc["event_id"].as_str().unwrap_or_default().to_string(),
        leaf_index: appended.index,
        leaf_hash: base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            appended.leaf.hash(),
        ),
        prev_leaf_index: doc["prev"].as_u64(),
        recorded_at: doc["recorded_at"].as_str().unwrap_or_default().to_string(),
        confirmation_url: links.confirmation_url(&doc),
        effective: true,
        ineffective: None,
    }
}

/// Evidence a person's client sent (user agent, Message-ID, …) made acceptable, so that it is
/// never the reason a confirmation or an opt-out is refused: control characters become spaces,
/// at most 1,000 characters, empty values are dropped.
pub fn clean_evidence(evidence: Evidence) -> Evidence {
    fn clean(value: Option<String>) -> Option<String> {
        let text: String = value?
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(1000)
            .collect();
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    }
    Evidence {
        ip: clean(evidence.ip),
        user_agent: clean(evidence.user_agent),
        confirmation_message_id: clean(evidence.confirmation_message_id),
        note: clean(evidence.note),
        ..Evidence::default()
    }
}
