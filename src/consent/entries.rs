//! The log entries of the consent domain: a consent event and a collection point version. Each
//! builds its leaf inside the sequencer's transaction (so its rows commit with the leaf) and must
//! not fail on content: everything was validated before (`prepare_*`), and races that slip past
//! validation (a duplicate registration) are tolerated, because an error fails the whole batch.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::address::EmailAddress;
use super::model::{AllPurposes, Basis, EventKind, Method, Purposes, Receiver};
use super::outbox;
use super::state::{apply, row_of, state_of};
use super::subject::{new_salted_subject, new_subject, restore};
use crate::consent::subject::commitment;
use crate::hex;
use crate::idempotency::{complete_key, IdempotencyMark};
use crate::log::hash::Hash;
use crate::log::jcs::canonicalize;
use crate::log::{Chain, Labeler, Leaf, LogEntry, LogError};
use crate::rfc3339;
use crate::store::{CollectionPointRow, EventRow, LeafIndex, Lookup, Repo, SubjectRow};
use consent_ledger_sdk::consent::{ConsentEventType, ConsentLeaf};
use consent_ledger_sdk::label::parameters_key;

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
    /// From an import: its leaf says so, and it counts from its original time.
    pub(super) imported: bool,
    /// For an opt-out through an unsubscribe link: the subject the link names. The entry then
    /// finds its subject by id, under the writer lock: if the subject was erased since the
    /// request was prepared, the opt-out is recorded against its commitment, and its address is
    /// not brought back.
    pub(crate) subject_id: Option<String>,
    /// The subject that had this address when the event was validated (its id): loaded by id
    /// with the batch, and used only if it still has the address.
    pub(crate) found: Option<String>,
    /// Label the address before the writer: it had no subject when the event was prepared, or
    /// the event is an opt-out (whose subject row is not believed: see [`Self::key`]).
    pub(crate) needs_label: bool,
    /// The address's VRF label, when computed before the writer.
    pub(crate) label: Option<Hash>,
    /// The subject's key, once built (for the sequencer's chain heads).
    pub(crate) commitment: Option<[u8; 32]>,
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

impl ConsentEventEntry {
    /// The subject this event is of, and whether it is new (inserted now, already pointing at
    /// `index`: two statements fewer on the sequencer's path for the commonest event, a first
    /// opt-in). A link's opt-out finds its subject by id, even if erased meanwhile. An address
    /// with no row is found by its label: an erased subject gets its address back, and its
    /// history (a refusal) goes on.
    fn subject(
        &self,
        r: &mut Repo<'_>,
        chain: &Chain<'_>,
        index: u64,
    ) -> Result<(SubjectRow, bool), LogError> {
        let mut staged = chain.staged();
        let address = self.address.as_str();
        let existing = match &self.subject_id {
            Some(id) => match staged
                .subject(r, id)?
                .filter(|s| s.tenant_id == self.tenant_id)
            {
                Some(subject) => Some(subject),
                None => staged.subject_by_address(r, &self.tenant_id, address)?,
            },
            None => staged.subject_by_address(r, &self.tenant_id, address)?,
        };
        if let Some(subject) = existing {
            return Ok((subject, false));
        }
        let mut subject = if chain.pre_labels() {
            new_salted_subject(&self.tenant_id, &self.address)
        } else {
            let label = match self.label {
                Some(label) => label,
                None => chain.label(&self.tenant_id, address),
            };
            if let Some(mut subject) = staged.subject_by_label(r, &label)? {
                restore(r, &mut subject, &self.address)?;
                staged.remember(subject.clone());
                return Ok((subject, false));
            }
            new_subject(&self.tenant_id, &self.address, label)
        };
        subject.last_leaf_index = Some(LeafIndex(index));
        staged.insert_subject(subject.clone());
        Ok((subject, true))
    }

