//! Collection points: the consent screen, form, mail or paper template a person saw, registered
//! as content-addressed versions (validated here into a [`CollectionPointEntry`], or the
//! existing version when it is registered already), listed, read, and retired. A version's
//! period of use (ordinance Art. 4(1)(ii)) runs from its `collection_point` leaf to its
//! `collection_point_retired` leaf, both in the log; several versions may be in use at once
//! (a new version does not end an older one: retire it when it is no longer shown). What the
//! registration entry writes lives in `entries`.

use super::validate::text;
use super::CollectionPointEntry;
use crate::error::DomainError;
use crate::hex;
use sha2::{Digest, Sha256};

use super::model::*;

use super::plain_id;
use crate::log::{Chain, Leaf, Log, LogEntry, LogError, Reply};
use crate::rfc3339;
use crate::store::{CollectionPointRow, LeafIndex, Repo, Store};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use consent_ledger_sdk::consent::{collection_point_key, CollectionPointRetiredLeaf, RetiredType};

/// Collection points of publishable-key signup forms are named with this prefix (a name space
/// senders cannot register in, so a public form never supersedes a sender's own versions).
pub const SIGNUP_FORM_PREFIX: &str = "signup:";

/// Validates a collection point and returns the entry to append, or the existing version when
/// this exact version is registered already.
pub fn prepare_collection_point(
    store: &Store,
    tenant_id: &str,
    input: NewCollectionPoint,
) -> Result<Result<CollectionPointEntry, CollectionPoint>, DomainError> {
    if input.name.trim().starts_with(SIGNUP_FORM_PREFIX) {
        return Err(DomainError::Invalid(format!(
            "names starting with {SIGNUP_FORM_PREFIX:?} are kept for signup forms"
        )));
    }
    collection_point_entry(store, tenant_id, input)
}

/// The collection point of a publishable-key signup form (see [`signup_parts`]).
pub fn prepare_signup_form(
    store: &Store,
    tenant_id: &str,
    form: NewCollectionPoint,
) -> Result<Result<CollectionPointEntry, CollectionPoint>, DomainError> {
    collection_point_entry(store, tenant_id, form)
}

pub(super) fn collection_point_entry(
    store: &Store,
    tenant_id: &str,
    input: NewCollectionPoint,
) -> Result<Result<CollectionPointEntry, CollectionPoint>, DomainError> {
    let name = text("name", &input.name, 200)?;
    let content = match (&input.content, &input.content_base64) {
        (Some(text), None) => text.as_bytes().to_vec(),
        (None, Some(b64)) => {
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
                .map_err(|_| DomainError::Invalid("content_base64 is not base64".into()))?
        }
        _ => {
            return Err(DomainError::Invalid(
                "give exactly one of content and content_base64".into(),
            ))
        }
    };
    if content.is_empty() || content.len() > 5 << 20 {
        return Err(DomainError::Invalid(
            "the content must be 1 byte to 5 MiB".into(),
        ));
    }
    let entry = CollectionPointEntry {
        tenant_id: tenant_id.to_string(),
        name,
        channel: input.channel,
        content_type: text("content_type", &input.content_type, 200)?,
        content_sha256: hex(&Sha256::digest(&content)),
        content,
        sender_name_shown: text("sender_name_shown", &input.sender_name_shown, 200)?,
        prechecked: input.prechecked,
        language: text("language", &input.language, 35)?,
    };
    let id = entry.id();
    store.read(|r| {
        if r.tenant(tenant_id)?.is_none() {
            return Err(DomainError::NotFound(format!("no tenant {tenant_id:?}")));
        }
        Ok(match r.collection_point(tenant_id, &id)? {
            Some(row) => Err(view(row, false)),
            None => Ok(entry),
        })
    })
}

/// A version as the API shows it (with its content when `content`).
pub(crate) fn view(row: CollectionPointRow, content: bool) -> CollectionPoint {
    CollectionPoint {
        content_sha256: hex(&Sha256::digest(&row.content)),
        content_base64: content.then(|| B64.encode(&row.content)),
        id: row.id,
        name: row.name,
        channel: row.channel,
        content_type: row.content_type,
        sender_name_shown: row.sender_name_shown,
        prechecked: row.prechecked,
        language: row.language,
        leaf_index: row.leaf_index.get(),
        registered_at: rfc3339(row.registered_at),
        retired_at: row
            .superseded_at
            .filter(|_| row.retired_leaf_index.is_some())
            .map(rfc3339),
        retired_leaf_index: row.retired_leaf_index.map(LeafIndex::get),
    }
}

