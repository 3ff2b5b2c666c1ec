//! Erasure and retention: an address's personal data (address, salt, evidence) is erased once the
//! law allows — no consent in force and the retention period after its last event run (one
//! month, or a year under a legal hold). The log is untouched; its leaves become unlinkable.

use super::address::EmailAddress;
use super::model::*;
use super::state::{effective, state_of, ALL};
use crate::error::DomainError;
use crate::store::{Repo, Store};
use crate::{now_millis, rfc3339};

/// How long records are kept after a subject's last event: one month (31 days), or one year
/// (366 days) under a legal hold (ordinance Art. 4(2)).
pub(super) const RETENTION_MS: i64 = 31 * 86_400_000;

pub(super) const RETENTION_LEGAL_HOLD_MS: i64 = 366 * 86_400_000;

/// Erases an address's personal data (address, salt, evidence) once the law allows: no purpose
/// may still be granted, and the retention period after its last event must have run. The log is
/// untouched; its leaves become unlinkable.
pub fn erase(store: &Store, tenant_id: &str, email: &str) -> Result<Erasure, DomainError> {
    let address = EmailAddress::parse(email)?;
    // Under the writer lock: no event of this address can be sequenced while we decide.
    store.write(|r: &mut dyn Repo| {
        let tenant = r
            .tenant(tenant_id)?
            .ok_or_else(|| DomainError::NotFound(format!("no tenant {tenant_id:?}")))?;
        let subject = r
            .subject_by_address(tenant_id, address.as_str())?
            .ok_or_else(|| DomainError::NotFound("no records for this address".into()))?;
        let state = state_of(&r.all_state_entries(&subject.id)?);
        let granted: Vec<&str> = state
            .keys()
            .filter(|p| p.as_str() != ALL && effective(&state, p).is_some_and(|e| e.may_send()))
            .map(String::as_str)
            .collect();
        if !granted.is_empty() {
            return Err(DomainError::Conflict(format!(
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
            return Err(DomainError::RetentionRunning(rfc3339(last + retention)));
        }
        r.erase_subject(&subject.id, now)?;
        r.erase_deliveries_of(&subject.id, super::outbox::ERASED)?;
        Ok(Erasure {
            erased_at: rfc3339(now),
            events: events.len(),
        })
    })
}