    /// The key the leaf names the subject by. For an event that carries the address's label (a
    /// new address, any opt-out: labelled before the writer, or a link's), the row's key only if
    /// it is that label, or the salted commitment of this address with a history begun before
    /// the log's VRF key (a subject from before labels, not relabelled yet: its label has no
    /// chain) — never on the row's word alone; else the
    /// label, and the alarm logged: a row changed outside the service would record the refusal
    /// where no bundle of the address looks.
    fn key(
        &self,
        r: &mut Repo<'_>,
        subject: &SubjectRow,
        chain: &Chain<'_>,
    ) -> Result<Hash, LogError> {
        let row: Hash = subject.commitment.as_slice().try_into().map_err(|_| {
            LogError::Corrupt(format!("subject {} has no 32-byte commitment", subject.id))
        })?;
        let Some(label) = self.label.filter(|_| !chain.pre_labels()) else {
            return Ok(row);
        };
        // A label with a chain of its own (a relabelled history, or a new one) is the only key
        // of its address from then on.
        if label == row
            || (chain.prev(&label).is_none() && self.predates_labels(r, subject, &row, chain)?)
        {
            return Ok(row);
        }
        tracing::error!(
            subject = %subject.id,
            row = %hex(&row),
            label = %hex(&label),
            "the subject's row names a key that is not its address's label; the event is \
             recorded under the label"
        );
        Ok(label)
    }

    /// Whether `key` is the salted commitment of this event's address, whose chain (as the log
    /// has it) reaches back before the log's parameters leaf.
    fn predates_labels(
        &self,
        r: &mut Repo<'_>,
        subject: &SubjectRow,
        key: &Hash,
        chain: &Chain<'_>,
    ) -> Result<bool, LogError> {
        let opens = subject
            .salt
            .as_deref()
            .is_some_and(|salt| commitment(&self.tenant_id, self.address.as_str(), salt) == *key);
        let Some(parameters) = chain.prev(&parameters_key()).filter(|_| opens) else {
            return Ok(false);
        };
        let mut at = chain.prev(key);
        while let Some(index) = at {
            if index < parameters {
                return Ok(true);
            }
            // Stored, or built earlier in this batch: the walk goes on through it either way.
            at = chain
                .leaf(r, index)?
                .and_then(|l| consent_ledger_sdk::map::leaf_prev(&l).ok())
                .flatten();
        }
        Ok(false)
    }

    /// The leaf index of the subject's previous event (the per-address chain), as the log
    /// says: the row's copy is only written, never believed. A new row for a key the log already
    /// has is an alarm, and its event still names the key's head.
    fn prev(subject: &SubjectRow, is_new: bool, key: &Hash, chain: &Chain<'_>) -> Option<u64> {
        let prev = chain.prev(key);
        let row = if is_new {
            None
        } else {
            subject.last_leaf_index.map(LeafIndex::get)
        };
        if prev != row {
            tracing::error!(
                subject = %subject.id,
                row = ?row,
                log = ?prev,
                "the subject's row disagrees with the log about its latest event; the log's is used"
            );
        }
        prev
    }

    /// The event's leaf, as `docs/log-format.md` defines it.
    fn leaf(
        &self,
        subject: &SubjectRow,
        key: &Hash,
        prev: Option<u64>,
        now: i64,
    ) -> Result<ConsentLeaf, LogError> {
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
        Ok(ConsentLeaf {
            leaf_type: ConsentEventType::ConsentEvent,
            v: 1,
            tenant: self.tenant_id.clone(),
            event_id: self.event_id.clone(),
            subject: hex(key),
            event: self.kind,
            purposes: match &self.purposes {
                Some(list) => Purposes::List(list.clone()),
                None => Purposes::All(AllPurposes::All),
            },
            basis: self.basis,
            method: self.method,
            collection_point: self.collection_point.clone(),
            received_by: self.receiver.clone(),
            occurred_at: rfc3339(self.occurred_at),
            recorded_at: rfc3339(now),
            prev,
            confirmation_required: self.confirmation_required,
            evidence_sha256,
            confirms: self.confirms.clone(),
            imported: self.imported,
        })
    }
}

