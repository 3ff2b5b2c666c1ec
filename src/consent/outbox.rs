//! The webhook outbox: each consent event is announced to the tenant's webhooks subscribed to
//! its type by delivery rows written in the event's own transaction, so an acknowledged event is
//! never left unannounced; an erasure drops the announcements of its subject (they hold the
//! address).
//! Not here: sending them, retries and the delivery log (`unsubscribe::webhooks`).

use serde_json::{json, Value};

use super::new_id;
use crate::now_millis;
use crate::store::{DeliveryRow, Repo, Staged, StoreError, SubjectRow};
use crate::unsubscribe::webhooks::{subscribed, WebhookEvent};
use consent_ledger_sdk::consent::{ConsentLeaf, EventKind};

/// The outcome recorded for a delivery whose subject was erased before it was sent.
pub const ERASED: &str = "the subject's data was erased";

/// The webhook event type of a consent leaf.
fn event_type(leaf: &ConsentLeaf) -> WebhookEvent {
    match leaf.event {
        EventKind::OptOut => WebhookEvent::OptOut,
        EventKind::OptIn if leaf.confirmation_required => WebhookEvent::PendingOptIn,
        EventKind::OptIn => WebhookEvent::OptIn,
        EventKind::Confirm => WebhookEvent::Confirmation,
    }
}

/// Queues the announcement of the consent event `leaf` (at `index`, hashing to `leaf_hash`, of
/// `subject`) for each of
/// the tenant's active webhooks subscribed to its type, inside the log's transaction. Imported
/// history is the sender's own: of it, only opt-outs are announced (as they always were).
pub(crate) fn announce(
    r: &mut Repo<'_>,
    staged: &mut Staged,
    subject: &SubjectRow,
    leaf: &ConsentLeaf,
    index: u64,
    leaf_hash: &[u8; 32],
) -> Result<(), StoreError> {
    let kind = event_type(leaf);
    if leaf.imported && kind != WebhookEvent::OptOut {
        return Ok(());
    }
    let hooks: Vec<String> = staged
        .tenant_webhooks(r, &leaf.tenant)?
        .iter()
        .filter(|hook| subscribed(hook).contains(&kind))
        .map(|hook| hook.id.clone())
        .collect();
    if hooks.is_empty() {
        return Ok(());
    }
    let announcement = json!({
        "type": kind.as_str(),
        "tenant": leaf.tenant,
        "event_id": leaf.event_id,
        // Not for a subject erased meanwhile: its address is gone.
        "email": subject.address.as_deref(),
        "purposes": leaf.purposes,
        "basis": leaf.basis,
        "method": leaf.method,
        "collection_point": leaf.collection_point,
        "confirms": leaf.confirms,
        "occurred_at": leaf.occurred_at,
        "recorded_at": leaf.recorded_at,
        "leaf_index": index,
        // What a receiver checks the announcement against: the log's leaf (an inclusion proof
        // by hash, or the address's evidence bundle).
        "leaf_hash": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, leaf_hash),
    });
    enqueue(staged, hooks, &subject.id, &leaf.event_id, &announcement);
    Ok(())
}

fn enqueue(
    staged: &mut Staged,
    hooks: Vec<String>,
    subject_id: &str,
    event_id: &str,
    body: &Value,
) {
    let now = now_millis();
    for webhook_id in hooks {
        staged.insert_delivery(DeliveryRow {
            id: new_id(),
            webhook_id,
            subject_id: subject_id.to_string(),
            event_id: event_id.to_string(),
            body: Some(body.to_string()),
            attempts: 0,
            next_attempt_at: Some(now),
            delivered_at: None,
            last_status: None,
            last_error: None,
            created_at: now,
        });
    }
}
