//! Tenants (the senders) and their purposes: creating one, its display profile, reading it, the
//! legal hold flag, and the hot-path check that a tenant with purposes exists. Not here: what a
//! legal hold does to retention (`erasure`).

use super::model::*;
use super::validate::{check_purpose_key, language, optional_text, text};
use super::{new_id, plain_id};
use crate::error::DomainError;

use crate::store::{Repo, Store, TenantRow};
use crate::{now_millis, rfc3339};

/// Most purposes of a tenant: it bounds a leaf's size far below the 64 KiB limit.
pub const MAX_PURPOSES: usize = 100;

/// Creates a tenant with its purposes.
pub fn create_tenant(store: &Store, input: NewTenant) -> Result<Tenant, DomainError> {
    let name = text("name", &input.name, 200)?;
    let row = TenantRow {
        id: new_id(),
        legal_name: optional_text("legal_name", input.legal_name.as_deref(), 200)?
            .unwrap_or_else(|| name.clone()),
        name,
        postal_address: optional_text("postal_address", input.postal_address.as_deref(), 500)?,
        complaint_contact: optional_text(
            "complaint_contact",
            input.complaint_contact.as_deref(),
            500,
        )?,
        optout_contact: optional_text("optout_contact", input.optout_contact.as_deref(), 500)?,
        default_language: language(input.default_language.as_deref())?,
        legal_hold: false,
        created_at: now_millis(),
    };
    if input.purposes.len() > MAX_PURPOSES {
        return Err(DomainError::Invalid(format!(
            "a tenant has at most {MAX_PURPOSES} purposes"
        )));
    }
    for p in &input.purposes {
        check_purpose_key(&p.purpose)?;
        if p.description.chars().count() > 500 {
            return Err(DomainError::Invalid(
                "a purpose description is at most 500 characters".into(),
            ));
        }
    }
    store.write(|r: &mut Repo<'_>| {
        r.insert_tenant(&row)?;
        for p in &input.purposes {
            r.add_purpose(&row.id, &p.purpose, p.description.trim(), row.created_at)?;
        }
        Ok::<_, DomainError>(())
    })?;
    tenant(store, &row.id)
}

/// Updates a tenant's display profile (the fields given).
pub fn update_tenant(
    store: &Store,
    id: &str,
    change: TenantProfile,
) -> Result<Tenant, DomainError> {
    if !plain_id(id) {
        return Err(DomainError::NotFound(format!("no tenant {id:?}")));
    }
    store.write(|r| {
        let mut row = r
            .tenant(id)?
            .ok_or_else(|| DomainError::NotFound(format!("no tenant {id:?}")))?;
        if let Some(v) = change.legal_name.as_deref() {
            row.legal_name = text("legal_name", v, 200)?;
        }
        if let Some(v) = change.postal_address.as_deref() {
            row.postal_address = Some(text("postal_address", v, 500)?);
        }
        if let Some(v) = change.complaint_contact.as_deref() {
            row.complaint_contact = Some(text("complaint_contact", v, 500)?);
        }
        if let Some(v) = change.optout_contact.as_deref() {
            row.optout_contact = Some(text("optout_contact", v, 500)?);
        }
        if change.default_language.is_some() {
            row.default_language = language(change.default_language.as_deref())?;
        }
        r.update_tenant_profile(&row)?;
        Ok::<_, DomainError>(())
    })?;
    tenant(store, id)
}

/// A tenant by id.
pub fn tenant(store: &Store, id: &str) -> Result<Tenant, DomainError> {
    if !plain_id(id) {
        return Err(DomainError::NotFound(format!("no tenant {id:?}")));
    }
    store.read(|r| {
        let row = r
            .tenant(id)?
            .ok_or_else(|| DomainError::NotFound(format!("no tenant {id:?}")))?;
        let purposes = r
            .purposes(id)?
            .into_iter()
            .map(|(purpose, description)| PurposeDefinition {
                purpose,
                description,
            })
            .collect();
        Ok(Tenant {
            id: row.id,
            name: row.name,
            legal_name: row.legal_name,
            postal_address: row.postal_address,
            complaint_contact: row.complaint_contact,
            optout_contact: row.optout_contact,
            default_language: row.default_language,
            legal_hold: row.legal_hold,
            purposes,
            created_at: rfc3339(row.created_at),
        })
    })
}

pub(crate) fn known_purposes(
    r: &mut Repo<'_>,
    tenant_id: &str,
) -> Result<Vec<String>, DomainError> {
    let no_tenant = || DomainError::NotFound(format!("no tenant {tenant_id:?}"));
    if !plain_id(tenant_id) {
        return Err(no_tenant());
    }
    // One query on the hot path: a tenant with purposes exists.
    let purposes: Vec<String> = r.purposes(tenant_id)?.into_iter().map(|(p, _)| p).collect();
    if purposes.is_empty() && r.tenant(tenant_id)?.is_none() {
        return Err(no_tenant());
    }
    Ok(purposes)
}
