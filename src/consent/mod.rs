//! Consent records: tenants and their purposes, collection points (the consent screen as
//! evidence), opt-in / opt-out / confirm events, and the send decision.
//!
//! An event is validated here, then appended as a [`crate::log::LogEntry`]: inside the
//! sequencer's transaction it finds or creates the subject (address, salt, commitment), links to
//! the subject's previous leaf, writes its row and the new consent state, and gives its leaf — so
//! the rows and the leaf commit together, and concurrent events of one address are ordered by the
//! log. Leaves carry commitments only; addresses, salts and evidence stay in erasable rows.
//! HTTP lives in `api::consent`; SQL in `store::consent_rows`.

pub mod address;
mod entries;
pub mod import;
pub mod links;
pub mod model;
pub mod state;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::log::{Appended, LogError};
use crate::store::{IdempotencyRow, Repo, StateEntryRow, Store, StoreError, SubjectRow, TenantRow};
use crate::{now_millis, rfc3339};
use address::EmailAddress;
pub use entries::{CollectionPointEntry, ConsentEventEntry};
use links::{LinkError, Links};
use model::*;

/// Errors of the consent domain.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// A value is well-formed but not acceptable (bad address, unknown purpose, …).
    #[error("{0}")]
    Invalid(String),
    /// The tenant, subject or collection point does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (nothing to confirm, idempotency key reuse).
    #[error("{0}")]
    Conflict(String),
    /// Personal data may not be erased yet: the retention period runs until the given time.
    #[error("the record must be kept until {0} (one month after the last event; one year under a legal hold)")]
    RetentionRunning(String),
    /// The request is malformed (e.g. its Idempotency-Key).
    #[error("{0}")]
    Malformed(String),
    /// Some items of a batch are invalid; nothing was recorded.
    #[error("{} of the events are invalid; nothing was recorded", .0.len())]
    InvalidItems(Vec<(usize, String)>),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for ConsentError {
    fn from(e: diesel::result::Error) -> Self {
        ConsentError::Store(StoreError::Query(e))
    }
}

impl From<address::AddressError> for ConsentError {
    fn from(e: address::AddressError) -> Self {
        ConsentError::Invalid(e.to_string())
    }
}

use consent_ledger_sdk::consent::Status;
pub(crate) use state::ALL;
use state::{effective, pending, state_of};

/// A new id in UUID version 7 form (RFC 9562): the creation time in milliseconds, then 74
/// random bits. Ids made one after another sort together, so inserts land on the right edge of
/// the indexes instead of on a random page each (the creation time is in the event anyway).
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b[6..]).expect("the OS has randomness");
    b[..6].copy_from_slice(&now_millis().to_be_bytes()[2..]);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

pub(crate) use crate::hex;

pub(crate) fn text(field: &str, value: &str, max: usize) -> Result<String, ConsentError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(ConsentError::Invalid(format!(
            "{field} must be 1–{max} characters without control characters"
        )));
    }
    Ok(value.to_string())
}

pub(crate) fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, ConsentError> {
    value.map(|v| text(field, v, max)).transpose()
}

pub(crate) fn language(value: Option<&str>) -> Result<String, ConsentError> {
    match value.unwrap_or("ja") {
        l @ ("ja" | "en") => Ok(l.to_string()),
        other => Err(ConsentError::Invalid(format!(
            "default_language must be ja or en, not {other:?}"
        ))),
    }
}

fn check_purpose_key(purpose: &str) -> Result<(), ConsentError> {
    let ok = !purpose.is_empty()
        && purpose.len() <= 64
        && purpose
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ConsentError::Invalid(format!(
            "purpose {purpose:?} must be 1–64 lower-case letters, digits, '-' or '_'"
        )))
    }
}

/// Creates a tenant with its purposes.
pub fn create_tenant(store: &Store, input: NewTenant) -> Result<Tenant, ConsentError> {
    let name = text("name", &input.name, 200)?;
    let row = TenantRow {
        id: new_id(),
        legal_name: optional_text("legal_name", input.legal_name.as_deref(), 200)?
            .unwrap_or_else(|| name.clone()),
        name,
        postal_address: optional_text("postal_address", input.postal_address.as_deref(), 500)?,
        complaint_contact: optional_text(
            "complaint_contact",
            input.complaint_contact.as_deref(),
            500,
        )?,
        optout_contact: optional_text("optout_contact", input.optout_contact.as_deref(), 500)?,
        default_language: language(input.default_language.as_deref())?,
        legal_hold: false,
        created_at: now_millis(),
    };
    if input.purposes.len() > MAX_PURPOSES {
        return Err(ConsentError::Invalid(format!(
            "a tenant has at most {MAX_PURPOSES} purposes"
        )));
    }
    for p in &input.purposes {
        check_purpose_key(&p.purpose)?;
        if p.description.chars().count() > 500 {
            return Err(ConsentError::Invalid(
                "a purpose description is at most 500 characters".into(),
            ));
        }
    }
    store.write(|r: &mut dyn Repo| {
        r.insert_tenant(&row)?;
        for p in &input.purposes {
            r.add_purpose(&row.id, &p.purpose, p.description.trim(), row.created_at)?;
        }
        Ok::<_, ConsentError>(())
    })?;
    tenant(store, &row.id)
}

