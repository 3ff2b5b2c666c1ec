//! Opt-out webhooks: a tenant registers https endpoints; every opt-out is announced to each,
//! signed, so the sender's mail system suppresses the address at once.
//!
//! - The delivery row (the outbox) is written by the opt-out's own log entry, in the same
//!   transaction as its leaf: an acknowledged opt-out is never left unannounced.
//! - The [`Worker`] thread sends due deliveries (a lease on each, so processes sharing the
//!   database do not send one twice; up to eight endpoints at once, each stopping at its first
//!   failure, so a dead endpoint delays only its own), retries failures with back-off for about
//!   two days, and keeps every outcome on the row: that is the delivery log.
//! - Signature: header `Consent-Ledger-Signature: t=<unix seconds>,v1=<hex>`, where `hex` is
//!   HMAC-SHA256 with the webhook's secret over `"<t>.<body>"`. Receivers check it and refuse
//!   old timestamps.
//!
//! No HTTP server code here (`api/unsubscribe.rs`); the client is `ureq`.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::egress::{self, Lookup, PinnedResolver, SystemLookup};
use crate::consent::outbox::ERASED;
use crate::consent::{new_id, plain_id};
use crate::error::DomainError;
use crate::log::hash::hmac_sha256;
use crate::store::{Attempt, DeliveryRow, Store, WebhookRow};
use crate::{now_millis, rfc3339};

/// Most active webhooks per tenant.
pub const MAX_WEBHOOKS: usize = 10;
/// The signature header.
pub const SIGNATURE_HEADER: &str = "Consent-Ledger-Signature";
/// Waits between attempts, in seconds; after the last, delivery is given up.
const BACKOFF_SECS: [i64; 14] = [
    10, 30, 120, 600, 1800, 3600, 7200, 14_400, 28_800, 43_200, 43_200, 43_200, 43_200, 43_200,
];
/// How long a worker holds a delivery it is sending: well beyond the request's timeout.
const LEASE_MS: i64 = 120_000;
/// The longest a delivery request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Endpoints served at once by one poll of the worker.
const MAX_PARALLEL_ENDPOINTS: usize = 8;
/// How often the worker looks for due deliveries.
const POLL: Duration = Duration::from_millis(200);

/// A webhook registration.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where opt-outs are POSTed: `https://…` (`http://` only to this machine, for development).
    #[schema(example = "https://mailer.example.jp/hooks/opt-out")]
    pub url: String,
}

/// A webhook.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Webhook {
    /// Id.
    pub id: String,
    /// Endpoint.
    pub url: String,
    /// Registered at (RFC 3339).
    pub created_at: String,
    /// The signing secret, base64: shown once, when the webhook is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// One opt-out's delivery to one webhook: the delivery log.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Delivery {
    /// Id (also sent as `Webhook-Id`, for the receiver to drop repeats).
    pub id: String,
    /// The opt-out event.
    pub event_id: String,
    /// `pending`, `delivered`, `failed` (given up) or `erased`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// Last HTTP status received.
    pub last_status: Option<i32>,
    /// Last failure.
    pub last_error: Option<String>,
    /// When it was delivered (RFC 3339).
    pub delivered_at: Option<String>,
    /// When the next attempt is due (RFC 3339).
    pub next_attempt_at: Option<String>,
    /// When the opt-out was recorded (RFC 3339).
    pub created_at: String,
}

/// A page of deliveries.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    /// Oldest first.
    pub deliveries: Vec<Delivery>,
    /// Pass as `after` for the next page; absent on the last.
    pub next: Option<String>,
}

fn view(row: WebhookRow, secret: Option<String>) -> Webhook {
    Webhook {
        id: row.id,
        url: row.url,
        created_at: rfc3339(row.created_at),
        secret,
    }
}

/// Checks a webhook URL's form: https (http only where loopback is allowed, for development and
/// tests), a host, no credentials. Where it may connect is `egress`'s rule.
fn url_rules(url: &str, allow_loopback: bool) -> Result<url::Url, String> {
    if url.len() > 2000 {
        return Err("longer than 2,000 characters".into());
    }
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    if parsed.host().is_none() {
        return Err("no host".into());
    }
    match parsed.scheme() {
        "https" => {}
        "http" if allow_loopback => {}
        _ => return Err("use https://".into()),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("no credentials in the URL; verify the signature instead".into());
    }
    Ok(parsed)
}

