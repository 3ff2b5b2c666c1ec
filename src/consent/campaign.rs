//! Campaign receipts: a pre-flight check (`POST /v1/consent:check` with `"record": true`)
//! recorded as one `campaign_check` leaf, and the proof that an address was in it with its
//! decision (`docs/log-format.md`, `docs/evidence-format.md`). The decisions are read inside the
//! sequencer's transaction, so they are exactly those of the leaves before the campaign leaf,
//! which is what a verifier replays. Not here: the one-off check (`decision`), the entries'
//! encoding and root (the SDK's `campaign`), the bundle (`crate::evidence`).

use std::collections::HashMap;

use serde_json::json;

use super::address::EmailAddress;
use super::decision::{answers, by_labels, parse_check, states_for, valid, Found};
use super::known_purposes;
use super::model::{CampaignCheck, CheckRequest, CheckResult};
use super::validate::{check_purposes, new_id};
use crate::error::DomainError;
use crate::log::hash::Hash;
use crate::log::{Chain, Labeler, Leaf, LogEntry, LogError, Reply};
use crate::store::{CampaignCheckRow, LeafIndex, Repo, Store};
use crate::{hex, rfc3339};
use consent_ledger_sdk::campaign::{self, Entry, CAMPAIGN_LEAF_TYPE, ENTRY_BYTES};

/// What the campaign leaf's transaction answered: each address's result and the check.
pub type Recorded = (Vec<CheckResult>, CampaignCheck);

/// A campaign check to append: validated, its new addresses labelled; [`LogEntry::build`]
/// decides every address from the rows of the same transaction, writes the check's row, and
/// leaves the answer in [`CampaignEntry::outcome`].
pub struct CampaignEntry {
    id: String,
    tenant_id: String,
    request: CheckRequest,
    parsed: Vec<Result<EmailAddress, String>>,
    /// Labels of the valid addresses that had no subject when the check was prepared.
    labels: HashMap<String, Hash>,
    outcome: Reply<Recorded>,
}

/// Validates a check to record and labels its addresses not seen before (on the caller's
/// thread, not the writer's).
pub fn prepare_campaign_check(
    store: &Store,
    labeler: &Labeler,
    tenant_id: &str,
    request: CheckRequest,
) -> Result<CampaignEntry, DomainError> {
    let parsed = parse_check(&request)?;
    let addresses = valid(&parsed);
    let known = store.read(|r| {
        check_purposes(
            std::slice::from_ref(&request.purpose),
            &known_purposes(r, tenant_id)?,
        )?;
        Ok::<_, DomainError>(states_for(r, tenant_id, &addresses, &request.purpose)?)
    })?;
    let labels = addresses
        .iter()
        .filter(|a| !known.contains_key(a.as_str()))
        .map(|a| (a.clone(), labeler.label(tenant_id, a)))
        .collect();
    Ok(CampaignEntry {
        id: format!("chk_{}", new_id()),
        tenant_id: tenant_id.to_string(),
        request,
        parsed,
        labels,
        outcome: Reply::default(),
    })
}

impl CampaignEntry {
    /// Where the answer is once the entry has been appended.
    pub fn outcome(&self) -> Reply<Recorded> {
        self.outcome.clone()
    }

    /// One entry per distinct valid address: the subject's key and state, or for an address
    /// with no subject its label and no state.
    fn entries(&self, found: &Found) -> Result<Vec<Entry>, LogError> {
        let mut entries = Vec::new();
        for address in valid(&self.parsed) {
            let entry = match found.get(&address) {
                Some((subject, state)) => Entry {
                    key: subject.commitment.as_slice().try_into().map_err(|_| {
                        LogError::Corrupt("a stored subject key is not 32 bytes".into())
                    })?,
                    status: state.as_ref().map(|s| s.status),
                    deciding: state.as_ref().map(|s| s.leaf_index),
                },
                // Erased between prepare and now (its row no longer has the address, and it
                // was not labelled): left out, not failed — the writer's batch holds others'
                // events. Its answer is `none`, and no proof for it is served (a 404, the
                // operator's word: nothing proves an address's absence from a check).
                None => match self.labels.get(&address) {
                    None => continue,
                    Some(label) => Entry {
                        key: *label,
                        status: None,
                        deciding: None,
                    },
                },
            };
            entries.push(entry);
        }
        Ok(campaign::sorted(entries))
    }
}

impl LogEntry for CampaignEntry {
    fn subject(&self, _: &Leaf) -> Option<Hash> {
        None
    }

    fn build(
        &mut self,
        r: &mut Repo<'_>,
        chain: &Chain<'_>,
        index: u64,
    ) -> Result<Option<Leaf>, LogError> {
        let now = chain.now();
        let purpose = self.request.purpose.clone();
        let mut found = states_for(r, &self.tenant_id, &valid(&self.parsed), &purpose)?;
        by_labels(r, &self.tenant_id, &self.labels, &mut found, &purpose)?;
        let entries = self.entries(&found)?;
        let root = hex(&campaign::root(&entries));
        let leaf = Leaf::from_json(&json!({
            "type": CAMPAIGN_LEAF_TYPE,
            "v": 1,
            "tenant": self.tenant_id,
            "id": self.id,
            "purpose": purpose,
            "addresses": entries.len(),
            "root": root,
            "recorded_at": rfc3339(now),
        }))?;
        r.insert_campaign_check(&CampaignCheckRow {
            id: self.id.clone(),
            tenant_id: self.tenant_id.clone(),
            purpose: purpose.clone(),
            leaf_index: LeafIndex(index),
            recorded_at: now,
            addresses: entries.len() as i64,
            root: root.clone(),
            entries: entries.iter().flat_map(|e| e.encode()).collect(),
        })?;
        let check = CampaignCheck {
            id: self.id.clone(),
            purpose,
            leaf_index: index,
            addresses: entries.len() as u64,
            root,
            recorded_at: rfc3339(now),
        };
        let results = answers(&self.request.emails, &self.parsed, |a| {
            found.get(a).and_then(|(_, s)| s.as_ref())
        });
        self.outcome.set((results, check));
        Ok(Some(leaf))
    }
}

/// A recorded check's entry for `email`: the check's row, the entries, and the entry's position.
pub fn campaign_entry(
    store: &Store,
    tenant_id: &str,
    id: &str,
    email: &str,
) -> Result<(CampaignCheckRow, Vec<Entry>, usize), DomainError> {
    let address = EmailAddress::parse(email)?;
    store.read(|r| {
        let row = r
            .campaign_check(tenant_id, id)?
            .ok_or_else(|| DomainError::NotFound(format!("no campaign check {id:?}")))?;
        let subject = r
            .subject_by_address(tenant_id, address.as_str())?
            .ok_or_else(|| {
                DomainError::NotFound(
                    "no events recorded for this address: nothing proves its decision (none)"
                        .into(),
                )
            })?;
        let entries: Vec<Entry> = row
            .entries
            .chunks(ENTRY_BYTES)
            .map(Entry::decode)
            .collect::<Option<_>>()
            .ok_or_else(|| LogError::Corrupt(format!("campaign check {id}: a bad entry")))?;
        let position = entries
            .binary_search_by(|e| e.key.as_slice().cmp(subject.commitment.as_slice()))
            .map_err(|_| {
                DomainError::NotFound(format!("this address was not in campaign check {id}"))
            })?;
        Ok((row, entries, position))
    })
}
