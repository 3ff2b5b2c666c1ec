//! The opt-out outbox: each opt-out is announced to the tenant's webhooks by delivery rows
//! written in the opt-out's own transaction, so an acknowledged opt-out is never left
//! unannounced; an erasure drops the announcements of its subject (they hold the address).
//! Not here: sending them, retries and the delivery log (`unsubscribe::webhooks`).

use serde_json::{json, Value};

use super::new_id;
use crate::now_millis;
use crate::store::{DeliveryRow, Repo, StoreError, SubjectRow};
use consent_ledger_sdk::consent::ConsentLeaf;

/// The outcome recorded for a delivery whose subject was erased before it was sent.
pub const ERASED: &str = "the subject's data was erased";

/// Queues the announcement of the opt-out `leaf` (at `index`, of `subject`) for each of the
/// tenant's active webhooks, inside the log's transaction.
pub(crate) fn announce(
    r: &mut Repo<'_>,
    subject: &SubjectRow,
    leaf: &ConsentLeaf,
    index: u64,
) -> Result<(), StoreError> {
    let announcement = json!({
        "type": "opt_out",
        "tenant": leaf.tenant,
        "event_id": leaf.event_id,
        // Not for a subject erased meanwhile: its address is gone.
        "email": subject.address.as_deref(),
        "purposes": leaf.purposes,
        "method": leaf.method,
        "occurred_at": leaf.occurred_at,
        "recorded_at": leaf.recorded_at,
        "leaf_index": index,
    });
    enqueue(r, &leaf.tenant, &subject.id, &leaf.event_id, &announcement)
}

fn enqueue(
    r: &mut Repo<'_>,
    tenant_id: &str,
    subject_id: &str,
    event_id: &str,
    body: &Value,
) -> Result<(), StoreError> {
    let now = now_millis();
    for hook in r.tenant_webhooks(tenant_id)? {
        r.insert_delivery(&DeliveryRow {
            id: new_id(),
            webhook_id: hook.id,
            subject_id: subject_id.to_string(),
            event_id: event_id.to_string(),
            body: Some(body.to_string()),
            attempts: 0,
            next_attempt_at: Some(now),
            delivered_at: None,
            last_status: None,
            last_error: None,
            created_at: now,
        })?;
    }
    Ok(())
}
