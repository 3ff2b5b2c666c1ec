//! Signup forms on senders' pages: publishable keys (created for browser origins, revoked,
//! looked up) and the parts a signup becomes — its consent screen as a collection point and a
//! pending opt-in. Not here: CORS and rate limits (`api::signup`).

use super::model::*;
use super::{known_purposes, plain_id, SIGNUP_FORM_PREFIX};
use crate::error::DomainError;

use crate::now_millis;
use crate::store::{Repo, Store};

/// Creates a publishable key for a tenant's signup forms on `origins`.
pub fn create_publishable_key(
    store: &Store,
    tenant_id: &str,
    origins: &[String],
) -> Result<PublishableKey, DomainError> {
    if origins.is_empty() || origins.len() > 20 {
        return Err(DomainError::Invalid(
            "give 1–20 origins, like https://shop.example.jp".into(),
        ));
    }
    let origins = origins
        .iter()
        .map(|o| browser_origin(o))
        .collect::<Result<Vec<_>, _>>()?;
    let mut random = [0u8; 18];
    getrandom::fill(&mut random).expect("the OS has randomness");
    let key = format!(
        "pk_{}",
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, random)
    );
    let row = crate::store::PublishableKeyRow {
        id: key,
        tenant_id: tenant_id.to_string(),
        origins: serde_json::to_string(&origins).expect("strings"),
        created_at: now_millis(),
        revoked_at: None,
    };
    store.write(|r: &mut Repo<'_>| {
        known_purposes(r, tenant_id)?;
        Ok::<_, DomainError>(r.insert_publishable_key(&row)?)
    })?;
    Ok(key_view(row))
}

fn key_view(row: crate::store::PublishableKeyRow) -> PublishableKey {
    PublishableKey {
        origins: serde_json::from_str(&row.origins).unwrap_or_default(),
        key: row.id,
        tenant: row.tenant_id,
        created_at: crate::rfc3339(row.created_at),
        revoked_at: row.revoked_at.map(crate::rfc3339),
    }
}

/// A page of a tenant's publishable keys (revoked ones too), oldest first, after `after`.
pub fn publishable_keys(
    store: &Store,
    tenant_id: &str,
    after: Option<&str>,
    limit: Option<i64>,
) -> Result<PublishableKeyPage, DomainError> {
    let limit = crate::page_limit(limit).map_err(DomainError::Invalid)?;
    // The cursor is `<created_at ms>.<key>`.
    let after = match after {
        None => (i64::MIN, ""),
        Some(cursor) => cursor
            .split_once('.')
            .and_then(|(at, key)| Some((at.parse().ok()?, key)))
            .filter(|(_, key)| plain_id(key))
            .ok_or_else(|| {
                DomainError::Invalid("after: pass the next_after of the previous page".into())
            })?,
    };
    let rows = store.read(|r: &mut Repo<'_>| {
        Ok::<_, DomainError>(r.tenant_publishable_keys(tenant_id, after, limit)?)
    })?;
    Ok(PublishableKeyPage {
        next_after: crate::next_cursor(&rows, limit, |k| format!("{}.{}", k.created_at, k.id)),
        keys: rows.into_iter().map(key_view).collect(),
    })
}

/// An origin as browsers send it (`https://host[:port]`, lower case, default port omitted), or why
/// it is not one. Plain `http` only for exactly localhost, 127.0.0.1 or [::1].
pub(super) fn browser_origin(origin: &str) -> Result<String, DomainError> {
    let bad = || {
        DomainError::Invalid(format!(
            "{origin:?} is not an origin: use https://host[:port] (http:// only for localhost), with no path"
        ))
    };
    let url = url::Url::parse(origin).map_err(|_| bad())?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && local);
    let bare = url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if !scheme_ok || !bare || url.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    Ok(url.origin().ascii_serialization())
}

/// Revokes a tenant's publishable key: signups with it stop at once.
pub fn revoke_publishable_key(
    store: &Store,
    tenant_id: &str,
    key: &str,
) -> Result<(), DomainError> {
    let revoked = plain_id(key)
        && store.write(|r: &mut Repo<'_>| {
            Ok::<_, DomainError>(r.revoke_publishable_key(tenant_id, key, now_millis())?)
        })?;
    if revoked {
        Ok(())
    } else {
        Err(DomainError::NotFound(
            "no such active publishable key for this tenant".into(),
        ))
    }
}

/// The publishable key `key`, if it exists and is not revoked.
pub fn publishable_key(store: &Store, key: &str) -> Result<Option<PublishableKey>, DomainError> {
    if !key.starts_with("pk_") || key.len() > 64 || !plain_id(key) {
        return Ok(None);
    }
    store.read(|r| Ok(r.publishable_key(key)?.map(key_view)))
}

/// A signup's collection point (the consent text as shown, under the key's own name, with the
/// tenant's legal name as the sender shown) and its pending opt-in (collection point still unset).
/// Nothing here comes from the page except the address, purposes, text, box state and language.
pub fn signup_parts(
    signup: Signup,
    key: &str,
    tenant_legal_name: &str,
    evidence: Evidence,
) -> Result<(NewCollectionPoint, NewEvent), DomainError> {
    if !matches!(signup.language.as_str(), "ja" | "en") {
        return Err(DomainError::Invalid("language must be ja or en".into()));
    }
    let form = NewCollectionPoint {
        name: format!("{SIGNUP_FORM_PREFIX}{key}"),
        channel: Method::WebForm,
        content_type: "text/plain; charset=utf-8".into(),
        content: Some(signup.consent_text),
        content_base64: None,
        sender_name_shown: tenant_legal_name.to_string(),
        prechecked: signup.prechecked,
        language: signup.language,
    };
    let event = NewEvent {
        event: EventKind::OptIn,
        email: signup.email,
        purposes: Purposes::List(signup.purposes),
        basis: Some(Basis::Consent),
        method: Method::WebForm,
        collection_point: None,
        received_by: Receiver {
            role: ReceiverRole::Sender,
            name: tenant_legal_name.to_string(),
        },
        occurred_at: None,
        confirmation_required: true,
        evidence: Some(evidence),
    };
    Ok((form, event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_strict_and_normalised() {
        assert_eq!(
            browser_origin("https://Shop.Example.jp:443").unwrap(),
            "https://shop.example.jp"
        );
        assert_eq!(
            browser_origin("http://localhost:3000").unwrap(),
            "http://localhost:3000"
        );
        for bad in [
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "http://shop.example.jp",
            "https://shop.example.jp/path",
            "https://user@shop.example.jp",
            "https://:",
            "shop.example.jp",
            "https://shop.example.jp?x=1",
            "ftp://shop.example.jp",
        ] {
            assert!(browser_origin(bad).is_err(), "{bad}");
        }
    }
}
