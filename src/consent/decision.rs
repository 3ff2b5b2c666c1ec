//! The send decision: "may I mail this address for this purpose?" one at a time (the hot path)
//! and for a whole campaign at once. Each reads the state rows and decides by the SDK's rules
//! (`consent::state`). The suppression list is `suppression.rs`. Not here: how the rows are
//! written (`entries`).

use super::address::EmailAddress;
use super::model::*;
use super::state::{effective, state_of, ALL};
use super::validate::check_purposes;
use super::{known_purposes, plain_id, state};
use crate::error::DomainError;

use std::collections::HashMap;

use crate::log::hash::Hash;
use crate::log::Labeler;
use crate::rfc3339;
use crate::store::{Repo, StateEntryRow, Store, SubjectRow};
use consent_ledger_sdk::consent::PurposeState;

/// Most addresses in one pre-flight check.
pub const MAX_CHECK: usize = 10_000;

/// Rows per `IN (…)` query.
pub(super) const CHUNK: usize = 500;

/// May `email` be mailed for `purpose`? The hot path: one indexed query when the address has a
/// state for the purpose; the tenant and purpose are validated only when it has none.
pub fn decide(
    store: &Store,
    labeler: &Labeler,
    tenant_id: &str,
    email: &str,
    purpose: &str,
) -> Result<Decision, DomainError> {
    let address = EmailAddress::parse(email)?;
    if !plain_id(tenant_id) {
        return Err(DomainError::NotFound(format!("no tenant {tenant_id:?}")));
    }
    store.read(|r| {
        let mut rows = r.decision_rows(tenant_id, address.as_str(), purpose)?;
        if rows.is_empty() && r.has_erased(tenant_id)? {
            // Perhaps an erased address: its label keeps its refusals.
            let mut found = Found::new();
            let labels = [(
                address.as_str().to_string(),
                labeler.label(tenant_id, address.as_str()),
            )];
            by_labels(r, tenant_id, &labels.into(), &mut found, purpose)?;
            if let Some((subject, _)) = found.remove(address.as_str()) {
                let purposes = [purpose.to_string(), ALL.to_string()];
                rows = r.state_entries_of(std::slice::from_ref(&subject.id), &purposes)?;
            }
        }
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
                basis: s.basis.map(|b| b.as_str().to_string()),
                since: Some(rfc3339(s.recorded_at)),
                event_id: Some(s.event_id.clone()),
                leaf_index: Some(s.leaf_index),
            },
        })
    })
}

/// A campaign's pre-flight: the decision for each address, in order. One query per 500
/// addresses reads each subject's address with its state rows for the purpose.
pub fn check_many(
    store: &Store,
    labeler: &Labeler,
    tenant_id: &str,
    request: CheckRequest,
) -> Result<Vec<CheckResult>, DomainError> {
    let parsed = parse_check(&request)?;
    let purpose = request.purpose.as_str();
    store.read(|r| {
        check_purposes(
            std::slice::from_ref(&request.purpose),
            &known_purposes(r, tenant_id)?,
        )?;
        let addresses = valid(&parsed);
        let mut rows: HashMap<String, Vec<StateEntryRow>> = HashMap::with_capacity(addresses.len());
        for chunk in addresses.chunks(CHUNK) {
            for (address, row) in r.check_rows(tenant_id, chunk, purpose)? {
                rows.entry(address).or_default().extend(row);
            }
        }
        // An address with a subject maps to its state (`None`: no event for the purpose).
        let mut states: HashMap<String, Option<PurposeState>> = rows
            .into_iter()
            .map(|(address, rows)| (address, effective(&state_of(&rows), purpose).cloned()))
            .collect();
        let all_found = addresses.iter().all(|a| states.contains_key(a.as_str()));
        if !all_found && r.has_erased(tenant_id)? {
            // Addresses not found may be erased ones: found by their labels.
            let labels = addresses
                .iter()
                .filter(|a| !states.contains_key(a.as_str()))
                .map(|a| (a.clone(), labeler.label(tenant_id, a)))
                .collect();
            let mut found = Found::new();
            by_labels(r, tenant_id, &labels, &mut found, purpose)?;
            states.extend(found.into_iter().map(|(a, (_, state))| (a, state)));
        }
        Ok(answers(&request.emails, &parsed, |a| {
            states.get(a).and_then(Option::as_ref)
        }))
    })
}