/// Updates a tenant's display profile (the fields given).
pub fn update_tenant(
    store: &Store,
    id: &str,
    change: TenantProfile,
) -> Result<Tenant, ConsentError> {
    if !plain_id(id) {
        return Err(ConsentError::NotFound(format!("no tenant {id:?}")));
    }
    store.write(|r| {
        let mut row = r
            .tenant(id)?
            .ok_or_else(|| ConsentError::NotFound(format!("no tenant {id:?}")))?;
        if let Some(v) = change.legal_name.as_deref() {
            row.legal_name = text("legal_name", v, 200)?;
        }
        if let Some(v) = change.postal_address.as_deref() {
            row.postal_address = Some(text("postal_address", v, 500)?);
        }
        if let Some(v) = change.complaint_contact.as_deref() {
            row.complaint_contact = Some(text("complaint_contact", v, 500)?);
        }
        if let Some(v) = change.optout_contact.as_deref() {
            row.optout_contact = Some(text("optout_contact", v, 500)?);
        }
        if change.default_language.is_some() {
            row.default_language = language(change.default_language.as_deref())?;
        }
        r.update_tenant_profile(&row)?;
        Ok::<_, ConsentError>(())
    })?;
    tenant(store, id)
}

/// A tenant by id.
pub fn tenant(store: &Store, id: &str) -> Result<Tenant, ConsentError> {
    if !plain_id(id) {
        return Err(ConsentError::NotFound(format!("no tenant {id:?}")));
    }
    store.read(|r| {
        let row = r
            .tenant(id)?
            .ok_or_else(|| ConsentError::NotFound(format!("no tenant {id:?}")))?;
        let purposes = r
            .purposes(id)?
            .into_iter()
            .map(|(purpose, description)| PurposeDefinition {
                purpose,
                description,
            })
            .collect();
        Ok(Tenant {
            id: row.id,
            name: row.name,
            legal_name: row.legal_name,
            postal_address: row.postal_address,
            complaint_contact: row.complaint_contact,
            optout_contact: row.optout_contact,
            default_language: row.default_language,
            legal_hold: row.legal_hold,
            purposes,
            created_at: rfc3339(row.created_at),
        })
    })
}

/// Ids we issue are short and plain; anything else (control characters, NUL) is not an id.
pub(crate) fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) fn known_purposes(
    r: &mut dyn Repo,
    tenant_id: &str,
) -> Result<Vec<String>, ConsentError> {
    let no_tenant = || ConsentError::NotFound(format!("no tenant {tenant_id:?}"));
    if !plain_id(tenant_id) {
        return Err(no_tenant());
    }
    // One query on the hot path: a tenant with purposes exists.
    let purposes: Vec<String> = r.purposes(tenant_id)?.into_iter().map(|(p, _)| p).collect();
    if purposes.is_empty() && r.tenant(tenant_id)?.is_none() {
        return Err(no_tenant());
    }
    Ok(purposes)
}

