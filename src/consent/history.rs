//! History and export: an address's events, and a tenant's events page by page, as the API
//! shows them (with the confirmation link for the tenant's own senders). Not here: evidence
//! bundles with proofs (`evidence`).

use super::known_purposes;
use crate::error::DomainError;
use serde_json::{json, Value};

use super::address::EmailAddress;
use super::links::Links;
use super::model::*;

use crate::rfc3339;
use crate::store::{LeafIndex, Store};

/// An event as history and export show it; `links` only for the tenant's own senders (the
/// confirmation link is for their mailer; other roles must not be able to confirm for people).
pub(super) fn record(
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
        leaf_index: row.leaf_index.get(),
        prev_leaf_index: row.prev_leaf_index.map(LeafIndex::get),
    }
}

/// Every event of one address, oldest first.
pub fn history(
    store: &Store,
    links: Option<&Links>,
    tenant_id: &str,
    email: &str,
) -> Result<Vec<EventRecord>, DomainError> {
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
) -> Result<Vec<EventRecord>, DomainError> {
    store.read(|r| {
        known_purposes(r, tenant_id)?;
        Ok(r.tenant_events(tenant_id, after, i64::from(limit))?
            .into_iter()
            .map(|(e, a)| record(e, a, links))
            .collect())
    })
}
