//! Erasure and retention: an address's personal data (address, salt, evidence) is erased once the
//! law allows — no consent in force and the retention period after its last event run (one
//! month, or a year under a legal hold), by the SDK's rule (`erasure_refused`). The erasure is
//! itself a leaf of the subject's chain (`erasure`, `docs/log-format.md`): a bundle of an address
//! that comes back shows it, and the label's state outlives it, so a refusal still binds.
//! Not here: the legal hold itself (`holds`), the bundle (`crate::evidence`).

use super::address::EmailAddress;
use super::model::*;
use super::state::state_of;
use crate::error::DomainError;
use crate::log::{Chain, Leaf, Log, LogEntry, LogError, Reply};
use crate::rfc3339;
use crate::store::{ErasureRow, LeafIndex, Repo, SubjectRow};
use consent_ledger_sdk::consent::{
    erasure_refused, millis, ConsentLeaf, ErasureLeaf, ErasureRefused, ErasureType, LegalHoldLeaf,
    RETENTION_DAYS, RETENTION_LEGAL_HOLD_DAYS,
};

/// Erases an address's personal data once the law allows: no purpose may still be granted,
/// and the retention period after its last event must have run. Appends the `erasure` leaf; its
/// leaves stay in the log, unlinkable without the address.
pub async fn erase(log: &Log, tenant_id: &str, email: &str) -> Result<Erasure, DomainError> {
    let entry = ErasureEntry {
        tenant_id: tenant_id.to_string(),
        address: EmailAddress::parse(email)?,
        outcome: Reply::default(),
    };
    let outcome = entry.outcome.clone();
    log.append_for(entry, &outcome)
        .await?
        .unwrap_or_else(|| Err(DomainError::Log(LogError::NotCommitted("no answer".into()))))
}

/// An erasure to append: decided under the writer lock when its leaf is built (no event of the
/// address can be sequenced meanwhile); a refused one declines and leaves its reason.
struct ErasureEntry {
    tenant_id: String,
    address: EmailAddress,
    outcome: Reply<Result<Erasure, DomainError>>,
}

impl ErasureEntry {
    /// The leaf, with the rows written, or why the law does not allow it yet.
    fn decide(
        &self,
        r: &mut Repo<'_>,
        chain: &Chain<'_>,
        index: u64,
    ) -> Result<Result<(Option<Leaf>, Erasure), DomainError>, LogError> {
        let Some(tenant) = r.tenant(&self.tenant_id)? else {
            return Ok(Err(DomainError::NotFound(format!(
                "no tenant {:?}",
                self.tenant_id
            ))));
        };
        let Some(subject) = r.subject_by_address(&self.tenant_id, self.address.as_str())? else {
            return Ok(Err(DomainError::NotFound(
                "no records for this address".into(),
            )));
        };
        let key: crate::log::hash::Hash = subject
            .commitment
            .as_slice()
            .try_into()
            .map_err(|_| LogError::Corrupt("a stored subject key is not 32 bytes".into()))?;
        let state = state_of(&r.all_state_entries(&subject.id)?);
        let events = r.subject_events(&subject.id)?;
        let Some(prev) = chain.prev(&key) else {
            if !events.is_empty() {
                return Err(LogError::Corrupt(format!(
                    "subject {} has events but no chain in the log",
                    crate::hex(&key)
                )));
            }
            return erase_without_leaf(r, chain, &subject);
        };
        // A hold in force by the log (the head of the tenant's hold chain) or by its row (one
        // set before holds were leaves): either keeps the records a year.
        let held_by_log = super::holds::hold_in_force(r, chain, &self.tenant_id)?;
        let retention_days = match tenant.legal_hold || held_by_log.is_some() {
            true => RETENTION_LEGAL_HOLD_DAYS,
            false => RETENTION_DAYS,
        };
        // The year of a measures order runs from its date (ordinance Art. 4(2)).
        let order = held_by_log.as_ref().and_then(LegalHoldLeaf::order_millis);
        let now = chain.now();
        let last = last_counted(r, chain, prev)?;
        match erasure_refused(&state, last, retention_days, order, now) {
            Some(ErasureRefused::ConsentInForce(granted)) => {
                return Ok(Err(DomainError::Conflict(format!(
                    "consent is still in force for {}: record an opt-out first",
                    granted.join(", ")
                ))))
            }
            Some(ErasureRefused::RetentionRunning(until)) => {
                return Ok(Err(DomainError::RetentionRunning(rfc3339(until))))
            }
            None => {}
        }
        let leaf = ErasureLeaf {
            leaf_type: ErasureType::Erasure,
            v: 1,
            tenant: self.tenant_id.clone(),
            subject: crate::hex(&key),
            prev,
            recorded_at: rfc3339(now),
            retention_days,
            evidence_erased: events
                .iter()
                .filter(|e| e.evidence.is_some())
                .map(|e| e.leaf_index.get())
                .collect(),
        };
        let built = Leaf::of(&leaf)?;
        r.erase_subject(&subject.id, now)?;
        r.erase_deliveries_of(&subject.id, super::outbox::ERASED)?;
        r.set_last_leaf(&subject.id, index)?;
        r.insert_erasure(&ErasureRow {
            leaf_index: LeafIndex(index),
            tenant_id: self.tenant_id.clone(),
            subject_id: subject.id,
            recorded_at: now,
        })?;
        Ok(Ok((
            Some(built),
            Erasure {
                erased_at: rfc3339(now),
                events: events.len(),
                leaf_index: Some(index),
            },
        )))
    }
}