fn check_purposes(requested: &[String], known: &[String]) -> Result<(), ConsentError> {
    if requested.is_empty() {
        return Err(ConsentError::Invalid("give at least one purpose".into()));
    }
    for p in requested {
        if !known.contains(p) {
            return Err(ConsentError::Invalid(format!(
                "unknown purpose {p:?}; this tenant's purposes are: {}",
                if known.is_empty() {
                    "(none registered)".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    Ok(())
}

fn parse_time(field: &str, value: &str) -> Result<i64, ConsentError> {
    let t = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            ConsentError::Invalid(format!(
                "{field} must be an RFC 3339 time like 2026-11-28T10:00:00Z"
            ))
        })?;
    let millis = (t.unix_timestamp_nanos() / 1_000_000) as i64;
    if millis < 0 {
        return Err(ConsentError::Invalid(format!(
            "{field} must not be before 1970"
        )));
    }
    Ok(millis)
}

/// Validates an event against the tenant's purposes, collection points and current state, and
/// returns the entry to append. Reads only; nothing is written until the log appends the entry.
pub fn prepare_event(
    store: &Store,
    tenant_id: &str,
    input: NewEvent,
) -> Result<ConsentEventEntry, ConsentError> {
    let address = EmailAddress::parse(&input.email)?;
    let receiver = Receiver {
        role: input.received_by.role,
        name: text("received_by.name", &input.received_by.name, 200)?,
    };
    let now = now_millis();
    let occurred_at = match &input.occurred_at {
        Some(t) => parse_time("occurred_at", t)?,
        None => now,
    };
    // A refusal is never turned away for a client's clock: a future time is taken as now.
    let occurred_at = match input.event {
        EventKind::OptOut => occurred_at.min(now),
        _ if occurred_at > now + 5 * 60_000 => {
            return Err(ConsentError::Invalid("occurred_at is in the future".into()))
        }
        _ => occurred_at,
    };
    let basis = match (input.event, input.basis) {
        (EventKind::OptIn, basis) => Some(basis.unwrap_or(Basis::Consent)),
        (_, None) => None,
        (_, Some(_)) => {
            return Err(ConsentError::Invalid(
                "basis belongs to opt-ins only".into(),
            ))
        }
    };
    if input.confirmation_required && input.event != EventKind::OptIn {
        return Err(ConsentError::Invalid(
            "confirmation_required belongs to opt-ins only".into(),
        ));
    }
    let evidence = match input.evidence {
        None => None,
        Some(e) => {
            for (field, value) in [
                ("ip", &e.ip),
                ("user_agent", &e.user_agent),
                ("confirmation_message_id", &e.confirmation_message_id),
                ("note", &e.note),
            ] {
                optional_text(&format!("evidence.{field}"), value.as_deref(), 1000)?;
            }
            Some(serde_json::to_value(e).expect("evidence serialises"))
        }
    };
    store.read(|r| {
        let known = known_purposes(r, tenant_id)?;
        let purposes = match (&input.purposes, input.event) {
            (Purposes::All(_), EventKind::OptIn) => {
                return Err(ConsentError::Invalid(
                    "an opt-in names its purposes; \"all\" is for opt-outs and confirmations"
                        .into(),
                ))
            }
            (Purposes::All(_), _) => None,
            (Purposes::List(list), _) => {
                let mut list = list.clone();
                list.sort();
                list.dedup();
                check_purposes(&list, &known)?;
                Some(list)
            }
        };
        if let Some(cp) = &input.collection_point {
            if !plain_id(cp) || r.collection_point(tenant_id, cp)?.is_none() {
                return Err(ConsentError::Invalid(format!(
                    "unknown collection point {cp:?}: register it first"
                )));
            }
        }
        if input.event == EventKind::Confirm {
            let subject = r.subject_by_address(tenant_id, address.as_str())?;
            let pending = match &subject {
                Some(s) => pending(&state_of(&r.all_state_entries(&s.id)?), purposes.as_deref()),
                None => Vec::new(),
            };
            if pending.is_empty() {
                return Err(ConsentError::Conflict(
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
            subject_id: None,
        })
    })
}

/// Collection points of publishable-key signup forms are named with this prefix (a name space
/// senders cannot register in, so a public form never supersedes a sender's own versions).
pub const SIGNUP_FORM_PREFIX: &str = "signup:";
/// Most purposes of a tenant: it bounds a leaf's size far below the 64 KiB limit.
pub const MAX_PURPOSES: usize = 100;
/// Most events in one batch.
pub const MAX_BATCH: usize = 1000;
/// Most addresses in one pre-flight check.
pub const MAX_CHECK: usize = 10_000;
/// Rows per `IN (…)` query.
const CHUNK: usize = 500;
/// How long records are kept after a subject's last event: one month (31 days), or one year
/// (366 days) under a legal hold (ordinance Art. 4(2)).
const RETENTION_MS: i64 = 31 * 86_400_000;
const RETENTION_LEGAL_HOLD_MS: i64 = 366 * 86_400_000;

/// Validates every event of a batch; all must pass for any to be recorded.
pub fn prepare_events(
    store: &Store,
    tenant_id: &str,
    batch: EventBatch,
) -> Result<Vec<ConsentEventEntry>, ConsentError> {
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH {
        return Err(ConsentError::Invalid(format!(
            "a batch holds 1–{MAX_BATCH} events"
        )));
    }
    prepare_all(
        store,
        tenant_id,
        batch.events.into_iter().map(Ok).enumerate(),
    )
}

/// Validates numbered events (or the reason one could not even be read): the entries only if every
/// one is valid, otherwise each invalid one by number (`InvalidItems`). Shared by batches and imports.
pub(crate) fn prepare_all(
    store: &Store,
    tenant_id: &str,
    items: impl Iterator<Item = (usize, Result<NewEvent, ConsentError>)>,
) -> Result<Vec<ConsentEventEntry>, ConsentError> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (number, item) in items {
        match item.and_then(|event| prepare_event(store, tenant_id, event)) {
            Ok(entry) => entries.push(entry),
            Err(e @ (ConsentError::Invalid(_) | ConsentError::Conflict(_))) => {
                errors.push((number, e.to_string()))
            }
            Err(e) => return Err(e),
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(ConsentError::InvalidItems(errors))
    }
}

/// A campaign's pre-flight: the decision for each address, in order.
pub fn check_many(
    store: &Store,
    tenant_id: &str,
    request: CheckRequest,
) -> Result<Vec<CheckResult>, ConsentError> {
    if request.emails.is_empty() || request.emails.len() > MAX_CHECK {
        return Err(ConsentError::Invalid(format!(
            "a check holds 1–{MAX_CHECK} addresses"
        )));
    }
    let parsed: Vec<Result<EmailAddress, String>> = request
        .emails
        .iter()
        .map(|e| EmailAddress::parse(e).map_err(|e| e.to_string()))
        .collect();
    let purposes = [request.purpose.clone(), ALL.to_string()];
    store.read(|r| {
        check_purposes(
            std::slice::from_ref(&request.purpose),
            &known_purposes(r, tenant_id)?,
        )?;
        let addresses: Vec<String> = parsed
            .iter()
            .flatten()
            .map(|a| a.as_str().to_string())
            .collect();
        let mut subjects = std::collections::HashMap::new();
        for chunk in addresses.chunks(CHUNK) {
            for s in r.subjects_by_addresses(tenant_id, chunk)? {
                subjects.insert(s.address.clone().unwrap_or_default(), s.id);
            }
        }
        let ids: Vec<String> = subjects.values().cloned().collect();
        let mut rows: std::collections::HashMap<String, Vec<StateEntryRow>> = Default::default();
        for chunk in ids.chunks(CHUNK) {
            for row in r.state_entries_of(chunk, &purposes)? {
                rows.entry(row.subject_id.clone()).or_default().push(row);
            }
        }
        let states: std::collections::HashMap<String, _> = rows
            .into_iter()
            .map(|(id, rows)| (id, state_of(&rows)))
            .collect();
        Ok(request
            .emails
            .iter()
            .zip(parsed)
            .map(|(email, parsed)| {
                let (may_send, status, error) = match parsed {
                    Err(e) => (false, "invalid".to_string(), Some(e)),
                    Ok(address) => {
                        let state = subjects
                            .get(address.as_str())
                            .and_then(|id| states.get(id))
                            .and_then(|state| effective(state, &request.purpose));
                        match state {
                            Some(s) => (s.may_send(), s.status.as_str().to_string(), None),
                            None => (false, state::NO_STATUS.to_string(), None),
                        }
                    }
                };
                CheckResult {
                    email: email.clone(),
                    may_send,
                    status,
                    error,
                }
            })
            .collect())
    })
}

/// The suppression list for a purpose: addresses whose refusal is in force, by subject cursor.
pub fn suppression(
    store: &Store,
    tenant_id: &str,
    purpose: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<SuppressionPage, ConsentError> {
    let after = after.unwrap_or("");
    if !after.is_empty() && !plain_id(after) {
        return Err(ConsentError::Invalid(
            "after must be the next_after of a previous page".into(),
        ));
    }
    let purposes = [purpose.to_string(), ALL.to_string()];
    store.read(|r| {
        check_purposes(
            std::slice::from_ref(&purpose.to_string()),
            &known_purposes(r, tenant_id)?,
        )?;
        let candidates = r.withdrawn_subjects(tenant_id, &purposes, after, i64::from(limit))?;
        let ids: Vec<String> = candidates.iter().map(|(id, _)| id.clone()).collect();
        let mut rows: std::collections::HashMap<String, Vec<StateEntryRow>> = Default::default();
        for chunk in ids.chunks(CHUNK) {
            for row in r.state_entries_of(chunk, &purposes)? {
                rows.entry(row.subject_id.clone()).or_default().push(row);
            }
        }
        let next_after = (candidates.len() == limit as usize)
            .then(|| ids.last().cloned())
            .flatten();
        let addresses = candidates
            .into_iter()
            .filter(|(id, _)| {
                rows.get(id)
                    .map(|rows| state_of(rows))
                    .and_then(|state| effective(&state, purpose).map(|e| e.status))
                    == Some(Status::Withdrawn)
            })
            .filter_map(|(_, address)| address)
            .collect();
        Ok(SuppressionPage {
            purpose: purpose.to_string(),
            addresses,
            next_after,
        })
    })
}

/// Records that a regulator read a tenant's records (before the read is answered).
pub fn record_regulator_read(
    store: &Store,
    tenant_id: &str,
    regulator: &str,
    operation: &str,
) -> Result<(), ConsentError> {
    let row = crate::store::RegulatorReadRow {
        id: new_id(),
        tenant_id: tenant_id.to_string(),
        regulator: regulator.to_string(),
        operation: operation.to_string(),
        read_at: now_millis(),
    };
    store.write(|r: &mut dyn Repo| {
        known_purposes(r, tenant_id)?; // an unknown tenant is a 404, never a stored oddity
        Ok::<_, ConsentError>(r.insert_regulator_read(&row)?)
    })
}

/// A tenant's recorded regulator reads, newest first.
pub fn regulator_reads(
    store: &Store,
    tenant_id: &str,
    limit: u32,
) -> Result<Vec<RegulatorRead>, ConsentError> {
    store.read(|r| {
        known_purposes(r, tenant_id)?;
        Ok(r.regulator_reads(tenant_id, i64::from(limit))?
            .into_iter()
            .map(|row| RegulatorRead {
                regulator: row.regulator,
                operation: row.operation,
                read_at: rfc3339(row.read_at),
            })
            .collect())
    })
}

/// What a confirmation link stands for: the event it confirms and its subject, if both are still
/// there (an erased subject's link stops working).
fn confirmation_event(
    r: &mut dyn Repo,
    links: &Links,
    token: &str,
) -> Result<(TenantRow, crate::store::EventRow, String), ConsentError> {
    let invalid = |e: LinkError| ConsentError::Invalid(e.to_string());
    let (tenant_id, event_id) = links
        .confirmation(token, now_millis() / 1000)
        .map_err(invalid)?;
    let tenant = r
        .tenant(&tenant_id)?
        .ok_or_else(|| invalid(LinkError::Invalid))?;
    let event = r
        .event(&event_id)?
        .filter(|e| e.tenant_id == tenant_id)
        .ok_or_else(|| invalid(LinkError::Invalid))?;
    let address = r
        .subject(&event.subject_id)?
        .and_then(|s| s.address)
        .ok_or_else(|| invalid(LinkError::Invalid))?;
    Ok((tenant, event, address))
}

/// The page data of a confirmation link (a GET never changes anything).
pub fn confirmation_target(
    store: &Store,
    links: &Links,
    token: &str,
) -> Result<ConfirmationTarget, ConsentError> {
    store.read(|r| {
        let (tenant, event, _) = confirmation_event(r, links, token)?;
        let wanted: Vec<String> = serde_json::from_str(&event.purposes).unwrap_or_default();
        let purposes = r
            .purposes(&tenant.id)?
            .into_iter()
            .filter(|(p, _)| wanted.contains(p))
            .collect();
        Ok(ConfirmationTarget {
            sender: tenant.legal_name,
            language: tenant.default_language,
            purposes,
        })
    })
}

/// The `confirm` event a confirmation link's button records; `Conflict` when nothing awaits
/// confirmation any more (confirmed already, or refused since).
pub fn prepare_confirmation(
    store: &Store,
    links: &Links,
    token: &str,
    evidence: Evidence,
) -> Result<ConsentEventEntry, ConsentError> {
    let evidence = clean_evidence(evidence);
    let (tenant, event, address, purposes) = store.read(|r| {
        let (tenant, event, address) = confirmation_event(r, links, token)?;
        // Only what this opt-in left pending; a later signup needs its own link.
        let state = state_of(&r.all_state_entries(&event.subject_id)?);
        let purposes: Vec<String> = pending(&state, None)
            .into_iter()
            .filter(|p| state[p].event_id == event.id)
            .collect();
        Ok::<_, ConsentError>((tenant, event, address, purposes))
    })?;
    if purposes.is_empty() {
        return Err(ConsentError::Conflict(
            "nothing of this sign-up awaits confirmation".into(),
        ));
    }
    let input = NewEvent {
        event: EventKind::Confirm,
        email: address,
        purposes: Purposes::List(purposes),
        basis: None,
        method: Method::Email,
        collection_point: None,
        received_by: Receiver {
            role: ReceiverRole::Sender,
            name: tenant.legal_name.clone(),
        },
        occurred_at: None,
        confirmation_required: false,
        evidence: Some(evidence),
    };
    let mut entry = prepare_event(store, &tenant.id, input)?;
    entry.confirms = Some(event.id);
    Ok(entry)
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
    }
}

/// Creates a publishable key for a tenant's signup forms on `origins`.
pub fn create_publishable_key(
    store: &Store,
    tenant_id: &str,
    origins: &[String],
) -> Result<PublishableKey, ConsentError> {
    if origins.is_empty() || origins.len() > 20 {
        return Err(ConsentError::Invalid(
            "give 1–20 origins, like https://shop.example.jp".into(),
        ));
    }
    let origins = origins
        .iter()
        .map(|o| browser_origin(o))
        .collect::<Result<Vec<_>, _>>()?;
    let mut random = [0u8; 18];
    getrandom::fill(&mut random).expect("the OS has randomness");
    let key = format!(
        "pk_{}",
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, random)
    );
    let row = crate::store::PublishableKeyRow {
        id: key.clone(),
        tenant_id: tenant_id.to_string(),
        origins: serde_json::to_string(&origins).expect("strings"),
        created_at: now_millis(),
        revoked_at: None,
    };
    store.write(|r: &mut dyn Repo| {
        known_purposes(r, tenant_id)?;
        Ok::<_, ConsentError>(r.insert_publishable_key(&row)?)
    })?;
    Ok(PublishableKey {
        key,
        tenant: tenant_id.to_string(),
        origins,
    })
}

/// An origin as browsers send it (`https://host[:port]`, lower case, default port omitted), or why
/// it is not one. Plain `http` only for exactly localhost, 127.0.0.1 or [::1].
fn browser_origin(origin: &str) -> Result<String, ConsentError> {
    let bad = || {
        ConsentError::Invalid(format!(
            "{origin:?} is not an origin: use https://host[:port] (http:// only for localhost), with no path"
        ))
    };
    let url = url::Url::parse(origin).map_err(|_| bad())?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && local);
    let bare = url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if !scheme_ok || !bare || url.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    Ok(url.origin().ascii_serialization())
}

/// Revokes a tenant's publishable key: signups with it stop at once.
pub fn revoke_publishable_key(
    store: &Store,
    tenant_id: &str,
    key: &str,
) -> Result<(), ConsentError> {
    let revoked = plain_id(key)
        && store.write(|r: &mut dyn Repo| {
            Ok::<_, ConsentError>(r.revoke_publishable_key(tenant_id, key, now_millis())?)
        })?;
    if revoked {
        Ok(())
    } else {
        Err(ConsentError::NotFound(
            "no such active publishable key for this tenant".into(),
        ))
    }
}

/// The publishable key `key`, if it exists and is not revoked.
pub fn publishable_key(store: &Store, key: &str) -> Result<Option<PublishableKey>, ConsentError> {
    if !key.starts_with("pk_") || key.len() > 64 || !plain_id(key) {
        return Ok(None);
    }
    store.read(|r| {
        Ok(r.publishable_key(key)?.map(|row| PublishableKey {
            key: row.id,
            tenant: row.tenant_id,
            origins: serde_json::from_str(&row.origins).unwrap_or_default(),
        }))
    })
}

/// A signup's collection point (the consent text as shown, under the key's own name, with the
/// tenant's legal name as the sender shown) and its pending opt-in (collection point still unset).
/// Nothing here comes from the page except the address, purposes, text, box state and language.
pub fn signup_parts(
    signup: Signup,
    key: &str,
    tenant_legal_name: &str,
    evidence: Evidence,
) -> Result<(NewCollectionPoint, NewEvent), ConsentError> {
    if !matches!(signup.language.as_str(), "ja" | "en") {
        return Err(ConsentError::Invalid("language must be ja or en".into()));
    }
    let form = NewCollectionPoint {
        name: format!("{SIGNUP_FORM_PREFIX}{key}"),
        channel: Method::WebForm,
        content_type: "text/plain; charset=utf-8".into(),
        content: Some(signup.consent_text),
        content_base64: None,
        sender_name_shown: tenant_legal_name.to_string(),
        prechecked: signup.prechecked,
        language: signup.language,
    };
    let event = NewEvent {
        event: EventKind::OptIn,
        email: signup.email,
        purposes: Purposes::List(signup.purposes),
        basis: Some(Basis::Consent),
        method: Method::WebForm,
        collection_point: None,
        received_by: Receiver {
            role: ReceiverRole::Sender,
            name: tenant_legal_name.to_string(),
        },
        occurred_at: None,
        confirmation_required: true,
        evidence: Some(evidence),
    };
    Ok((form, event))
}

/// Sets or clears a tenant's legal hold (a measures order was issued: records are kept a year).
pub fn set_legal_hold(store: &Store, tenant_id: &str, on: bool) -> Result<Tenant, ConsentError> {
    let found = plain_id(tenant_id)
        && store
            .write(|r: &mut dyn Repo| Ok::<_, ConsentError>(r.set_legal_hold(tenant_id, on)?))?;
    if !found {
        return Err(ConsentError::NotFound(format!("no tenant {tenant_id:?}")));
    }
    tenant(store, tenant_id)
}

/// Erases an address's personal data (address, salt, evidence) once the law allows: no purpose
/// may still be granted, and the retention period after its last event must have run. The log is
/// untouched; its leaves become unlinkable.
pub fn erase(store: &Store, tenant_id: &str, email: &str) -> Result<Erasure, ConsentError> {
    let address = EmailAddress::parse(email)?;
    // Under the writer lock: no event of this address can be sequenced while we decide.
    store.write(|r: &mut dyn Repo| {
        let tenant = r
            .tenant(tenant_id)?
            .ok_or_else(|| ConsentError::NotFound(format!("no tenant {tenant_id:?}")))?;
        let subject = r
            .subject_by_address(tenant_id, address.as_str())?
            .ok_or_else(|| ConsentError::NotFound("no records for this address".into()))?;
        let state = state_of(&r.all_state_entries(&subject.id)?);
        let granted: Vec<&str> = state
            .keys()
            .filter(|p| p.as_str() != ALL && effective(&state, p).is_some_and(|e| e.may_send()))
            .map(String::as_str)
            .collect();
        if !granted.is_empty() {
            return Err(ConsentError::Conflict(format!(
                "consent is still in force for {}: record an opt-out first",
                granted.join(", ")
            )));
        }
        let events = r.subject_events(&subject.id)?;
        let last = events
            .iter()
            .map(|e| e.recorded_at)
            .max()
            .unwrap_or(subject.created_at);
        let retention = if tenant.legal_hold {
            RETENTION_LEGAL_HOLD_MS
        } else {
            RETENTION_MS
        };
        let now = now_millis();
        if now < last + retention {
            return Err(ConsentError::RetentionRunning(rfc3339(last + retention)));
        }
        r.erase_subject(&subject.id, now)?;
        r.erase_deliveries_of(&subject.id, crate::unsubscribe::webhooks::ERASED)?;
        Ok(Erasure {
            erased_at: rfc3339(now),
            events: events.len(),
        })
    })
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
    }
}

/// Validates a collection point and returns the entry to append, or the existing version when
/// this exact version is registered already.
pub fn prepare_collection_point(
    store: &Store,
    tenant_id: &str,
    input: NewCollectionPoint,
) -> Result<Result<CollectionPointEntry, CollectionPoint>, ConsentError> {
    if input.name.trim().starts_with(SIGNUP_FORM_PREFIX) {
        return Err(ConsentError::Invalid(format!(
            "names starting with {SIGNUP_FORM_PREFIX:?} are kept for signup forms"
        )));
    }
    collection_point_entry(store, tenant_id, input)
}

/// The collection point of a publishable-key signup form (see [`signup_parts`]).
pub fn prepare_signup_form(
    store: &Store,
    tenant_id: &str,
    form: NewCollectionPoint,
) -> Result<Result<CollectionPointEntry, CollectionPoint>, ConsentError> {
    collection_point_entry(store, tenant_id, form)
}

fn collection_point_entry(
    store: &Store,
    tenant_id: &str,
    input: NewCollectionPoint,
) -> Result<Result<CollectionPointEntry, CollectionPoint>, ConsentError> {
    let name = text("name", &input.name, 200)?;
    let content = match (&input.content, &input.content_base64) {
        (Some(text), None) => text.as_bytes().to_vec(),
        (None, Some(b64)) => {
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
                .map_err(|_| ConsentError::Invalid("content_base64 is not base64".into()))?
        }
        _ => {
            return Err(ConsentError::Invalid(
                "give exactly one of content and content_base64".into(),
            ))
        }
    };
    if content.is_empty() || content.len() > 5 << 20 {
        return Err(ConsentError::Invalid(
            "the content must be 1 byte to 5 MiB".into(),
        ));
    }
    let entry = CollectionPointEntry {
        tenant_id: tenant_id.to_string(),
        name,
        channel: input.channel,
        content_type: text("content_type", &input.content_type, 200)?,
        content_sha256: hex(&Sha256::digest(&content)),
        content,
        sender_name_shown: text("sender_name_shown", &input.sender_name_shown, 200)?,
        prechecked: input.prechecked,
        language: text("language", &input.language, 35)?,
    };
    let id = entry.id();
    store.read(|r| {
        if r.tenant(tenant_id)?.is_none() {
            return Err(ConsentError::NotFound(format!("no tenant {tenant_id:?}")));
        }
        Ok(match r.collection_point(tenant_id, &id)? {
            Some(row) => Err(CollectionPoint {
                id: row.id,
                name: row.name,
                content_sha256: entry.content_sha256.clone(),
                leaf_index: row.leaf_index as u64,
                registered_at: rfc3339(row.registered_at),
            }),
            None => Ok(entry),
        })
    })
}

/// May `email` be mailed for `purpose`? The hot path: one indexed query when the address has a
/// state for the purpose; the tenant and purpose are validated only when it has none.
pub fn decide(
    store: &Store,
    tenant_id: &str,
    email: &str,
    purpose: &str,
) -> Result<Decision, ConsentError> {
    let address = EmailAddress::parse(email)?;
    if !plain_id(tenant_id) {
        return Err(ConsentError::NotFound(format!("no tenant {tenant_id:?}")));
    }
    store.read(|r| {
        let rows = r.decision_rows(tenant_id, address.as_str(), purpose)?;
        if !rows.iter().any(|row| row.purpose == purpose) {
            check_purposes(
                std::slice::from_ref(&purpose.to_string()),
                &known_purposes(r, tenant_id)?,
            )?;
        }
        Ok(match effective(&state_of(&rows), purpose) {
            None => Decision {
                may_send: false,
                status: state::NO_STATUS.into(),
                basis: None,
                since: None,
                event_id: None,
                leaf_index: None,
            },
            Some(s) => Decision {
                may_send: s.may_send(),
                status: s.status.as_str().into(),
                basis: s.basis.map(|b| state::basis_name(b).to_string()),
                since: Some(rfc3339(s.recorded_at)),
                event_id: Some(s.event_id.clone()),
                leaf_index: Some(s.leaf_index),
            },
        })
    })
}

/// An event as history and export show it; `links` only for the tenant's own senders (the
/// confirmation link is for their mailer; other roles must not be able to confirm for people).
fn record(
    row: crate::store::EventRow,
    email: Option<String>,
    links: Option<&Links>,
) -> EventRecord {
    let confirmation_url = links.and_then(|links| {
        links.confirmation_url(&json!({
            "event": row.kind, "confirmation_required": row.confirmation_required,
            "recorded_at": rfc3339(row.recorded_at), "tenant": row.tenant_id, "event_id": row.id,
        }))
    });
    EventRecord {
        confirmation_url,
        event_id: row.id,
        email,
        event: row.kind,
        purposes: serde_json::from_str(&row.purposes).unwrap_or(Value::Null),
        basis: (row.basis != "none").then_some(row.basis),
        method: row.method,
        collection_point: row.collection_point,
        received_by: serde_json::from_str(&row.received_by).unwrap_or(Value::Null),
        occurred_at: rfc3339(row.occurred_at),
        recorded_at: rfc3339(row.recorded_at),
        leaf_index: row.leaf_index as u64,
        prev_leaf_index: row.prev_leaf_index.map(|i| i as u64),
    }
}

/// Every event of one address, oldest first.
pub fn history(
    store: &Store,
    links: Option<&Links>,
    tenant_id: &str,
    email: &str,
) -> Result<Vec<EventRecord>, ConsentError> {
    let address = EmailAddress::parse(email)?;
    store.read(|r| {
        known_purposes(r, tenant_id)?;
        let Some(subject) = r.subject_by_address(tenant_id, address.as_str())? else {
            return Ok(Vec::new());
        };
        Ok(r.subject_events(&subject.id)?
            .into_iter()
            .map(|e| record(e, subject.address.clone(), links))
            .collect())
    })
}

/// A tenant's events after leaf `after`, oldest first, at most `limit`.
pub fn export(
    store: &Store,
    links: Option<&Links>,
    tenant_id: &str,
    after: Option<u64>,
    limit: u32,
) -> Result<Vec<EventRecord>, ConsentError> {
    let after = after.map_or(-1, |a| a.min(i64::MAX as u64) as i64);
    store.read(|r| {
        known_purposes(r, tenant_id)?;
        Ok(r.tenant_events(tenant_id, after, i64::from(limit))?
            .into_iter()
            .map(|(e, a)| record(e, a, links))
            .collect())
    })
}

/// How long a reservation without an answer may block its key: after this its request is
/// known dead (its events would have completed the reservation in their own transaction).
const ABANDONED_AFTER_MS: i64 = 60_000;

/// What to do with a request that carries an `Idempotency-Key`.
pub enum KeyClaim {
    /// First use: go on, and let the last entry carry this mark.
    Proceed(IdempotencyMark),
    /// Seen before: answer this (status, JSON) again.
    Replay(u16, String),
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
}

/// The answer to a request that recorded `appended`, in its shape.
pub fn answer(appended: &[Appended], links: &Links, shape: AnswerShape) -> String {
    let events: Vec<RecordedEvent> = appended.iter().map(|a| recorded(a, links)).collect();
    match shape {
        AnswerShape::Event => serde_json::to_string(&events[0]),
        AnswerShape::Batch => serde_json::to_string(&RecordedBatch { events }),
        AnswerShape::Import => serde_json::to_string(&ImportSummary {
            imported: appended.len() as u64,
            first_leaf_index: appended.first().map_or(0, |a| a.index),
            last_leaf_index: appended.last().map_or(0, |a| a.index),
        }),
        AnswerShape::Signup => serde_json::to_string(&SignupRecorded {
            event_id: events[0].event_id.clone(),
            leaf_index: events[0].leaf_index,
            status: Status::Pending.as_str().into(),
        }),
    }
    .expect("serialises")
}

impl IdempotencyMark {
    /// The number of events the request records.
    pub fn with_count(mut self, count: usize) -> Self {
        self.count = count as u64;
        self
    }
}

/// Claims an idempotency key for a request (`batch`: answered as a batch).
pub fn claim_key(
    store: &Store,
    links: &Links,
    tenant_id: &str,
    key: &str,
    request: &[u8],
    shape: AnswerShape,
) -> Result<KeyClaim, ConsentError> {
    // `key` is the client's key behind its caller's scope prefix (`api:`, `pk:<key>:`).
    if key.is_empty() || key.len() > 320 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConsentError::Malformed(
            "Idempotency-Key must be 1–255 visible ASCII characters".into(),
        ));
    }
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
    store.write(|r: &mut dyn Repo| {
        let mark = IdempotencyMark {
            tenant_id: tenant_id.into(),
            key: key.into(),
            count: 1,
            shape,
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
                };
                r.reserve_idempotency_key(&row)?;
                Ok(KeyClaim::Proceed(mark))
            }
            Some(row) if row.request_sha256 != digest => Err(ConsentError::Conflict(
                "this Idempotency-Key was used with a different request".into(),
            )),
            Some(IdempotencyRow {
                body: Some(body),
                status,
                ..
            }) => Ok(KeyClaim::Replay(
                status as u16,
                rebuild_answer(r, links, &body)?,
            )),
            Some(_) => {
                if r.take_over_idempotency_key(tenant_id, key, now - ABANDONED_AFTER_MS, now)? {
                    Ok(KeyClaim::Proceed(mark))
                } else {
                    Err(ConsentError::Conflict(
                        "a request with this Idempotency-Key is in progress; retry in a moment"
                            .into(),
                    ))
                }
            }
        }
    })
}