/// Registers a version (appending its leaf), or returns it if it is registered already:
/// `(created, version)`.
pub async fn register_collection_point(
    store: &Store,
    log: &Log,
    tenant_id: &str,
    input: NewCollectionPoint,
) -> Result<(bool, CollectionPoint), DomainError> {
    let entry = {
        let (store, tenant) = (store.clone(), tenant_id.to_string());
        store
            .clone()
            .blocking(false, move || {
                prepare_collection_point(&store, &tenant, input)
            })
            .await?
    };
    match entry {
        Err(existing) => Ok((false, existing)),
        Ok(entry) => {
            let id = entry.id();
            log.append_entries(vec![Box::new(entry) as Box<dyn LogEntry>])
                .await?;
            Ok((true, collection_point(store, tenant_id, &id)?))
        }
    }
}

/// A page of the tenant's versions (optionally of one `name`), registered after leaf `after`.
pub fn collection_points(
    store: &Store,
    tenant_id: &str,
    name: Option<&str>,
    after: Option<u64>,
    limit: Option<i64>,
) -> Result<CollectionPointPage, DomainError> {
    let limit = crate::page_limit(limit).map_err(DomainError::Invalid)?;
    let rows = store
        .read(|r| Ok::<_, DomainError>(r.collection_points(tenant_id, name, after, limit)?))?;
    let next_after = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|row| row.leaf_index.get()))
        .flatten();
    Ok(CollectionPointPage {
        collection_points: rows.into_iter().map(|row| view(row, false)).collect(),
        next_after,
    })
}

/// One version, with its content.
pub fn collection_point(
    store: &Store,
    tenant_id: &str,
    id: &str,
) -> Result<CollectionPoint, DomainError> {
    let not_found = || DomainError::NotFound(format!("no collection point {id:?}"));
    if !plain_id(id) {
        return Err(not_found());
    }
    store
        .read(|r| Ok::<_, DomainError>(r.collection_point(tenant_id, id)?))?
        .map(|row| view(row, true))
        .ok_or_else(not_found)
}

/// Retires a version: appends its `collection_point_retired` leaf (the end of its period of
/// use), after which no consent may name it but one given before (an import, a late record).
/// Retiring a retired version changes nothing.
pub async fn retire_collection_point(
    store: &Store,
    log: &Log,
    tenant_id: &str,
    id: &str,
) -> Result<CollectionPoint, DomainError> {
    let current = collection_point(store, tenant_id, id)?;
    if current.retired_leaf_index.is_some() {
        return Ok(current);
    }
    let found = Reply::default();
    let entry = RetirementEntry {
        tenant_id: tenant_id.to_string(),
        id: id.to_string(),
        found: found.clone(),
    };
    log.append_for(entry, &found).await?;
    collection_point(store, tenant_id, id)
}

/// A retirement to append; declines for a version that is gone or retired already (the log's
/// word: its retirement key has a leaf).
struct RetirementEntry {
    tenant_id: String,
    id: String,
    found: Reply<bool>,
}

impl LogEntry for RetirementEntry {
    fn build(
        &mut self,
        r: &mut Repo<'_>,
        chain: &Chain<'_>,
        index: u64,
    ) -> Result<Option<Leaf>, LogError> {
        let key = collection_point_key(&self.tenant_id, &self.id);
        let exists = r.collection_point(&self.tenant_id, &self.id)?.is_some();
        self.found.set(exists);
        if !exists || chain.prev(&key).is_some() {
            return Ok(None);
        }
        let now = chain.now();
        let leaf = CollectionPointRetiredLeaf {
            leaf_type: RetiredType::CollectionPointRetired,
            v: 1,
            tenant: self.tenant_id.clone(),
            id: self.id.clone(),
            subject: hex(&key),
            prev: None,
            retired_at: rfc3339(now),
        };
        let built = Leaf::of(&leaf)?;
        r.retire_collection_point(&self.tenant_id, &self.id, now, index)?;
        Ok(Some(built))
    }

    fn subject(&self, _: &Leaf) -> Option<[u8; 32]> {
        Some(collection_point_key(&self.tenant_id, &self.id))
    }
}
