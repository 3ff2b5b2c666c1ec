//! Tenants (the senders) and their purposes: creating one, its display profile, reading it, the
//! legal hold flag, and the hot-path check that a tenant with purposes exists. Not here: what a
//! legal hold does to retention (`erasure`).

use super::model::*;
use super::validate::{check_purpose_key, language, optional_text, text};
use super::{new_id, plain_id};
use crate::error::DomainError;

use super::address::EmailAddress;
use crate::store::{PurposeRow, Repo, Store, TenantRow};
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
        optout_contact: input
            .optout_contact
            .as_deref()
            .map(optout_contact)
            .transpose()?,
        default_language: language(input.default_language.as_deref())?,
        legal_hold: false,
        created_at: now_millis(),
        responsible_party: optional_text(
            "responsible_party",
            input.responsible_party.as_deref(),
            200,
        )?,
        phone: input.phone.as_deref().map(phone).transpose()?,
        privacy_policy_url: input
            .privacy_policy_url
            .as_deref()
            .map(policy_url)
            .transpose()?,
    };
    let purposes = checked_purposes(&input.purposes, 0)?;
    store.write(|r: &mut Repo<'_>| {
        r.insert_tenant(&row)?;
        for p in &purposes {
            r.put_purpose(&row.id, p, row.created_at)?;
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
            row.optout_contact = Some(optout_contact(v)?);
        }
        match change.responsible_party.as_deref().map(str::trim) {
            None => {}
            Some("") => row.responsible_party = None,
            Some(v) => row.responsible_party = Some(text("responsible_party", v, 200)?),
        }
        match change.phone.as_deref().map(str::trim) {
            None => {}
            Some("") => row.phone = None,
            Some(v) => row.phone = Some(phone(v)?),
        }
        match change.privacy_policy_url.as_deref().map(str::trim) {
            None => {}
            Some("") => row.privacy_policy_url = None,
            Some(v) => row.privacy_policy_url = Some(policy_url(v)?),
        }
        if change.default_language.is_some() {
            row.default_language = language(change.default_language.as_deref())?;
        }
        let given = change.purposes.as_deref().unwrap_or_default();
        let known = r.purposes(id)?;
        // The purposes it keeps as they are, besides those given.
        let kept = known
            .iter()
            .filter(|k| !given.iter().any(|p| p.purpose == k.purpose))
            .count();
        let mut purposes = checked_purposes(given, kept)?;
        // A purpose it has keeps what the change does not give (its description, a label).
        for p in &mut purposes {
            if let Some(old) = known.iter().find(|k| k.purpose == p.purpose) {
                if p.description.is_empty() {
                    p.description = old.description.clone();
                }
                p.label_ja = p.label_ja.take().or_else(|| old.label_ja.clone());
                p.label_en = p.label_en.take().or_else(|| old.label_en.clone());
            }
        }
        r.update_tenant_profile(&row)?;
        for p in &purposes {
            r.put_purpose(id, p, now_millis())?;
        }
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
        let purposes = r.purposes(id)?.into_iter().map(definition).collect();
        Ok(view(row, purposes))
    })
}

/// A page of all tenants (for admins), oldest first, after the id `after`.
pub fn tenants(
    store: &Store,
    after: Option<&str>,
    limit: Option<i64>,
) -> Result<TenantPage, DomainError> {
    let limit = crate::page_limit(limit).map_err(DomainError::Invalid)?;
    store.read(|r| {
        let after = crate::checked_cursor(after).map_err(DomainError::Malformed)?;
        let rows = r.tenants_after(after, limit)?;
        let next_after = crate::next_cursor(&rows, limit, |t| t.id.clone());
        let tenants = rows
            .into_iter()
            .map(|row| {
                let purposes = r.purposes(&row.id)?.into_iter().map(definition).collect();
                Ok::<_, DomainError>(view(row, purposes))
            })
            .collect::<Result<_, _>>()?;
        Ok(TenantPage {
            tenants,
            next_after,
        })
    })
}

fn view(row: TenantRow, purposes: Vec<PurposeDefinition>) -> Tenant {
    Tenant {
        id: row.id,
        name: row.name,
        legal_name: row.legal_name,
        postal_address: row.postal_address,
        complaint_contact: row.complaint_contact,
        optout_contact: row.optout_contact,
        responsible_party: row.responsible_party,
        phone: row.phone,
        privacy_policy_url: row.privacy_policy_url,
        default_language: row.default_language,
        legal_hold: row.legal_hold,
        purposes,
        created_at: rfc3339(row.created_at),
    }
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
    let purposes: Vec<String> = r
        .purposes(tenant_id)?
        .into_iter()
        .map(|p| p.purpose)
        .collect();
    if purposes.is_empty() && r.tenant(tenant_id)?.is_none() {
        return Err(no_tenant());
    }
    Ok(purposes)
}

/// A purpose as the API shows it.
pub(crate) fn definition(row: PurposeRow) -> PurposeDefinition {
    PurposeDefinition {
        purpose: row.purpose,
        description: row.description,
        label_ja: row.label_ja,
        label_en: row.label_en,
    }
}

