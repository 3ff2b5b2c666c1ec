//! Collection points: the consent screen, form, mail or paper template a person saw, registered
//! as content-addressed versions (validated here into a [`CollectionPointEntry`], or the
//! existing version when it is registered already). What the entry writes lives in `entries`.

use super::validate::text;
use super::CollectionPointEntry;
use crate::error::DomainError;
use crate::hex;
use sha2::{Digest, Sha256};

use super::model::*;

use crate::rfc3339;
use crate::store::Store;

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
            Some(row) => Err(CollectionPoint {
                id: row.id,
                name: row.name,
                content_sha256: entry.content_sha256.clone(),
                leaf_index: row.leaf_index.get(),
                registered_at: rfc3339(row.registered_at),
            }),
            None => Ok(entry),
        })
    })
}
