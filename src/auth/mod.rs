//! Bearer tokens: JWTs the service signs itself with Ed25519 (`alg` pinned to EdDSA, `kid` in the
//! header), checked for signature, `aud`, `iss` and time: `exp`, `nbf`, an `iat` not in the
//! future, and a lifetime (`exp` − `iat`) within the configured cap. Keys live in the database, so
//! every process of one deployment accepts the same tokens; `rotate` adds a key that signs from
//! then on while older keys keep verifying until `retire`d — rotation without downtime: a token
//! whose `kid` is unknown here reloads the keys at once (each unknown `kid` at most once per
//! [`RELOAD_EVERY`]).
//!
//! Every token has a row (`api_tokens`, its `jti` the id): a token whose row is revoked or missing
//! is refused, on every process, from the next request on ([`Authority::ensure_live`] reads the
//! row on each request; the signature check alone is cached). Tokens from before rows existed
//! carry no `jti`: they end only with their key's retirement. Issuing, listing and revoking by
//! API (who may do what) is `tokens.rs`.
//!
//! Roles: `admin`, `sender` (bound to one tenant), `regulator` (read-only, any tenant). What each
//! role may do is decided by the domain operations, not here. No actix types here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64URL, Engine};
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{ApiTokenRow, Repo, Store, StoreError};

pub mod tokens;

/// The `aud` of every token.
pub const AUDIENCE: &str = "consent-ledger";
/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
const LEEWAY_SECS: u64 = 30;
/// One unknown `kid` reloads keys from the database at most this often.
const RELOAD_EVERY: Duration = Duration::from_secs(5);
/// Most unknown `kid`s remembered for throttling; beyond it (a flood of made-up ids) no reload.
const UNKNOWN_KIDS_LIMIT: usize = 1024;
/// Unknown `kid`s reload the keys at most this often in all (a flood of made-up ids costs the
/// database at most ten reads a second).
const UNKNOWN_RELOAD_GAP: Duration = Duration::from_millis(100);
/// Keys are reloaded at least this often (a key retired by another process stops working here).
const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// Most verified tokens remembered; the cache is emptied when full.
const VERIFIED_LIMIT: usize = 10_000;
/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410): what precedes the 32-byte seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// What a token holder may act as.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Operates the service.
    Admin,
    /// A sender organisation, bound to one tenant.
    Sender,
    /// A regulator: reads any tenant, writes nothing.
    Regulator,
}

impl Role {
    /// The role's name, as in tokens and rows.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Sender => "sender",
            Role::Regulator => "regulator",
        }
    }

    /// The role of a stored name.
    pub fn parse(name: &str) -> Option<Role> {
        [Role::Admin, Role::Sender, Role::Regulator]
            .into_iter()
            .find(|r| r.as_str() == name)
    }
}

/// The claims of our tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the service's origin.
    pub iss: String,
    /// Audience: [`AUDIENCE`].
    pub aud: String,
    /// Who the token was issued to (free text, for audit).
    pub sub: String,
    /// The role.
    pub role: Role,
    /// The tenant, for `sender` tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// Not valid before, Unix seconds (checked when present; ours never set it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// The token's id: its row in `api_tokens` (absent on tokens from before rows existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's subject.
    pub subject: String,
    /// The role.
    pub role: Role,
    /// The tenant of a `sender`.
    pub tenant: Option<String>,
    /// The token's id (`jti`), whose row must be live.
    pub token_id: Option<String>,
}

/// Authentication failures.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credentials were given where they are required.
    #[error("this endpoint needs a bearer token: send 'Authorization: Bearer <token>'")]
    Missing,
    /// The token is not one of ours, or is malformed, tampered with, expired or for another audience.
    #[error("the bearer token was refused: {0}")]
    Invalid(String),
    /// Issuing a token was asked with bad parameters.
    #[error("{0}")]
    BadRequest(String),
    /// A well-formed request with a value that is not acceptable (a name, a lifetime).
    #[error("{0}")]
    Unacceptable(String),
    /// The caller may not do this (e.g. a sender issuing an admin token).
    #[error("{0}")]
    Forbidden(String),
    /// No such token (or not one the caller may see).
    #[error("{0}")]
    NotFound(String),
    /// The service failed (no randomness, a bad stored key): not the caller's doing.
    #[error("{0}")]
    Internal(String),
    /// The key store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for AuthError {
    fn from(e: diesel::result::Error) -> Self {
        AuthError::Store(StoreError::Query(e))
    }
}

struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

fn key_from_seed(kid: String, seed: &[u8]) -> Result<Key, AuthError> {
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| AuthError::Internal("a stored key is not 32 bytes".into()))?;
    let public = SigningKey::from_bytes(&seed).verifying_key();
    let mut pkcs8 = PKCS8_ED25519_PREFIX.to_vec();
    pkcs8.extend_from_slice(&seed);
    Ok(Key {
        kid,
        encoding: EncodingKey::from_ed_der(&pkcs8),
        decoding: DecodingKey::from_ed_der(public.as_bytes()),
    })
}

/// Unknown `kid`s by when each last made us reload, and when any last did.
type UnknownKids = (HashMap<String, Instant>, Option<Instant>);

/// Verified tokens by SHA-256: who they speak for and when they expire (Unix seconds).
type VerifiedTokens = HashMap<[u8; 32], (Principal, u64)>;

/// Issues and verifies bearer tokens. Cheap to clone.
#[derive(Clone)]
pub struct Authority {
    store: Store,
    issuer: String,
    /// The longest lifetime a token may have.
    max_lifetime: Duration,
    /// Unretired keys, oldest first; the last one signs.
    keys: Arc<RwLock<Vec<Arc<Key>>>>,
    last_reload: Arc<Mutex<Instant>>,
    /// When each unknown `kid` last made us reload, and when any last did.
    unknown_kids: Arc<Mutex<UnknownKids>>,
    /// Tokens already verified (by SHA-256 of the token): principal and `exp`. Cleared when a
    /// reload finds the key set changed, so a retirement anywhere takes effect here within
    /// [`REFRESH_EVERY`].
    verified: Arc<Mutex<VerifiedTokens>>,
}