/// Frees a claimed key whose request failed (nothing was recorded), so it can be retried.
pub fn release_key(store: &Store, mark: &IdempotencyMark) -> Result<(), ConsentError> {
    store.write(|r: &mut dyn Repo| {
        Ok::<_, ConsentError>(r.release_idempotency_key(&mark.tenant_id, &mark.key)?)
    })
}

/// The answer of a request, rebuilt from its leaves: `{"first", "count", "batch"}`.
fn rebuild_answer(r: &mut dyn Repo, links: &Links, marker: &str) -> Result<String, ConsentError> {
    let marker: Value = serde_json::from_str(marker)
        .map_err(|e| ConsentError::Invalid(format!("stored answer: {e}")))?;
    let (first, count) = (
        marker["first"].as_i64().unwrap_or(0),
        marker["count"].as_i64().unwrap_or(0),
    );
    let appended: Vec<Appended> = r
        .leaf_data(first, first + count)?
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| Appended {
            index: (first + i as i64) as u64,
            leaf: crate::log::Leaf::from_stored(bytes),
        })
        .collect();
    let shape = match marker["shape"].as_str() {
        Some("batch") => AnswerShape::Batch,
        Some("signup") => AnswerShape::Signup,
        Some("import") => AnswerShape::Import,
        _ => AnswerShape::Event,
    };
    Ok(answer(&appended, links, shape))
}

