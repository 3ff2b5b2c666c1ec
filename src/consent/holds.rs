//! Legal holds: a measures order (Art. 7) makes a tenant keep its records a year instead of a
//! month. Putting a hold on or lifting it appends a `legal_hold` leaf with the order's date and
//! reference (`docs/log-format.md`); the tenant's holds form one chain under its hold key, which
//! the subject map proves complete, so a verifier knows which retention period each erasure had
//! to wait. Not here: the erasure itself (`erasure`), who may set a hold (`api::consent`).

use super::model::Tenant;
use super::validate::{calendar_date, text};
use super::{plain_id, tenant};
use crate::error::DomainError;
use crate::log::{Chain, Leaf, Log, LogEntry, LogError, Reply};
use crate::rfc3339;
use crate::store::{LeafIndex, LegalHoldRow, Repo, Store};
use consent_ledger_sdk::consent::{
    hold_key, LegalHoldLeaf, LegalHoldType, RETENTION_LEGAL_HOLD_DAYS,
};

const DAY_MS: i64 = 86_400_000;

/// A hold to put on or lift, and the order it follows.
#[derive(Clone, Debug)]
pub struct HoldChange {
    /// On (a measures order applies) or off (it was lifted).
    pub on: bool,
    /// The order's date, `YYYY-MM-DD`.
    pub order_date: String,
    /// The order's reference (its number; no personal data).
    pub order_reference: String,
}

/// Puts a tenant's legal hold on or lifts it: validates the order, appends the `legal_hold`
/// leaf (which sets the tenant's row), and returns the tenant.
pub async fn set_legal_hold(
    store: &Store,
    log: &Log,
    tenant_id: &str,
    change: HoldChange,
) -> Result<Tenant, DomainError> {
    if !plain_id(tenant_id) {
        return Err(DomainError::NotFound(format!("no tenant {tenant_id:?}")));
    }
    let order = calendar_date("order_date", &change.order_date)?;
    let now = crate::now_millis();
    // A day of slack: a date in Japan is up to nine hours ahead of the UTC instant.
    if order > now + DAY_MS {
        return Err(DomainError::Invalid(
            "order_date is in the future: give the date of the order".into(),
        ));
    }
    if change.on && order + RETENTION_LEGAL_HOLD_DAYS as i64 * DAY_MS <= now {
        return Err(DomainError::Invalid(
            "the year this order keeps records for (ordinance Art. 4(2)) has run: no hold follows from it".into(),
        ));
    }
    let change = HoldChange {
        order_reference: text("order_reference", &change.order_reference, 200)?,
        ..change
    };
    let found = Reply::default();
    let entry = HoldEntry {
        tenant_id: tenant_id.to_string(),
        change,
        found: found.clone(),
    };
    if log.append_for(entry, &found).await? != Some(true) {
        return Err(DomainError::NotFound(format!("no tenant {tenant_id:?}")));
    }
    tenant(store, tenant_id)
}

/// A hold change to append; declines for a tenant that does not exist.
struct HoldEntry {
    tenant_id: String,
    change: HoldChange,
    found: Reply<bool>,
}

impl LogEntry for HoldEntry {
    fn build(
        &mut self,
        r: &mut Repo<'_>,
        chain: &Chain<'_>,
        index: u64,
    ) -> Result<Option<Leaf>, LogError> {
        let exists = r.tenant(&self.tenant_id)?.is_some();
        self.found.set(exists);
        if !exists {
            return Ok(None);
        }
        let now = chain.now();
        let key = hold_key(&self.tenant_id);
        let leaf = LegalHoldLeaf {
            leaf_type: LegalHoldType::LegalHold,
            v: 1,
            tenant: self.tenant_id.clone(),
            subject: crate::hex(&key),
            prev: chain.prev(&key),
            on: self.change.on,
            order_date: self.change.order_date.clone(),
            order_reference: self.change.order_reference.clone(),
            recorded_at: rfc3339(now),
        };
        let built = Leaf::of(&leaf)?;
        r.insert_legal_hold(&LegalHoldRow {
            leaf_index: LeafIndex(index),
            tenant_id: self.tenant_id.clone(),
            hold_on: self.change.on,
            order_date: self.change.order_date.clone(),
            order_reference: self.change.order_reference.clone(),
            recorded_at: now,
        })?;
        Ok(Some(built))
    }
}

/// The tenant's hold in force, as the log states it (the head of its hold chain, stored or
/// built earlier in this batch, if it is on).
pub(super) fn hold_in_force(
    r: &mut Repo<'_>,
    chain: &Chain<'_>,
    tenant_id: &str,
) -> Result<Option<LegalHoldLeaf>, LogError> {
    let Some(head) = chain.prev(&hold_key(tenant_id)) else {
        return Ok(None);
    };
    chain
        .leaf(r, head)?
        .and_then(|b| LegalHoldLeaf::parse(&b).ok())
        .map(|hold| hold.on.then_some(hold))
        .ok_or_else(|| LogError::Corrupt(format!("leaf {head} is not a legal_hold leaf")))
}
