//! API tokens managed by their holders: an admin issues, lists and revokes any token; a sender
//! does so for its own tenant's sender tokens only; a regulator manages none (its tokens come
//! from an admin). The secret is in the issuing answer only. What a token may do once issued is
//! the domain operations' business, not this file's.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AuthError, Authority, Principal, Role};
use crate::store::{ApiTokenRow, Repo};

/// Longest name.
const MAX_NAME: usize = 100;
/// The lifetime when none is asked for, in days (or the cap, if shorter).
const DEFAULT_DAYS: u32 = 30;

/// A token to issue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "newsletter-mailer", "role": "sender", "expires_in_days": 30}))]
pub struct NewToken {
    /// What to call it (1–100 characters), e.g. the system that will hold it.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// What its holder may act as (default `sender`). Senders issue sender tokens only.
    pub role: Option<Role>,
    /// The tenant of a sender token (a sender's own, if omitted; an admin must name it).
    pub tenant: Option<String>,
    /// Lifetime in days (default 30; at most the service's `token_max_lifetime_days`).
    #[schema(minimum = 1, maximum = 3660)]
    pub expires_in_days: Option<u32>,
}

/// An issued token, without its secret.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "tok_019af3c2b1e4a1b2c3d4e5f60718", "name": "newsletter-mailer",
    "role": "sender", "tenant": "t_8f2a", "created_by": "tok_019af3b07c2d9e8f7a6b5c4d3e2f", "created_at": "2026-12-07T10:00:00.000Z",
    "expires_at": "2027-01-06T10:00:00.000Z", "status": "active"}))]
pub struct ApiToken {
    /// The token's id (its JWT `jti`); ids sort by creation.
    pub id: String,
    /// Its name.
    pub name: String,
    /// What its holder may act as.
    pub role: Role,
    /// The tenant of a sender token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Who issued it: the id of the token that asked (this one ends with it: it lives no longer
    /// and is revoked with it), or `operator` (the command line).
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
    /// RFC 3339, once revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
}

/// A newly issued token: its record and the secret, shown this once.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IssuedToken {
    /// The record.
    #[serde(flatten)]
    pub token: ApiToken,
    /// The bearer token itself: send it as `Authorization: Bearer <secret>`. It is not stored and
    /// cannot be shown again.
    pub secret: String,
}

/// A page of tokens, oldest first.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"tokens": [{"id": "tok_019af3c2b1e4a1b2c3d4e5f60718", "name": "newsletter-mailer", "role": "sender", "tenant": "01939c6e-5f10-7a2b-8c3d-4e5f60718293", "created_by": "tok_019af3b07c2d9e8f7a6b5c4d3e2f", "created_at": "2026-12-07T10:00:00.000Z", "expires_at": "2027-01-06T10:00:00.000Z", "status": "active"}]}))]
pub struct TokenPage {
    /// The tokens (revoked and expired ones too).
    pub tokens: Vec<ApiToken>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

fn view(row: ApiTokenRow, now: i64) -> ApiToken {
    let status = match (row.revoked_at, row.expires_at <= now) {
        (Some(_), _) => "revoked",
        (None, true) => "expired",
        (None, false) => "active",
    };
    ApiToken {
        role: Role::parse(&row.role).unwrap_or(Role::Regulator),
        id: row.id,
        name: row.name,
        tenant: row.tenant_id,
        created_by: row.created_by,
        created_at: crate::rfc3339(row.created_at),
        expires_at: crate::rfc3339(row.expires_at),
        revoked_at: row.revoked_at.map(crate::rfc3339),
        status: status.into(),
    }
}

/// The tenant whose tokens `by` manages: its own for a sender, any (or all: `None`) for an admin.
fn scope(by: &Principal, requested: Option<&str>) -> Result<Option<String>, AuthError> {
    match by.role {
        Role::Admin => Ok(requested.map(str::to_string)),
        Role::Sender => {
            let own = by.tenant.as_deref().unwrap_or_default();
            match requested {
                Some(other) if other != own => Err(AuthError::Forbidden(
                    "a sender token manages its own tenant's tokens only".into(),
                )),
                _ => Ok(Some(own.to_string())),
            }
        }
        Role::Regulator => Err(AuthError::Forbidden(
            "regulators do not manage tokens; an admin issues them".into(),
        )),
    }
}

/// Issues a token for `by`: an admin any role (a sender token for a tenant that exists), a
/// sender a sender token of its own tenant.
pub fn issue(
    authority: &Authority,
    by: &Principal,
    input: NewToken,
) -> Result<IssuedToken, AuthError> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(AuthError::Unacceptable(format!(
            "name is 1–{MAX_NAME} characters, no control characters"
        )));
    }
    let role = input.role.unwrap_or(Role::Sender);
    if by.role == Role::Sender && role != Role::Sender {
        return Err(AuthError::Forbidden(
            "a sender issues sender tokens only; an admin issues the others".into(),
        ));
    }
    let tenant = match (role, scope(by, input.tenant.as_deref())?) {
        (Role::Sender, None) => {
            return Err(AuthError::Unacceptable(
                "a sender token is bound to a tenant: name it with \"tenant\"".into(),
            ))
        }
        (Role::Sender, Some(tenant)) => Some(tenant),
        (_, Some(_)) if input.tenant.is_some() => {
            return Err(AuthError::Unacceptable(
                "only sender tokens are bound to a tenant: leave \"tenant\" out".into(),
            ))
        }
        _ => None,
    };
    if let Some(tenant) = &tenant {
        let known = authority
            .store()
            .read(|r: &mut Repo<'_>| Ok::<_, AuthError>(r.tenant(tenant)?.is_some()))?;
        if !known {
            return Err(AuthError::NotFound(format!("no tenant {tenant:?}")));
        }
    }
    let cap_days = (authority.max_lifetime().as_secs() / 86_400) as u32;
    let days = input.expires_in_days.unwrap_or(DEFAULT_DAYS.min(cap_days));
    if days == 0 || days > cap_days {
        return Err(AuthError::Unacceptable(format!(
            "expires_in_days is 1–{cap_days} (the service's token_max_lifetime_days)"
        )));
    }
    let ttl = Duration::from_secs(u64::from(days) * 86_400);
    // A token from before rows existed (no id) issues tokens of the operator's kind.
    let (secret, row) =
        authority.mint(role, tenant.as_deref(), name, by.token_id.as_deref(), ttl)?;
    Ok(IssuedToken {
        token: view(row, crate::now_millis()),
        secret,
    })
}