impl LogEntry for ConsentEventEntry {
    fn build(
        &mut self,
        r: &mut Repo<'_>,
        chain: &Chain<'_>,
        index: u64,
    ) -> Result<Option<Leaf>, LogError> {
        let now = chain.now();
        let (subject, is_new) = self.subject(r, chain, index)?;
        let key = self.key(r, &subject, chain)?;
        let prev = Self::prev(&subject, is_new, &key, chain);
        let leaf = self.leaf(&subject, &key, prev, now)?;
        let document = serde_json::to_value(&leaf).expect("a leaf serialises");
        let built = Leaf::from_json(&document)?;
        let mut staged = chain.staged();
        staged.insert_event(EventRow {
            id: self.event_id.clone(),
            tenant_id: self.tenant_id.clone(),
            subject_id: subject.id.clone(),
            kind: name_of(&self.kind),
            purposes: document["purposes"].to_string(),
            basis: self.basis.map_or("none", Basis::as_str).to_string(),
            method: name_of(&self.method),
            collection_point: self.collection_point.clone(),
            received_by: document["received_by"].to_string(),
            occurred_at: self.occurred_at,
            recorded_at: now,
            leaf_index: LeafIndex(index),
            prev_leaf_index: prev.map(LeafIndex),
            confirmation_required: self.confirmation_required,
            evidence: self.evidence.as_ref().map(Value::to_string),
        });
        if !is_new {
            staged.set_last_leaf(r, &subject.id, index)?;
        }
        // The rules are the SDK's: the rows are what `apply` says this event changes. The rows
        // read here are current: the transaction holds the writer lock, and the batch's own
        // changes are staged.
        let state = if is_new {
            Default::default()
        } else {
            state_of(&staged.all_state_entries(r, &subject.id)?)
        };
        for (purpose, changed) in apply(&state, index, &leaf) {
            staged.put_state_entry(row_of(&subject.id, &purpose, &changed));
        }
        outbox::announce(r, &mut staged, &subject, &leaf, index, &built.hash())?;
        drop(staged);
        if let Some(mark) = &self.idempotency {
            complete_key(r, mark, index)?;
        }
        self.commitment = Some(key);
        Ok(Some(built))
    }

    fn subject(&self, _: &Leaf) -> Option<[u8; 32]> {
        self.commitment
    }

    fn stages(&self) -> Option<Lookup<'_>> {
        Some(Lookup {
            tenant_id: &self.tenant_id,
            address: self.address.as_str(),
            label: self.label.as_ref().map(|l| l.as_slice()),
            subject_id: self.subject_id.as_deref(),
            found_id: self.found.as_deref(),
        })
    }

    fn prepare(&mut self, labeler: &Labeler) {
        if self.needs_label && self.label.is_none() {
            self.label = Some(labeler.label(&self.tenant_id, self.address.as_str()));
        }
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
    fn subject(&self, _: &Leaf) -> Option<[u8; 32]> {
        None
    }

    fn build(
        &mut self,
        r: &mut Repo<'_>,
        chain: &Chain<'_>,
        index: u64,
    ) -> Result<Option<Leaf>, LogError> {
        let now = chain.now();
        let id = self.id();
        let mut document = self.description();
        let fields = document.as_object_mut().expect("an object");
        fields.insert("type".into(), json!("collection_point"));
        fields.insert("v".into(), json!(1));
        fields.insert("id".into(), json!(id));
        fields.insert("registered_at".into(), json!(rfc3339(now)));
        let leaf = Leaf::from_json(&document)?;
        if r.collection_point(&self.tenant_id, &id)?.is_none() {
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
                leaf_index: LeafIndex(index),
                registered_at: now,
                superseded_at: None,
                retired_leaf_index: None,
            })?;
        }
        Ok(Some(leaf))
    }
}