impl Authority {
    /// Loads the signing keys, creating the first one on first use. Tokens live at most
    /// `max_lifetime`.
    pub fn open(store: Store, issuer: &str, max_lifetime: Duration) -> Result<Self, AuthError> {
        let authority = Self {
            store,
            issuer: issuer.to_string(),
            max_lifetime,
            keys: Arc::default(),
            last_reload: Arc::new(Mutex::new(Instant::now())),
            unknown_kids: Arc::default(),
            verified: Arc::default(),
        };
        authority.store.write(|r: &mut Repo<'_>| {
            if r.active_auth_keys()?.is_empty() {
                insert_new_key(r)?;
            }
            Ok::<_, AuthError>(())
        })?;
        authority.reload()?;
        Ok(authority)
    }

    fn reload(&self) -> Result<(), AuthError> {
        let rows = self
            .store
            .read(|r| Ok::<_, AuthError>(r.active_auth_keys()?))?;
        let keys: Vec<Arc<Key>> = rows
            .into_iter()
            .map(|row| key_from_seed(row.kid, &row.seed).map(Arc::new))
            .collect::<Result<_, _>>()?;
        let mut current = self.keys.write().expect("keys lock");
        let ids = |keys: &[Arc<Key>]| keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>();
        // Remembered tokens stay good unless the key set changed (a key retired).
        if ids(&current) != ids(&keys) {
            self.verified.lock().expect("verified lock").clear();
        }
        *current = keys;
        drop(current);
        *self.last_reload.lock().expect("reload lock") = Instant::now();
        Ok(())
    }

    /// Issues a token as the operator (the command line, with the database at hand), named
    /// `subject`. `sender` tokens need a tenant; other roles must not have one.
    pub fn issue(
        &self,
        role: Role,
        tenant: Option<&str>,
        subject: &str,
        ttl: Duration,
    ) -> Result<String, AuthError> {
        self.mint(role, tenant, subject, None, ttl)
            .map(|(secret, _)| secret)
    }

    /// Issues a token named `name` and records its row; returns the secret, which is stored
    /// nowhere, and the row. Issued by the token `parent` (an API call), it lives no longer than
    /// that token and is revoked with it; without one it is the operator's.
    pub fn mint(
        &self,
        role: Role,
        tenant: Option<&str>,
        name: &str,
        parent: Option<&str>,
        ttl: Duration,
    ) -> Result<(String, ApiTokenRow), AuthError> {
        match (role, tenant) {
            (Role::Sender, None) => {
                return Err(AuthError::BadRequest(
                    "a sender token needs --tenant".into(),
                ))
            }
            (Role::Admin | Role::Regulator, Some(_)) => {
                return Err(AuthError::BadRequest(
                    "only sender tokens are bound to a tenant".into(),
                ))
            }
            _ => {}
        }
        if ttl.is_zero() {
            return Err(AuthError::BadRequest(
                "the token lifetime must be positive".into(),
            ));
        }
        if ttl > self.max_lifetime {
            return Err(AuthError::BadRequest(format!(
                "a token lives at most {} days (setting token_max_lifetime_days): ask for a shorter --ttl",
                self.max_lifetime.as_secs() / 86_400
            )));
        }
        let key = self
            .keys
            .read()
            .expect("keys lock")
            .last()
            .cloned()
            .expect("at least one key");
        // Under the writer lock, in one transaction: the parent is read live (a revocation
        // cascading to its children cannot slip between this check and the new row), and the row
        // is recorded before the secret is handed out (a token without its row is refused).
        self.store.write(|r: &mut Repo<'_>| {
            let now_ms = crate::now_millis();
            let now = (now_ms / 1000) as u64;
            let mut exp = now.saturating_add(ttl.as_secs());
            if let Some(parent) = parent {
                let row = r.api_token(parent)?.filter(|p| p.revoked_at.is_none());
                let row = row.ok_or_else(|| {
                    AuthError::Invalid("the issuing token was revoked, or has no record".into())
                })?;
                exp = exp.min((row.expires_at / 1000).max(0) as u64);
            }
            let row = ApiTokenRow {
                id: new_token_id(now_ms)?,
                name: name.to_string(),
                role: role.as_str().to_string(),
                tenant_id: tenant.map(str::to_string),
                created_by: parent.unwrap_or("operator").to_string(),
                // The token's own times (whole seconds), so the row says what the token says.
                created_at: (now as i64) * 1000,
                expires_at: (exp as i64).saturating_mul(1000),
                revoked_at: None,
                parent_id: parent.map(str::to_string),
            };
            let claims = Claims {
                iss: self.issuer.clone(),
                aud: AUDIENCE.into(),
                sub: name.into(),
                role,
                tenant: tenant.map(str::to_string),
                iat: now,
                exp,
                nbf: None,
                jti: Some(row.id.clone()),
            };
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(key.kid.clone());
            let secret = jsonwebtoken::encode(&header, &claims, &key.encoding)
                .map_err(|e| AuthError::Internal(format!("signing a token: {e}")))?;
            r.insert_api_token(&row)?;
            Ok((secret, row))
        })
    }

    /// Refuses a token whose row is revoked or missing (a token with no id, from before rows
    /// existed, passes). One indexed read: run it where a short query may run.
    pub fn ensure_live(&self, principal: &Principal) -> Result<(), AuthError> {
        let Some(id) = &principal.token_id else {
            return Ok(());
        };
        match self
            .store
            .read(|r| Ok::<_, AuthError>(r.api_token_revoked_at(id)?))?
        {
            Some(None) => Ok(()),
            Some(Some(_)) => Err(AuthError::Invalid("this token was revoked".into())),
            None => Err(AuthError::Invalid(
                "this token is not one the service issued (no record of its id)".into(),
            )),
        }
    }

    /// The store the token rows live in.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The longest lifetime a token may have.
    pub fn max_lifetime(&self) -> Duration {
        self.max_lifetime
    }

    /// Verifies a token and returns who it speaks for. A token verified before is recognised by
    /// its hash until it expires or the keys are reloaded (the signature check is the hot path's
    /// most expensive step).
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if self.last_reload.lock().expect("reload lock").elapsed() >= REFRESH_EVERY {
            self.reload()?;
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = (crate::now_millis() / 1000) as u64;
        if let Some((principal, exp)) = self.verified.lock().expect("verified lock").get(&digest) {
            if *exp + LEEWAY_SECS > now {
                return Ok(principal.clone());
            }
        }
        let (principal, exp) = self.verify_signed(token)?;
        let mut verified = self.verified.lock().expect("verified lock");
        if verified.len() >= VERIFIED_LIMIT {
            verified.clear();
        }
        verified.insert(digest, (principal.clone(), exp));
        Ok(principal)
    }

    fn verify_signed(&self, token: &str) -> Result<(Principal, u64), AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::Invalid(format!("malformed token ({e})")))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted; tokens are EdDSA",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("the token has no key id (kid)".into()))?;
        let key = match self.find(&kid) {
            Some(key) => key,
            None => {
                if self.reload_due_for(&kid) {
                    self.reload()?;
                }
                self.find(&kid)
                    .ok_or_else(|| AuthError::Invalid("unknown or retired signing key".into()))?
            }
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let claims = data.claims;
        let now = (crate::now_millis() / 1000) as u64;
        if claims.iat > now + LEEWAY_SECS {
            return Err(AuthError::Invalid(
                "the token was issued in the future (iat)".into(),
            ));
        }
        if claims.exp.saturating_sub(claims.iat) > self.max_lifetime.as_secs() + LEEWAY_SECS {
            return Err(AuthError::Invalid(format!(
                "the token lives longer than the {} days allowed (exp − iat)",
                self.max_lifetime.as_secs() / 86_400
            )));
        }
        if (claims.role == Role::Sender) != claims.tenant.is_some() {
            return Err(AuthError::Invalid(
                "the role and tenant claims disagree".into(),
            ));
        }
        let principal = Principal {
            subject: claims.sub,
            role: claims.role,
            tenant: claims.tenant,
            token_id: claims.jti,
        };
        Ok((principal, claims.exp))
    }

    /// Whether an unknown `kid` may reload the keys now: the first time it is seen, and again
    /// [`RELOAD_EVERY`] later, so a new key rotated in by another process works at once while a
    /// stream of one bad `kid` costs one reload per period.
    fn reload_due_for(&self, kid: &str) -> bool {
        let mut guard = self.unknown_kids.lock().expect("unknown kids lock");
        let (seen, last) = &mut *guard;
        if seen.get(kid).is_some_and(|t| t.elapsed() < RELOAD_EVERY)
            || last.is_some_and(|t| t.elapsed() < UNKNOWN_RELOAD_GAP)
        {
            return false;
        }
        *last = Some(Instant::now());
        if seen.len() >= UNKNOWN_KIDS_LIMIT {
            seen.retain(|_, t| t.elapsed() < RELOAD_EVERY);
            if seen.len() >= UNKNOWN_KIDS_LIMIT {
                return false;
            }
        }
        seen.insert(kid.to_string(), Instant::now());
        true
    }

    fn find(&self, kid: &str) -> Option<Arc<Key>> {
        self.keys
            .read()
            .expect("keys lock")
            .iter()
            .find(|k| k.kid == kid)
            .cloned()
    }

    /// Adds a new signing key (it signs from now on; older keys still verify). Returns its id.
    pub fn rotate(&self) -> Result<String, AuthError> {
        let kid = self.store.write(|r: &mut Repo<'_>| insert_new_key(r))?;
        self.reload()?;
        Ok(kid)
    }

    /// Retires a key: tokens it signed stop verifying. The newest key cannot be retired.
    pub fn retire(&self, kid: &str) -> Result<(), AuthError> {
        let newest = self
            .keys
            .read()
            .expect("keys lock")
            .last()
            .map(|k| k.kid.clone());
        if newest.as_deref() == Some(kid) {
            return Err(AuthError::BadRequest(
                "the newest key signs new tokens: rotate first, then retire the old one".into(),
            ));
        }
        let retired = self.store.write(|r: &mut Repo<'_>| {
            Ok::<_, AuthError>(r.retire_auth_key(kid, crate::now_millis())?)
        })?;
        if !retired {
            return Err(AuthError::BadRequest(format!("no active key {kid:?}")));
        }
        self.reload()
    }

    /// Ids of the unretired keys, oldest first (the last one signs).
    pub fn key_ids(&self) -> Vec<String> {
        self.keys
            .read()
            .expect("keys lock")
            .iter()
            .map(|k| k.kid.clone())
            .collect()
    }
}