/// Records the answer under the key, in the transaction of the request's last entry.
fn complete_key(
    r: &mut dyn Repo,
    mark: &IdempotencyMark,
    last_index: u64,
) -> Result<(), crate::log::LogError> {
    let marker = json!({"first": last_index + 1 - mark.count, "count": mark.count, "shape": mark.shape.name()});
    r.complete_idempotency_key(&mark.tenant_id, &mark.key, 201, &marker.to_string())?;
    Ok(())
}

/// `SHA-256("consent-ledger/subject/v1" ‖ 0x0A ‖ tenant ‖ 0x0A ‖ address ‖ 0x0A ‖ salt)`: what
pub use consent_ledger_sdk::commitment;

/// How long an idempotency key is kept: a retry within this time replays the first answer
/// (the API promises at least 24 hours).
pub const IDEMPOTENCY_RETENTION_MS: i64 = 48 * 3600 * 1000;

/// Deletes idempotency keys older than [`IDEMPOTENCY_RETENTION_MS`] at `now`; returns how many.
pub fn purge_idempotency_keys(store: &Store, now: i64) -> Result<usize, ConsentError> {
    store.write(|r: &mut dyn Repo| {
        Ok::<_, ConsentError>(r.purge_idempotency_keys(now - IDEMPOTENCY_RETENTION_MS)?)
    })
}

