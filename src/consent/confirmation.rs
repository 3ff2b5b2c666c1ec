//! Double opt-in confirmation by link: what a link stands for, the page it shows (a GET never
//! changes anything), and the `confirm` event its button records — only for what that opt-in
//! left pending. Not here: the link's signature (`links`), the HTML (`api::pages`).

use super::links::{LinkError, Links};
use super::model::*;
use super::state::{pending, state_of};
use super::{clean_evidence, prepare_event, ConsentEventEntry};
use crate::error::DomainError;

use crate::now_millis;
use crate::store::{Repo, Store, TenantRow};

/// What a confirmation link stands for: the event it confirms and its subject, if both are still
/// there (an erased subject's link stops working).
pub(super) fn confirmation_event(
    r: &mut Repo<'_>,
    links: &Links,
    token: &str,
) -> Result<(TenantRow, crate::store::EventRow, String), DomainError> {
    let invalid = |e: LinkError| DomainError::Invalid(e.to_string());
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
) -> Result<ConfirmationTarget, DomainError> {
    store.read(|r| {
        let (tenant, event, _) = confirmation_event(r, links, token)?;
        let wanted: Vec<String> = serde_json::from_str(&event.purposes).unwrap_or_default();
        let purposes = r
            .purposes(&tenant.id)?
            .into_iter()
            .filter(|p| wanted.contains(&p.purpose))
            .map(super::tenants::definition)
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
) -> Result<ConsentEventEntry, DomainError> {
    let evidence = clean_evidence(evidence);
    let (tenant, event, address, purposes) = store.read(|r| {
        let (tenant, event, address) = confirmation_event(r, links, token)?;
        // Only what this opt-in left pending; a later signup needs its own link.
        let state = state_of(&r.all_state_entries(&event.subject_id)?);
        let purposes: Vec<String> = pending(&state, None)
            .into_iter()
            .filter(|p| state[p].event_id == event.id)
            .collect();
        Ok::<_, DomainError>((tenant, event, address, purposes))
    })?;
    if purposes.is_empty() {
        return Err(DomainError::Conflict(
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
