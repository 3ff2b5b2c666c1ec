//! The log entries of the consent domain: a consent event and a collection point version. Each
//! builds its leaf inside the sequencer's transaction (so its rows commit with the leaf) and must
//! not fail on content: everything was validated before (`prepare_*`), and races that slip past
//! validation (a duplicate registration) are tolerated, because an error fails the whole batch.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::address::EmailAddress;
use super::model::{Basis, EventKind, Method, Receiver};
use super::{complete_key, effective, hex, new_subject, pending_purposes, IdempotencyMark, ALL};
use crate::log::jcs::canonicalize;
use crate::log::{Chain, Leaf, LogEntry, LogError};
use crate::store::{CollectionPointRow, EventRow, Repo, StateEntryRow};
use crate::unsubscribe::webhooks;
use crate::{now_millis, rfc3339};

/// A validated consent event, ready to append (see [`super::prepare_event`]).
pub struct ConsentEventEntry {
    pub(super) tenant_id: String,
    pub(super) event_id: String,
    pub(super) address: EmailAddress,
    pub(super) kind: EventKind,
    /// `None` = all purposes.
    pub(super) purposes: Option<Vec<String>>,
    pub(super) basis: Option<Basis>,
    pub(super) method: Method,
    pub(super) collection_point: Option<String>,
    pub(super) receiver: Receiver,
    pub(super) occurred_at: i64,
    pub(super) confirmation_required: bool,
    pub(super) evidence: Option<Value>,
    pub(super) idempotency: Option<IdempotencyMark>,
    /// For a confirmation by link: the opt-in it confirms (only that opt-in's pending purposes).
    pub(super) confirms: Option<String>,
    /// For an opt-out through an unsubscribe link: the subject the link names. The entry then
    /// finds its subject by id, under the writer lock: if the subject was erased since the
    /// request was prepared, the opt-out is recorded against its commitment, and its address is
    /// not brought back.
    pub(crate) subject_id: Option<String>,
}

impl ConsentEventEntry {
    /// Makes this (the last) entry of a request record the request's answer under its
    /// Idempotency-Key, in the same transaction as the events.
    pub fn answer_idempotency(&mut self, mark: IdempotencyMark) {
        self.idempotency = Some(mark);
    }
}

fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl LogEntry for ConsentEventEntry {
    fn build(&mut self, r: &mut dyn Repo, chain: &Chain<'_>, index: u64) -> Result<Leaf, LogError> {
        let now = now_millis();
        // A new subject is inserted already pointing at this leaf and has no state rows: two
        // statements fewer on the sequencer's path for the commonest event, a first opt-in.
        let existing = match &self.subject_id {
            Some(id) => match r.subject(id)?.filter(|s| s.tenant_id == self.tenant_id) {
                Some(subject) => Some(subject),
                None => r.subject_by_address(&self.tenant_id, self.address.as_str())?,
            },
            None => r.subject_by_address(&self.tenant_id, self.address.as_str())?,
        };
        let is_new = existing.is_none();
        let subject = match existing {
            Some(subject) => subject,
            None => {
                let mut subject = new_subject(&self.tenant_id, &self.address);
                subject.last_leaf_index = Some(index as i64);
                r.insert_subject(&subject)?;
                subject
            }
        };
        // The leaf index of this address's previous event (the per-address chain), as the log
        // says: the row's copy is only written, never believed.
        let prev = if is_new {
            None
        } else {
            let key: [u8; 32] = subject.commitment.as_slice().try_into().map_err(|_| {
                LogError::Corrupt(format!("subject {} has no 32-byte commitment", subject.id))
            })?;
            let prev = chain.prev(&key);
            if prev != subject.last_leaf_index.map(|i| i as u64) {
                tracing::error!(
                    subject = %subject.id,
                    row = ?subject.last_leaf_index,
                    log = ?prev,
                    "the subject's row disagrees with the log about its latest event; the log's is used"
                );
            }
            prev.map(|i| i as i64)
        };
        let salt = subject.salt.clone().unwrap_or_default();
        let evidence_sha256 = match &self.evidence {
            None => None,
            Some(e) => {
                let canonical =
                    canonicalize(e).map_err(|e| LogError::InvalidLeaf(e.to_string()))?;
                Some(hex(&Sha256::new()
                    .chain_update(&salt)
                    .chain_update(canonical)
                    .finalize()))
            }
        };
        let purposes = match &self.purposes {
            Some(list) => json!(list),
            None => json!("all"),
        };
        let basis = self.basis.as_ref().map(name_of);
        let document = json!({
            "type": "consent_event",
            "v": 1,
            "tenant": self.tenant_id,
            "event_id": self.event_id,
            "subject": hex(&subject.commitment),
            "event": name_of(&self.kind),
            "purposes": purposes,
            "basis": basis,
            "method": name_of(&self.method),
            "collection_point": self.collection_point,
            "received_by": {"role": name_of(&self.receiver.role), "name": self.receiver.name},
            "occurred_at": rfc3339(self.occurred_at),
            "recorded_at": rfc3339(now),
            "prev": prev,
            "confirmation_required": self.confirmation_required,
            "evidence_sha256": evidence_sha256,
            "confirms": self.confirms,
        });
        let leaf = Leaf::from_json(&document)?;
        let basis = basis.unwrap_or_else(|| "none".into());
        r.insert_event(&EventRow {
            id: self.event_id.clone(),
            tenant_id: self.tenant_id.clone(),
            subject_id: subject.id.clone(),
            kind: name_of(&self.kind),
            purposes: purposes.to_string(),
            basis: basis.clone(),
            method: name_of(&self.method),
            collection_point: self.collection_point.clone(),
            received_by: document["received_by"].to_string(),
            occurred_at: self.occurred_at,
            recorded_at: now,
            leaf_index: index as i64,
            prev_leaf_index: prev,
            confirmation_required: self.confirmation_required,
            evidence: self.evidence.as_ref().map(Value::to_string),
        })?;
        if !is_new {
            r.set_last_leaf(&subject.id, index as i64)?;
        }

        let state = |purpose: &str, status: &str, basis: &str| StateEntryRow {
            subject_id: subject.id.clone(),
            purpose: purpose.to_string(),
            status: status.to_string(),
            basis: basis.to_string(),
            since: now,
            event_id: self.event_id.clone(),
            leaf_index: index as i64,
            occurred_at: self.occurred_at,
        };
        let rows = if is_new {
            Vec::new()
        } else {
            r.all_state_entries(&subject.id)?
        };
        // A refusal binds every basis (Art. 3(3)): after an opt-out, only fresh consent — given
        // after the refusal, by the claimed times — brings a purpose back. The event is recorded
        // either way; only its effect is withheld.
        let may_grant = |purpose: &str| match effective(&rows, purpose) {
            Some(e) if e.status == "withdrawn" => {
                self.basis == Some(Basis::Consent) && self.occurred_at > e.occurred_at
            }
            _ => true,
        };
        match self.kind {
            EventKind::OptIn => {
                for purpose in self.purposes.iter().flatten() {
                    let granted = effective(&rows, purpose).is_some_and(|e| e.status == "granted");
                    if !may_grant(purpose) {
                        continue;
                    }
                    match (self.confirmation_required, granted) {
                        // A new unconfirmed opt-in does not take back consent already given.
                        (true, true) => {}
                        (true, false) => r.put_state_entry(&state(purpose, "pending", &basis))?,
                        (false, _) => r.put_state_entry(&state(purpose, "granted", &basis))?,
                    }
                }
            }
            EventKind::OptOut => {
                match &self.purposes {
                    None => r.put_state_entry(&state(ALL, "withdrawn", "none"))?,
                    Some(list) => {
                        for purpose in list {
                            r.put_state_entry(&state(purpose, "withdrawn", "none"))?;
                        }
                    }
                }
                // Announced to the tenant's webhooks: queued in this transaction, so an
                // acknowledged opt-out is never left unannounced.
                let announcement = json!({
                    "type": "opt_out",
                    "tenant": self.tenant_id,
                    "event_id": self.event_id,
                    // Not for a subject erased meanwhile: its address is gone.
                    "email": subject.address.as_deref(),
                    "purposes": purposes,
                    "method": name_of(&self.method),
                    "occurred_at": rfc3339(self.occurred_at),
                    "recorded_at": rfc3339(now),
                    "leaf_index": index,
                });
                webhooks::enqueue(
                    r,
                    &self.tenant_id,
                    &subject.id,
                    &self.event_id,
                    &announcement,
                )?;
            }
            EventKind::Confirm => {
                // The rows read above: the transaction holds the writer lock, they are current.
                let pending = pending_purposes(&rows, self.purposes.as_deref());
                let pending = pending.into_iter().filter(|purpose| match &self.confirms {
                    // A link confirms the opt-in it was made for, and nothing pending since.
                    Some(id) => rows
                        .iter()
                        .any(|row| &row.purpose == purpose && &row.event_id == id),
                    None => true,
                });
                for purpose in pending {
                    let basis = rows
                        .iter()
                        .find(|row| row.purpose == purpose)
                        .map_or("consent", |row| row.basis.as_str());
                    r.put_state_entry(&state(&purpose, "granted", basis))?;
                }
            }
        }
        if let Some(mark) = &self.idempotency {
            complete_key(r, mark, index)?;
        }
        Ok(leaf)
    }
}