/// Purposes to add or change, checked (keys, lengths, each once), as rows; `existing` is how
/// many the tenant will have besides the new ones, for the limit.
fn checked_purposes(
    given: &[PurposeDefinition],
    existing: usize,
) -> Result<Vec<PurposeRow>, DomainError> {
    if existing + given.len() > MAX_PURPOSES {
        return Err(DomainError::Invalid(format!(
            "a tenant has at most {MAX_PURPOSES} purposes"
        )));
    }
    let mut rows: Vec<PurposeRow> = Vec::new();
    for p in given {
        check_purpose_key(&p.purpose)?;
        if rows.iter().any(|r| r.purpose == p.purpose) {
            return Err(DomainError::Invalid(format!(
                "purpose {:?} is given twice",
                p.purpose
            )));
        }
        if p.description.chars().count() > 500 {
            return Err(DomainError::Invalid(
                "a purpose description is at most 500 characters".into(),
            ));
        }
        rows.push(PurposeRow {
            purpose: p.purpose.clone(),
            description: p.description.trim().to_string(),
            label_ja: optional_text("label_ja", p.label_ja.as_deref(), 100)?,
            label_en: optional_text("label_en", p.label_en.as_deref(), 100)?,
        });
    }
    Ok(rows)
}

/// An opt-out contact recipients can use (ordinance Art. 9): an `https:` URL, an e-mail address
/// (bare or as a `mailto:` URI) or a telephone number (digits with `+`, `-`, spaces or
/// parentheses, or a `tel:` URI). Any other scheme (`javascript:`, `http:`, `data:`, …) is
/// refused: the footer makes it a link.
pub(crate) fn optout_contact(value: &str) -> Result<String, DomainError> {
    let value = text("optout_contact", value, 500)?;
    if contact_kind(&value).is_some() {
        Ok(value)
    } else {
        Err(DomainError::Invalid(format!(
            "optout_contact must be an https: URL, an e-mail address (or mailto:) or a telephone \
             number, not {value:?}"
        )))
    }
}

/// A telephone number for enquiries, as given.
fn phone(value: &str) -> Result<String, DomainError> {
    let value = text("phone", value, 30)?;
    match contact_kind(&value) {
        Some("tel") => Ok(value),
        _ => Err(DomainError::Invalid(format!(
            "phone must be a telephone number (10–15 digits, e.g. 03-1234-5678 or +81 3 1234 5678), not {value:?}"
        ))),
    }
}

/// A privacy policy's URL: `https:`.
fn policy_url(value: &str) -> Result<String, DomainError> {
    let value = text("privacy_policy_url", value, 500)?;
    match contact_kind(&value) {
        Some("url") => Ok(value),
        _ => Err(DomainError::Invalid(format!(
            "privacy_policy_url must be an https: URL, not {value:?}"
        ))),
    }
}

/// What kind of link a contact is: `url` (https), `mailto` or `tel`; `None` for anything else.
pub(crate) fn contact_kind(value: &str) -> Option<&'static str> {
    let lower = value.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("https://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let plain = !host.is_empty() && !value.contains(char::is_whitespace) && !host.contains('@');
        return plain.then_some("url");
    }
    let address = lower.strip_prefix("mailto:").unwrap_or(&lower);
    if EmailAddress::parse(address).is_ok() && !address.contains(char::is_whitespace) {
        return Some("mailto");
    }
    let number = lower.strip_prefix("tel:").unwrap_or(&lower);
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let phone = number
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')'))
        && (number.starts_with('+') || number.starts_with('0') || number.starts_with('('))
        && (10..=15).contains(&digits);
    phone.then_some("tel")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_optout_contact_is_a_url_an_address_or_a_number() {
        for (contact, kind) in [
            ("https://shop.example.jp/unsubscribe", "url"),
            ("stop@shop.example.jp", "mailto"),
            ("mailto:stop@shop.example.jp", "mailto"),
            ("03-1234-5678", "tel"),
            ("+81 3 1234 5678", "tel"),
            ("tel:0120-123-456", "tel"),
        ] {
            assert_eq!(contact_kind(contact), Some(kind), "{contact}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "http://shop.example.jp/unsubscribe",
            "data:text/html,hi",
            "https://",
            "https://a b",
            "call us",
            "12345",
        ] {
            assert!(optout_contact(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_purpose_reads_as_its_label_in_the_language() {
        let p = PurposeDefinition {
            purpose: "newsletter".into(),
            description: "月刊ニュースレター".into(),
            label_ja: Some("メールマガジン".into()),
            label_en: Some("Newsletter".into()),
        };
        assert_eq!(
            (p.label("ja"), p.label("en")),
            ("メールマガジン", "Newsletter")
        );
        let bare = PurposeDefinition {
            label_ja: None,
            label_en: None,
            description: String::new(),
            ..p
        };
        assert_eq!(bare.label("en"), "newsletter");
    }
}