/// Adds to `found` the subjects of addresses not found by address but by their label (from
/// `labels`): erased addresses, whose label keeps its state (a refusal binds after erasure).
pub(super) fn by_labels(
    r: &mut Repo<'_>,
    tenant_id: &str,
    labels: &HashMap<String, Hash>,
    found: &mut Found,
    purpose: &str,
) -> diesel::QueryResult<()> {
    let by_label: HashMap<Vec<u8>, &String> = labels
        .iter()
        .filter(|(address, _)| !found.contains_key(*address))
        .map(|(address, label)| (label.to_vec(), address))
        .collect();
    let keys: Vec<Vec<u8>> = by_label.keys().cloned().collect();
    let mut subjects = HashMap::new();
    for chunk in keys.chunks(CHUNK) {
        for s in r.subjects_by_labels(tenant_id, chunk)? {
            subjects.insert(s.id.clone(), s);
        }
    }
    for (subject, state) in with_states(r, subjects, purpose)? {
        if let Some(address) = by_label.get(&subject.commitment) {
            found.insert((*address).clone(), (subject, state));
        }
    }
    Ok(())
}

/// The addresses of a check parsed, in order (an invalid one with its reason); refuses an empty
/// or oversized check.
pub(super) fn parse_check(
    request: &CheckRequest,
) -> Result<Vec<Result<EmailAddress, String>>, DomainError> {
    if request.emails.is_empty() || request.emails.len() > MAX_CHECK {
        return Err(DomainError::Invalid(format!(
            "a check holds 1–{MAX_CHECK} addresses"
        )));
    }
    Ok(request
        .emails
        .iter()
        .map(|e| EmailAddress::parse(e).map_err(|e| e.to_string()))
        .collect())
}

/// The valid addresses of a parsed check, normalised.
pub(super) fn valid(parsed: &[Result<EmailAddress, String>]) -> Vec<String> {
    parsed
        .iter()
        .flatten()
        .map(|a| a.as_str().to_string())
        .collect()
}

/// What the rows say of each address that has a subject: the subject, and its effective state
/// for `purpose` (`None`: no event for it).
pub(super) type Found = HashMap<String, (SubjectRow, Option<PurposeState>)>;

/// The subjects of `addresses` (normalised) and their effective states for `purpose`, in
/// chunked queries.
pub(super) fn states_for(
    r: &mut Repo<'_>,
    tenant_id: &str,
    addresses: &[String],
    purpose: &str,
) -> diesel::QueryResult<Found> {
    let mut subjects = HashMap::new();
    for chunk in addresses.chunks(CHUNK) {
        for s in r.subjects_by_addresses(tenant_id, chunk)? {
            subjects.insert(s.id.clone(), s);
        }
    }
    Ok(with_states(r, subjects, purpose)?
        .into_iter()
        .map(|(s, state)| (s.address.clone().unwrap_or_default(), (s, state)))
        .collect())
}

/// Subjects (by id) with their effective states for `purpose`, in chunked queries.
pub(super) fn with_states(
    r: &mut Repo<'_>,
    subjects: HashMap<String, SubjectRow>,
    purpose: &str,
) -> diesel::QueryResult<Vec<(SubjectRow, Option<PurposeState>)>> {
    let purposes = [purpose.to_string(), ALL.to_string()];
    let ids: Vec<String> = subjects.keys().cloned().collect();
    let mut rows: HashMap<String, Vec<StateEntryRow>> = Default::default();
    for chunk in ids.chunks(CHUNK) {
        for row in r.state_entries_of(chunk, &purposes)? {
            rows.entry(row.subject_id.clone()).or_default().push(row);
        }
    }
    Ok(subjects
        .into_values()
        .map(|s| {
            let state = rows
                .get(&s.id)
                .map(|rows| state_of(rows))
                .and_then(|state| effective(&state, purpose).cloned());
            (s, state)
        })
        .collect())
}

/// The answer for each address of a check, in order, from `state_of(address)`: the effective
/// state of a (normalised) address, `None` when it has none.
pub(super) fn answers<'a>(
    emails: &[String],
    parsed: &[Result<EmailAddress, String>],
    state_of: impl Fn(&str) -> Option<&'a PurposeState>,
) -> Vec<CheckResult> {
    emails
        .iter()
        .zip(parsed)
        .map(|(email, parsed)| {
            let (may_send, status, error) = match parsed {
                Err(e) => (false, "invalid".to_string(), Some(e.clone())),
                Ok(address) => match state_of(address.as_str()) {
                    Some(s) => (s.may_send(), s.status.as_str().to_string(), None),
                    None => (false, state::NO_STATUS.to_string(), None),
                },
            };
            CheckResult {
                email: email.clone(),
                may_send,
                status,
                error,
            }
        })
        .collect()
}
