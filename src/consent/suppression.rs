//! The suppression list a mail system loads: the refusals in force for a purpose (each with when,
//! its scope — the purpose or all — how the person refused and who received it), and the changes
//! since a cursor (each subject and purpose an event touched, with its suppression as of now:
//! set, not add, so applying a page twice changes nothing). Read from the state rows, decided by
//! the SDK's rules (`consent::state`); entries as CSV for spreadsheets and mail systems. Not
//! here: JSON lines and pagination (`api`).

use std::collections::HashMap;

use super::model::*;
use super::state::{effective, state_of, ALL};
use super::validate::check_purposes;
use super::{known_purposes, plain_id};
use crate::error::DomainError;
use crate::rfc3339;
use crate::store::{EventRow, Repo, StateEntryRow, Store};
use consent_ledger_sdk::consent::{PurposeState, Status, SubjectState};

/// Rows per `IN (…)` query.
const CHUNK: usize = 500;

/// The refusal in force for `purpose` in `state`, if any, and whether it is one for all purposes.
fn refusal<'a>(state: &'a SubjectState, purpose: &str) -> Option<(&'a PurposeState, bool)> {
    let decided = effective(state, purpose).filter(|e| e.status == Status::Withdrawn)?;
    let for_all = state
        .get(ALL)
        .is_some_and(|all| all.leaf_index == decided.leaf_index);
    Some((decided, for_all))
}

/// The state rows of `ids` for `purposes`, by subject.
fn states(
    r: &mut Repo<'_>,
    ids: &[String],
    purposes: &[String],
) -> Result<HashMap<String, SubjectState>, DomainError> {
    let mut rows: HashMap<String, Vec<StateEntryRow>> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        for row in r.state_entries_of(chunk, purposes)? {
            rows.entry(row.subject_id.clone()).or_default().push(row);
        }
    }
    Ok(rows
        .into_iter()
        .map(|(id, rows)| (id, state_of(&rows)))
        .collect())
}

/// The deciding events, by id (for how and by whom each refusal came).
fn events(r: &mut Repo<'_>, ids: &[String]) -> Result<HashMap<String, EventRow>, DomainError> {
    let mut events = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        for event in r.events_by_ids(chunk)? {
            events.insert(event.id.clone(), event);
        }
    }
    Ok(events)
}

/// One entry: the address (or, erased, its label), the purpose and the refusal, if in force.
fn entry(
    address: Option<String>,
    label: &[u8],
    purpose: &str,
    refused: Option<(&PurposeState, bool)>,
    events: &HashMap<String, EventRow>,
) -> SuppressionEntry {
    let event = refused.and_then(|(state, _)| events.get(&state.event_id));
    SuppressionEntry {
        label: address.is_none().then(|| crate::hex(label)),
        email: address,
        purpose: purpose.to_string(),
        suppressed: refused.is_some(),
        scope: refused.map(|(_, all)| if all { "all" } else { "purpose" }.to_string()),
        refused_at: refused.map(|(state, _)| rfc3339(state.recorded_at)),
        reason: event.map(|e| e.method.clone()),
        source: event.and_then(|e| serde_json::from_str(&e.received_by).ok()),
        event_id: refused.map(|(state, _)| state.event_id.clone()),
        leaf_index: refused.map(|(state, _)| state.leaf_index),
    }
}