fn insert_new_key(r: &mut Repo<'_>) -> Result<String, AuthError> {
    let mut seed = [0u8; 32];
    let mut id = [0u8; 9];
    getrandom::fill(&mut seed)
        .and_then(|_| getrandom::fill(&mut id))
        .map_err(|e| AuthError::Internal(format!("no randomness: {e}")))?;
    let kid = B64URL.encode(id);
    // Strictly after every active key, so "newest" is well defined even within one millisecond.
    let after_latest = r
        .active_auth_keys()?
        .iter()
        .map(|k| k.created_at + 1)
        .max()
        .unwrap_or(0);
    r.insert_auth_key(&kid, &seed, crate::now_millis().max(after_latest))?;
    Ok(kid)
}

/// A new token id: `tok_`, the creation time (ms, hex, fixed width: ids sort by creation) and
/// 64 random bits.
fn new_token_id(now_ms: i64) -> Result<String, AuthError> {
    // Within this process each id is greater than the one before, even in the same millisecond
    // (the random part counts up, as RFC 9562 §6.2 method 2 does for UUIDv7), so the token
    // list, paged by id, comes in the order tokens were made.
    static LAST: std::sync::Mutex<(u64, u64)> = std::sync::Mutex::new((0, 0));
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| AuthError::Internal(format!("no randomness: {e}")))?;
    let mut id = (now_ms.max(0) as u64, u64::from_be_bytes(random));
    {
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        if id <= *last {
            id = match last.1.checked_add(1) {
                Some(next) => (last.0, next),
                None => (last.0 + 1, 0),
            };
        }
        *last = id;
    }
    Ok(format!("tok_{:012x}{:016x}", id.0, id.1))
}

/// Parses a lifetime like `90s`, `15m`, `12h`, `30d`.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and a unit, like 30d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    let secs = number
        .checked_mul(seconds)
        .filter(|s| *s > 0 && *s <= 10 * 366 * 86_400);
    secs.map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?}: a lifetime is between 1s and 10 years"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_made_in_the_same_millisecond_sort_in_order() {
        let ids: Vec<String> = (0..2_000).map(|_| new_token_id(1_000).unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids
            .iter()
            .all(|id| id.len() == 4 + 12 + 16 && id.starts_with("tok_")));
    }

    #[test]
    fn ttl_parses_units_and_refuses_nonsense() {
        assert_eq!(parse_ttl("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("30d").unwrap(), Duration::from_secs(30 * 86_400));
        for bad in ["", "d", "10", "10w", "0s", "-1h", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pkcs8_prefix_makes_a_key_jsonwebtoken_accepts() {
        let key = key_from_seed("k".into(), &[3u8; 32]).unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("k".into());
        let claims = serde_json::json!({"sub": "x", "exp": 4_000_000_000u64});
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap();
        let mut v = Validation::new(Algorithm::EdDSA);
        v.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &key.decoding, &v).unwrap();
    }
}