/// An address the service only made links for: no event, so no history to add to. Its row is
/// erased once the month since it was stored has run; no leaf.
fn erase_without_leaf(
    r: &mut Repo<'_>,
    chain: &Chain<'_>,
    subject: &SubjectRow,
) -> Result<Result<(Option<Leaf>, Erasure), DomainError>, LogError> {
    let now = chain.now();
    let until = subject.created_at + RETENTION_DAYS as i64 * 86_400_000;
    if now < until {
        return Ok(Err(DomainError::RetentionRunning(rfc3339(until))));
    }
    r.erase_subject(&subject.id, now)?;
    r.erase_deliveries_of(&subject.id, super::outbox::ERASED)?;
    Ok(Ok((
        None,
        Erasure {
            erased_at: rfc3339(now),
            events: 0,
            leaf_index: None,
        },
    )))
}

/// The time the subject's retention runs from: the latest its events count from
/// (`ConsentLeaf::counts_from`: recorded, or an imported event's original time), as the log has
/// its chain (from the head `prev`, stored or built earlier in this batch), so that no edited
/// row can shorten it.
fn last_counted(r: &mut Repo<'_>, chain: &Chain<'_>, prev: u64) -> Result<i64, LogError> {
    let mut last = None;
    let mut at = Some(prev);
    while let Some(index) = at {
        let bytes = chain
            .leaf(r, index)?
            .ok_or_else(|| LogError::Corrupt(format!("no leaf {index} in a subject's chain")))?;
        if let Ok(event) = ConsentLeaf::parse(&bytes) {
            let counted = millis(event.counts_from()).ok_or_else(|| {
                LogError::Corrupt(format!("leaf {index} has no time it counts from"))
            })?;
            last = last.max(Some(counted));
        }
        at = consent_ledger_sdk::map::leaf_prev(&bytes)
            .map_err(|e| LogError::Corrupt(format!("leaf {index}: {e}")))?
            .filter(|p| *p < index);
    }
    last.ok_or_else(|| LogError::Corrupt(format!("the chain ending at leaf {prev} has no event")))
}

impl LogEntry for ErasureEntry {
    fn build(
        &mut self,
        r: &mut Repo<'_>,
        chain: &Chain<'_>,
        index: u64,
    ) -> Result<Option<Leaf>, LogError> {
        let (leaf, answer) = match self.decide(r, chain, index)? {
            Ok((leaf, erasure)) => (leaf, Ok(erasure)),
            Err(refused) => (None, Err(refused)),
        };
        self.outcome.set(answer);
        Ok(leaf)
    }
}