/// Checks a webhook URL: its form, and every address its host resolves to by `lookup` must be
/// public (http:// only to this machine): the worker must not be a way into the operator's
/// network. The worker checks again on every connection, in the same lookup it connects by.
fn endpoint(url: &str, lookup: &dyn Lookup, allow_loopback: bool) -> Result<url::Url, DomainError> {
    let bad = |why: &str| DomainError::Invalid(format!("webhook url {url:?}: {why}"));
    let parsed = url_rules(url, allow_loopback).map_err(|e| bad(&e))?;
    let host = parsed.host_str().ok_or_else(|| bad("no host"))?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses = egress::checked(lookup, host, port, allow_loopback).map_err(|e| bad(&e))?;
    if parsed.scheme() == "http" && !addresses.iter().all(|a| a.ip().is_loopback()) {
        return Err(bad("use https:// (http:// only to this machine)"));
    }
    Ok(parsed)
}

/// Registers a webhook; the answer carries its secret, shown this once.
pub fn register(
    store: &Store,
    tenant_id: &str,
    input: NewWebhook,
    allow_loopback: bool,
) -> Result<Webhook, DomainError> {
    let url = endpoint(input.url.trim(), &SystemLookup, allow_loopback)?.to_string();
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("the OS has randomness");
    let row = WebhookRow {
        id: new_id(),
        tenant_id: tenant_id.to_string(),
        url,
        secret: secret.to_vec(),
        created_at: now_millis(),
        disabled_at: None,
    };
    store.write(|r| {
        crate::consent::known_purposes(r, tenant_id)?;
        if r.tenant_webhooks(tenant_id)?.len() >= MAX_WEBHOOKS {
            return Err(DomainError::Conflict(format!(
                "a tenant has at most {MAX_WEBHOOKS} webhooks; remove one first"
            )));
        }
        r.insert_webhook(&row)?;
        Ok(())
    })?;
    Ok(view(row, Some(STANDARD.encode(secret))))
}

/// A tenant's active webhooks (without secrets).
pub fn list(store: &Store, tenant_id: &str) -> Result<Vec<Webhook>, DomainError> {
    store.read(|r| {
        Ok(r.tenant_webhooks(tenant_id)?
            .into_iter()
            .map(|row| view(row, None))
            .collect())
    })
}

/// Removes a tenant's webhook: no more deliveries are made to it.
pub fn remove(store: &Store, tenant_id: &str, id: &str) -> Result<(), DomainError> {
    let removed = plain_id(id)
        && store
            .write(|r| Ok::<_, DomainError>(r.disable_webhook(tenant_id, id, now_millis())?))?;
    if removed {
        Ok(())
    } else {
        Err(DomainError::NotFound(format!("no active webhook {id:?}")))
    }
}

/// A webhook's deliveries after `after`, oldest first.
pub fn deliveries(
    store: &Store,
    tenant_id: &str,
    id: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<DeliveryPage, DomainError> {
    let limit = limit.clamp(1, 1000);
    store.read(|r| {
        let hook = if plain_id(id) { r.webhook(id)? } else { None };
        if hook.is_none_or(|h| h.tenant_id != tenant_id) {
            return Err(DomainError::NotFound(format!("no webhook {id:?}")));
        }
        let rows = r.deliveries(id, after.unwrap_or(""), i64::from(limit))?;
        let next = (rows.len() == limit as usize)
            .then(|| rows.last().map(|d| d.id.clone()))
            .flatten();
        let deliveries = rows
            .into_iter()
            .map(|d| Delivery {
                status: match (d.delivered_at, d.next_attempt_at) {
                    (Some(_), _) => "delivered",
                    (None, Some(_)) => "pending",
                    (None, None) if d.last_error.as_deref() == Some(ERASED) => "erased",
                    (None, None) => "failed",
                }
                .into(),
                id: d.id,
                event_id: d.event_id,
                attempts: d.attempts,
                last_status: d.last_status,
                last_error: d.last_error,
                delivered_at: d.delivered_at.map(rfc3339),
                next_attempt_at: d.next_attempt_at.map(rfc3339),
                created_at: rfc3339(d.created_at),
            })
            .collect();
        Ok(DeliveryPage { deliveries, next })
    })
}

/// The signature header's value for `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &[u8], timestamp: i64, body: &str) -> String {
    let tag = hmac_sha256(secret, format!("{timestamp}.{body}").as_bytes());
    format!("t={timestamp},v1={}", crate::hex(&tag))
}