/// A page of the tokens `by` manages (an admin: all, or one tenant's), after the id `after`.
pub fn list(
    authority: &Authority,
    by: &Principal,
    tenant: Option<&str>,
    after: Option<&str>,
    limit: Option<i64>,
) -> Result<TokenPage, AuthError> {
    let tenant = scope(by, tenant)?;
    let limit = crate::page_limit(limit).map_err(AuthError::Unacceptable)?;
    if after
        .into_iter()
        .chain(tenant.as_deref())
        .any(|v| !crate::consent::plain_id(v))
    {
        return Err(AuthError::BadRequest(
            "after and tenant are ids: pass the next_after of the previous page, a tenant's id"
                .into(),
        ));
    }
    let rows = authority.store().read(|r: &mut Repo<'_>| {
        Ok::<_, AuthError>(r.api_tokens(tenant.as_deref(), after, limit)?)
    })?;
    let next_after = crate::next_cursor(&rows, limit, |r| r.id.clone());
    let now = crate::now_millis();
    Ok(TokenPage {
        tokens: rows.into_iter().map(|row| view(row, now)).collect(),
        next_after,
    })
}

/// Revokes a token `by` manages: refused from the next request on, by every process. Revoking
/// a revoked token changes nothing and answers the same.
pub fn revoke(authority: &Authority, by: &Principal, id: &str) -> Result<ApiToken, AuthError> {
    let tenant = scope(by, None)?;
    if !crate::consent::plain_id(id) {
        return Err(AuthError::NotFound(format!("no token {id:?}")));
    }
    let row = authority.store().write(|r: &mut Repo<'_>| {
        let Some(row) = r.api_token(id)? else {
            return Ok(None);
        };
        if tenant.is_some() && row.tenant_id != tenant {
            return Ok(None);
        }
        let now = crate::now_millis();
        r.revoke_api_token(id, now)?;
        // The tokens it issued, and theirs, end with it.
        let mut parents = vec![id.to_string()];
        while !parents.is_empty() {
            parents = r.revoke_children(&parents, now)?;
        }
        Ok::<_, AuthError>(r.api_token(id)?)
    })?;
    let row = row.ok_or_else(|| AuthError::NotFound(format!("no token {id:?}")))?;
    Ok(view(row, crate::now_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, tenant: Option<&str>) -> Principal {
        Principal {
            subject: "p".into(),
            role,
            tenant: tenant.map(str::to_string),
            token_id: None,
        }
    }

    #[test]
    fn a_sender_manages_its_own_tenant_only() {
        let sender = principal(Role::Sender, Some("t1"));
        assert_eq!(scope(&sender, None).unwrap().as_deref(), Some("t1"));
        assert_eq!(scope(&sender, Some("t1")).unwrap().as_deref(), Some("t1"));
        assert!(matches!(
            scope(&sender, Some("t2")),
            Err(AuthError::Forbidden(_))
        ));
    }

    #[test]
    fn an_admin_manages_all_and_a_regulator_none() {
        let admin = principal(Role::Admin, None);
        assert_eq!(scope(&admin, None).unwrap(), None);
        assert_eq!(scope(&admin, Some("t2")).unwrap().as_deref(), Some("t2"));
        assert!(matches!(
            scope(&principal(Role::Regulator, None), None),
            Err(AuthError::Forbidden(_))
        ));
    }

    #[test]
    fn status_reads_revocation_before_expiry() {
        let row = |expires_at, revoked_at| ApiTokenRow {
            id: "tok_1".into(),
            name: "n".into(),
            role: "sender".into(),
            tenant_id: Some("t".into()),
            created_by: "operator".into(),
            created_at: 0,
            expires_at,
            revoked_at,
            parent_id: None,
        };
        assert_eq!(view(row(10, None), 5).status, "active");
        assert_eq!(view(row(10, None), 10).status, "expired");
        assert_eq!(view(row(10, Some(3)), 20).status, "revoked");
    }
}