/// A validated collection point version, ready to append.
pub struct CollectionPointEntry {
    pub(super) tenant_id: String,
    pub(super) name: String,
    pub(super) channel: Method,
    pub(super) content_type: String,
    pub(super) content: Vec<u8>,
    pub(super) content_sha256: String,
    pub(super) sender_name_shown: String,
    pub(super) prechecked: bool,
    pub(super) language: String,
}

impl CollectionPointEntry {
    /// What the version's id hashes: everything the person saw, and how.
    fn description(&self) -> Value {
        json!({
            "tenant": self.tenant_id,
            "name": self.name,
            "channel": name_of(&self.channel),
            "content_type": self.content_type,
            "content_sha256": self.content_sha256,
            "sender_name_shown": self.sender_name_shown,
            "prechecked": self.prechecked,
            "language": self.language,
        })
    }

    /// The version's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hex SHA-256 of the content.
    pub fn content_sha256(&self) -> &str {
        &self.content_sha256
    }

    /// The content-addressed id: hex SHA-256 of the canonical description.
    pub fn id(&self) -> String {
        let canonical = canonicalize(&self.description()).expect("strings and booleans only");
        hex(&Sha256::digest(canonical))
    }
}

impl LogEntry for CollectionPointEntry {
    fn build(&mut self, r: &mut dyn Repo, _: &Chain<'_>, index: u64) -> Result<Leaf, LogError> {
        let now = now_millis();
        let id = self.id();
        let mut document = self.description();
        let fields = document.as_object_mut().expect("an object");
        fields.insert("type".into(), json!("collection_point"));
        fields.insert("v".into(), json!(1));
        fields.insert("id".into(), json!(id));
        fields.insert("registered_at".into(), json!(rfc3339(now)));
        let leaf = Leaf::from_json(&document)?;
        if r.collection_point(&self.tenant_id, &id)?.is_none() {
            r.supersede_collection_points(&self.tenant_id, &self.name, now)?;
            r.insert_collection_point(&CollectionPointRow {
                id,
                tenant_id: self.tenant_id.clone(),
                name: self.name.clone(),
                channel: name_of(&self.channel),
                content_type: self.content_type.clone(),
                content: std::mem::take(&mut self.content),
                sender_name_shown: self.sender_name_shown.clone(),
                prechecked: self.prechecked,
                language: self.language.clone(),
                leaf_index: index as i64,
                registered_at: now,
                superseded_at: None,
            })?;
        }
        Ok(leaf)
    }
}