/// The thread that sends due deliveries; stops when dropped.
pub struct Worker {
    _stop: mpsc::Sender<()>,
}

impl Worker {
    /// Starts the worker on `store`; `allow_loopback` lets it reach http:// on this machine
    /// (development and tests only).
    pub fn start(store: Store, allow_loopback: bool) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let agent = client(Arc::new(SystemLookup), allow_loopback);
        std::thread::Builder::new()
            .name("webhook-worker".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(POLL) {
                    if let Err(e) = send_due(&store, &agent, allow_loopback) {
                        tracing::warn!(error = %e, "webhook deliveries: will retry");
                    }
                }
            })?;
        Ok(Self { _stop: stop })
    }
}

/// The webhook client: no redirects, a deadline, no proxy (one from the environment would
/// resolve the target itself, past the check), and the egress resolver, so it connects only to
/// addresses checked in the lookup it connects by.
fn client(lookup: Arc<dyn Lookup>, allow_loopback: bool) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent("consent-ledger-webhooks/1")
        .build();
    ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        PinnedResolver::new(lookup, allow_loopback),
    )
}

/// Sends what is due now; returns how many were attempted.
fn send_due(
    store: &Store,
    agent: &ureq::Agent,
    allow_loopback: bool,
) -> Result<usize, DomainError> {
    let now = now_millis();
    let due = store.read(|r| Ok::<_, DomainError>(r.due_deliveries(now, 64)?))?;
    // One thread per endpoint (at most a few): a slow or dead endpoint holds up only its own
    // deliveries, and stops at its first failure (the rest wait for their back-off).
    let mut by_hook: std::collections::BTreeMap<String, Vec<DeliveryRow>> = Default::default();
    for delivery in due {
        by_hook
            .entry(delivery.webhook_id.clone())
            .or_default()
            .push(delivery);
    }
    let attempted = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::Mutex::new(None::<DomainError>);
    std::thread::scope(|scope| {
        for (_, deliveries) in by_hook.into_iter().take(MAX_PARALLEL_ENDPOINTS) {
            let (attempted, failed) = (&attempted, &failed);
            scope.spawn(move || {
                for delivery in deliveries {
                    match send_one(store, agent, allow_loopback, &delivery) {
                        Ok(Some(outcome)) => {
                            attempted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if outcome.delivered_at.is_none() {
                                break;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            *failed.lock().expect("error slot") = Some(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    match failed.into_inner().expect("error slot") {
        Some(e) => Err(e),
        None => Ok(attempted.into_inner()),
    }
}

/// Sends one delivery if this worker gets its lease; the recorded outcome, or `None` if another
/// worker has it.
fn send_one(
    store: &Store,
    agent: &ureq::Agent,
    allow_loopback: bool,
    delivery: &DeliveryRow,
) -> Result<Option<Attempt>, DomainError> {
    let Some(due_at) = delivery.next_attempt_at else {
        return Ok(None);
    };
    // Lease it (from the clock now, not the poll's): another process polling the same database
    // skips it while we send.
    let lease = now_millis() + LEASE_MS;
    let leased = store
        .autocommit(|r| Ok::<_, DomainError>(r.lease_delivery(&delivery.id, due_at, lease)?))?;
    if !leased {
        return Ok(None);
    }
    let hook = store.read(|r| Ok::<_, DomainError>(r.webhook(&delivery.webhook_id)?))?;
    let attempts = delivery.attempts + 1;
    let outcome = match (&hook, &delivery.body) {
        (Some(hook), Some(body)) if hook.disabled_at.is_none() => 'send: {
            // The form again (the setting may have changed); where it resolves to now is
            // checked by the client's resolver, in the lookup it connects by.
            if let Err(e) = url_rules(&hook.url, allow_loopback) {
                break 'send retry(attempts, None, format!("not sent: webhook url: {e}"));
            }
            let timestamp = now_millis() / 1000;
            let sent = agent
                .post(&hook.url)
                .header("Content-Type", "application/json")
                .header("Webhook-Id", &delivery.id)
                .header(SIGNATURE_HEADER, &signature(&hook.secret, timestamp, body))
                .send(body.as_str());
            match sent {
                Ok(response) if response.status().is_success() => Attempt {
                    attempts,
                    next_attempt_at: None,
                    delivered_at: Some(now_millis()),
                    status: Some(i32::from(response.status().as_u16())),
                    error: None,
                },
                Ok(response) => retry(
                    attempts,
                    Some(i32::from(response.status().as_u16())),
                    format!("answered {}", response.status()),
                ),
                // Classes only: the delivery log must not map the network for its reader.
                Err(ureq::Error::Timeout(_)) => retry(attempts, None, "timed out".into()),
                Err(ureq::Error::HostNotFound) => retry(
                    attempts,
                    None,
                    "not sent: the host did not resolve to a public address".into(),
                ),
                Err(_) => retry(attempts, None, "could not connect or send".into()),
            }
        }
        (_, None) => give_up(attempts, ERASED),
        _ => give_up(attempts, "the webhook was removed"),
    };
    store.autocommit(|r| Ok::<_, DomainError>(r.record_attempt(&delivery.id, &outcome)?))?;
    Ok(Some(outcome))
}

fn retry(attempts: i32, status: Option<i32>, error: String) -> Attempt {
    match BACKOFF_SECS.get(attempts as usize - 1) {
        Some(wait) => Attempt {
            attempts,
            next_attempt_at: Some(now_millis() + wait * 1000),
            delivered_at: None,
            status,
            error: Some(error),
        },
        None => Attempt {
            status,
            ..give_up(
                attempts,
                &format!("gave up after {attempts} attempts: {error}"),
            )
        },
    }
}

fn give_up(attempts: i32, why: &str) -> Attempt {
    Attempt {
        attempts,
        next_attempt_at: None,
        delivered_at: None,
        status: None,
        error: Some(why.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str, allow_loopback: bool) -> Result<url::Url, DomainError> {
        super::endpoint(url, &SystemLookup, allow_loopback)
    }

    #[test]
    fn endpoints_are_public_https_or_allowed_loopback_http() {
        assert!(
            endpoint("https://203.0.113.7/hook", false).is_err(),
            "documentation range"
        );
        assert!(endpoint("https://8.8.8.8/hook", false).is_ok());
        assert!(endpoint("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(endpoint("http://localhost/hook", true).is_ok());
        assert!(endpoint("http://[::1]/hook", true).is_ok());
        for bad in [
            "http://127.0.0.1:9000/hook",
            "https://127.0.0.1/hook",
            "https://10.0.0.8/hook",
            "https://192.168.1.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00::1]/hook",
            "https://[::ffff:10.0.0.1]/hook",
            "https://[64:ff9b::a00:1]/",
            "https://[::a00:1]/",
            "https://[2002:a00:1::]/",
            "https://[64:ff9b::7f00:1]/",
            "https://[fec0::1]/",
            "http://8.8.8.8/hook",
            "ftp://mailer.example.jp",
            "https://user:pw@8.8.8.8",
            "not a url",
        ] {
            assert!(endpoint(bad, false).is_err(), "{bad}");
        }
        assert!(
            endpoint("http://8.8.8.8/hook", true).is_err(),
            "http only to loopback"
        );
    }

    #[test]
    fn the_client_ignores_proxies_from_the_environment() {
        let agent = client(Arc::new(SystemLookup), false);
        assert!(agent.config().proxy().is_none());
        assert_eq!(agent.config().max_redirects(), 0);
    }

    #[test]
    fn signatures_cover_time_and_body() {
        let a = signature(b"secret", 1_700_000_000, "{}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, signature(b"secret", 1_700_000_001, "{}"));
        assert_ne!(a, signature(b"secret", 1_700_000_000, "{ }"));
        assert_ne!(a, signature(b"other", 1_700_000_000, "{}"));
    }

    #[test]
    fn back_off_ends() {
        assert!(retry(1, None, "x".into()).next_attempt_at.is_some());
        let last = retry(BACKOFF_SECS.len() as i32 + 1, Some(500), "x".into());
        assert!(last.next_attempt_at.is_none());
        assert_eq!(last.status, Some(500));
    }
}