/// Housekeeping in the background while it lives: purges expired idempotency keys hourly.
pub struct Housekeeper {
    _stop: std::sync::mpsc::Sender<()>,
}

impl Housekeeper {
    /// Starts it on `store` (a first pass right away).
    pub fn start(store: Store) -> std::io::Result<Self> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("housekeeping".into())
            .spawn(move || loop {
                match purge_idempotency_keys(&store, now_millis()) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "expired idempotency keys deleted"),
                    Err(e) => tracing::warn!(error = %e, "housekeeping: will retry"),
                }
                if let Err(std::sync::mpsc::RecvTimeoutError::Disconnected) =
                    stopped.recv_timeout(std::time::Duration::from_secs(3600))
                {
                    return;
                }
            })?;
        Ok(Self { _stop: stop })
    }
}

pub(crate) fn new_subject(tenant_id: &str, address: &EmailAddress) -> SubjectRow {
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt).expect("the OS has randomness");
    SubjectRow {
        id: new_id(),
        tenant_id: tenant_id.to_string(),
        address: Some(address.as_str().to_string()),
        commitment: commitment(tenant_id, address.as_str(), &salt).to_vec(),
        salt: Some(salt.to_vec()),
        last_leaf_index: None,
        created_at: now_millis(),
        erased_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_strict_and_normalised() {
        assert_eq!(
            browser_origin("https://Shop.Example.jp:443").unwrap(),
            "https://shop.example.jp"
        );
        assert_eq!(
            browser_origin("http://localhost:3000").unwrap(),
            "http://localhost:3000"
        );
        for bad in [
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "http://shop.example.jp",
            "https://shop.example.jp/path",
            "https://user@shop.example.jp",
            "https://:",
            "shop.example.jp",
            "https://shop.example.jp?x=1",
            "ftp://shop.example.jp",
        ] {
            assert!(browser_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_uuid_v7_and_sort_by_time() {
        let a = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id();
        assert!(a < b, "{a} then {b}");
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
        assert!("89ab".contains(&a[19..20]));
        let millis = i64::from_str_radix(&a[..8], 16).unwrap() << 16
            | i64::from_str_radix(&a[9..13], 16).unwrap();
        assert!((now_millis() - millis).abs() < 60_000);
    }
}