/// The suppression list for a purpose: addresses whose refusal is in force, and the labels of
/// erased ones whose refusal still binds, by subject cursor; each entry with its refusal.
pub fn suppression(
    store: &Store,
    tenant_id: &str,
    purpose: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<SuppressionPage, DomainError> {
    let after = after.unwrap_or("");
    if !after.is_empty() && !plain_id(after) {
        return Err(DomainError::Invalid(
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
        let ids: Vec<String> = candidates.iter().map(|(id, _, _)| id.clone()).collect();
        let states = states(r, &ids, &purposes)?;
        let next_after = crate::next_cursor(&ids, i64::from(limit), Clone::clone);
        let refusals: Vec<_> = candidates
            .into_iter()
            .filter_map(|(id, address, key)| {
                let state = states.get(&id)?;
                let (decided, all) = refusal(state, purpose)?;
                Some((address, key, decided.clone(), all))
            })
            .collect();
        let deciding: Vec<String> = refusals.iter().map(|r| r.2.event_id.clone()).collect();
        let events = events(r, &deciding)?;
        let (mut addresses, mut erased, mut entries) = (Vec::new(), Vec::new(), Vec::new());
        for (address, key, decided, all) in refusals {
            match &address {
                Some(address) => addresses.push(address.clone()),
                None => erased.push(crate::hex(&key)),
            }
            entries.push(entry(
                address,
                &key,
                purpose,
                Some((&decided, all)),
                &events,
            ));
        }
        Ok(SuppressionPage {
            purpose: purpose.to_string(),
            addresses,
            erased,
            entries,
            next_after,
        })
    })
}

/// The changes since the event at leaf `since` (from the first, without one): for each subject
/// and purpose the next `limit` events touched, its suppression as of now — optionally for one
/// purpose only. `resume_since` is where the next call starts.
pub fn suppression_changes(
    store: &Store,
    tenant_id: &str,
    purpose: Option<&str>,
    since: Option<u64>,
    limit: u32,
) -> Result<SuppressionChanges, DomainError> {
    store.read(|r| {
        let known = known_purposes(r, tenant_id)?;
        if let Some(purpose) = purpose {
            check_purposes(std::slice::from_ref(&purpose.to_string()), &known)?;
        }
        let wanted: Vec<String> = match purpose {
            Some(p) => vec![p.to_string()],
            None => known.clone(),
        };
        let page = r.tenant_events(tenant_id, since, i64::from(limit))?;
        let resume_since = page.last().map(|(e, _)| e.leaf_index.get()).or(since);
        let next_after = (page.len() == limit as usize)
            .then_some(resume_since)
            .flatten();
        // The latest event of each subject and purpose in the page, in leaf order.
        let mut touched: Vec<(String, String)> = Vec::new();
        let mut position: HashMap<(String, String), usize> = HashMap::new();
        let mut addresses: HashMap<String, Option<String>> = HashMap::new();
        for (event, address) in &page {
            let purposes: Vec<String> = match serde_json::from_str::<Purposes>(&event.purposes) {
                Ok(Purposes::List(list)) => list,
                _ => known.clone(),
            };
            for p in purposes.into_iter().filter(|p| wanted.contains(p)) {
                let key = (event.subject_id.clone(), p);
                position.insert(key.clone(), touched.len());
                touched.push(key);
            }
            addresses.insert(event.subject_id.clone(), address.clone());
        }
        // Each key once, where its latest event put it.
        let touched: Vec<(String, String)> = touched
            .into_iter()
            .enumerate()
            .filter(|(i, key)| position.get(key) == Some(i))
            .map(|(_, key)| key)
            .collect();
        let ids: Vec<String> = addresses.keys().cloned().collect();
        let mut all_purposes = wanted.clone();
        all_purposes.push(ALL.to_string());
        let states = states(r, &ids, &all_purposes)?;
        let mut labels: HashMap<String, Vec<u8>> = HashMap::new();
        for id in ids
            .iter()
            .filter(|id| addresses.get(*id).is_some_and(Option::is_none))
        {
            let subject = r
                .subject(id)?
                .ok_or_else(|| DomainError::NotFound(format!("subject {id:?} is gone")))?;
            labels.insert(id.clone(), subject.commitment);
        }
        let refusals: Vec<Option<(PurposeState, bool)>> = touched
            .iter()
            .map(|(id, p)| {
                let state = states.get(id)?;
                refusal(state, p).map(|(d, all)| (d.clone(), all))
            })
            .collect();
        let deciding: Vec<String> = refusals
            .iter()
            .flatten()
            .map(|(d, _)| d.event_id.clone())
            .collect();
        let events = events(r, &deciding)?;
        let changes = touched
            .iter()
            .zip(&refusals)
            .map(|((id, p), refused)| {
                let address = addresses.get(id).cloned().flatten();
                let label = labels.get(id).map(Vec::as_slice).unwrap_or_default();
                entry(
                    address,
                    label,
                    p,
                    refused.as_ref().map(|(d, a)| (d, *a)),
                    &events,
                )
            })
            .collect();
        Ok(SuppressionChanges {
            changes,
            next_after,
            resume_since,
        })
    })
}

/// Entries as CSV: a header row, then one row per entry, every cell quoted; no cell starts a
/// formula (as in the export).
pub fn suppression_csv(entries: &[SuppressionEntry]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(Vec::new());
    let header = [
        "email",
        "label",
        "purpose",
        "suppressed",
        "scope",
        "refused_at",
        "reason",
        "source_role",
        "source_name",
        "event_id",
        "leaf_index",
    ];
    writer.write_record(header).expect("writes to memory");
    for e in entries {
        let source = e.source.as_ref();
        let role = source.map(|s| {
            serde_json::to_value(s.role)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        });
        let row = [
            e.email.clone().unwrap_or_default(),
            e.label.clone().unwrap_or_default(),
            e.purpose.clone(),
            e.suppressed.to_string(),
            e.scope.clone().unwrap_or_default(),
            e.refused_at.clone().unwrap_or_default(),
            e.reason.clone().unwrap_or_default(),
            role.unwrap_or_default(),
            source.map(|s| s.name.clone()).unwrap_or_default(),
            e.event_id.clone().unwrap_or_default(),
            e.leaf_index.map(|i| i.to_string()).unwrap_or_default(),
        ];
        writer
            .write_record(row.map(super::import::inert))
            .expect("writes to memory");
    }
    String::from_utf8(writer.into_inner().expect("flushes to memory")).expect("UTF-8 in, UTF-8 out")
}
