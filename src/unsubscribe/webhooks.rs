//! Consent webhooks: a tenant registers https endpoints, each subscribed to event types
//! ([`WebhookEvent`]: opt-outs, so the sender's mail system suppresses the address at once, and
//! opt-ins, pending browser signups with their confirmation link, confirmations); every such
//! event is announced to each, signed.
//!
//! - The delivery row (the outbox) is written by the event's own log entry, in the same
//!   transaction as its leaf: an acknowledged event is never left unannounced. A pending
//!   opt-in's confirmation link is added when it is sent, not stored.
//! - The [`Worker`] thread sends due deliveries (a lease on each, so processes sharing the
//!   database do not send one twice; up to eight endpoints at once, each stopping at its first
//!   failure, so a dead endpoint delays only its own), retries failures with back-off for about
//!   three days, and keeps every outcome on the row: that is the delivery log.
//! - Signature: header `Consent-Ledger-Signature: t=<unix seconds>,v1=<hex>`, where `hex` is
//!   HMAC-SHA256 keyed with the webhook's secret (the bytes its base64 decodes to) over
//!   `"<t>.<body>"`. After a rotation the old secret signs too, for the overlap asked: a second
//!   `v1=` (receivers accept the request if any `v1` matches). Receivers refuse old timestamps.
//! - A test delivery (`test`) is sent at once, through the same path, and not retried.
//!
//! No HTTP server code here (`api/unsubscribe.rs`); the client is `ureq`.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::egress::{self, Lookup, PinnedResolver, SystemLookup};
use crate::consent::links::Links;
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

/// Most hours a rotated secret keeps signing beside the new one: less than deliveries are
/// retried (about 76 hours), so a receiver that has switched to the new secret early still gets
/// every delivery in time.
pub const MAX_OVERLAP_HOURS: u32 = 72;

/// A consent event a webhook can subscribe to (the `type` of the delivery's body).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    /// An opt-out (withdrawal or refusal): suppress the address at once.
    OptOut,
    /// An opt-in recorded as given (no confirmation needed).
    OptIn,
    /// An opt-in waiting for the person's confirmation (double opt-in, e.g. a browser signup):
    /// the body carries `confirmation_url`, the link the sender mails to the person.
    PendingOptIn,
    /// A pending opt-in confirmed by the person.
    Confirmation,
}

impl WebhookEvent {
    /// The name in bodies and subscriptions.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::OptOut => "opt_out",
            WebhookEvent::OptIn => "opt_in",
            WebhookEvent::PendingOptIn => "pending_opt_in",
            WebhookEvent::Confirmation => "confirmation",
        }
    }
}

/// A webhook registration.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://mailer.example.jp/hooks/consent", "events": ["opt_out", "pending_opt_in"]}))]
pub struct NewWebhook {
    /// Where events are POSTed: `https://…` (`http://` only to this machine, for development).
    #[schema(max_length = 2000)]
    pub url: String,
    /// The event types to send (default: `["opt_out"]`).
    #[schema(min_items = 1)]
    pub events: Option<Vec<WebhookEvent>>,
}

/// A secret rotation.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"overlap_hours": 24}))]
pub struct SecretRotation {
    /// Hours the old secret keeps signing beside the new one, 0–72 (default 24): time to
    /// deploy the new secret to the receiver. A rotation during an overlap is refused (409).
    #[schema(minimum = 0, maximum = 72)]
    pub overlap_hours: Option<u32>,
}

/// A webhook.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "01939c6e-5f10-7a2b-8c3d-4e5f60718293", "url": "https://mailer.example.jp/hooks/consent",
    "events": ["opt_out"], "created_at": "2026-12-07T10:00:00.000Z"}))]
pub struct Webhook {
    /// Id.
    pub id: String,
    /// Endpoint.
    pub url: String,
    /// The event types it is sent.
    pub events: Vec<WebhookEvent>,
    /// Registered at (RFC 3339).
    pub created_at: String,
    /// Until when the secret from before the last rotation still signs too (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_until: Option<String>,
    /// The signing secret, base64 (the HMAC key is the 32 bytes it decodes to): shown once,
    /// when the webhook is created or its secret rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// One opt-out's delivery to one webhook: the delivery log.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "01939c71-0b1c-7d2e-8f30-415263748596", "event_id": "01939c70-2a4b-7c5d-9e6f-708192a3b4c5", "status": "delivered", "attempts": 1, "last_status": 204, "delivered_at": "2026-12-07T10:00:01.000Z", "created_at": "2026-12-07T10:00:00.120Z"}))]
pub struct Delivery {
    /// Id (also sent as `Webhook-Id`, for the receiver to drop repeats).
    pub id: String,
    /// The event announced (`test-…` for a test delivery).
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
#[schema(example = json!({"deliveries": [{"id": "01939c71-0b1c-7d2e-8f30-415263748596", "event_id": "01939c70-2a4b-7c5d-9e6f-708192a3b4c5", "status": "delivered", "attempts": 1, "last_status": 204, "delivered_at": "2026-12-07T10:00:01.000Z", "created_at": "2026-12-07T10:00:00.120Z"}]}))]
pub struct DeliveryPage {
    /// Oldest first.
    pub deliveries: Vec<Delivery>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// A page of webhooks.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"webhooks": [{"id": "01939c6f-1a2b-7c3d-8e4f-5a6b7c8d9e0f", "url": "https://mailer.example.jp/hooks/consent", "events": ["opt_out"], "created_at": "2026-12-07T10:00:00.000Z"}]}))]
pub struct WebhookPage {
    /// Active webhooks, oldest first (no secrets).
    pub webhooks: Vec<Webhook>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

fn view(row: WebhookRow, secret: Option<String>) -> Webhook {
    Webhook {
        events: subscribed(&row),
        id: row.id,
        url: row.url,
        created_at: rfc3339(row.created_at),
        previous_secret_until: row
            .previous_secret_until
            .filter(|until| *until > now_millis())
            .map(rfc3339),
        secret,
    }
}

/// The event types a webhook's row subscribes to.
pub(crate) fn subscribed(row: &WebhookRow) -> Vec<WebhookEvent> {
    serde_json::from_str(&row.events).unwrap_or_else(|_| vec![WebhookEvent::OptOut])
}

fn new_secret() -> [u8; 32] {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("the OS has randomness");
    secret
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
    let mut events = input.events.unwrap_or_else(|| vec![WebhookEvent::OptOut]);
    if events.is_empty() {
        return Err(DomainError::Invalid(
            "events: name at least one of opt_out, opt_in, pending_opt_in, confirmation".into(),
        ));
    }
    events.sort_by_key(|e| e.as_str());
    events.dedup();
    let secret = new_secret();
    let row = WebhookRow {
        id: new_id(),
        tenant_id: tenant_id.to_string(),
        url,
        secret: secret.to_vec(),
        created_at: now_millis(),
        disabled_at: None,
        events: serde_json::to_string(&events).expect("names serialise"),
        previous_secret: None,
        previous_secret_until: None,
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

/// A page of a tenant's active webhooks (without secrets), oldest first, after `after`.
pub fn list(
    store: &Store,
    tenant_id: &str,
    after: Option<&str>,
    limit: Option<i64>,
) -> Result<WebhookPage, DomainError> {
    let limit = crate::page_limit(limit).map_err(DomainError::Invalid)?;
    let after = crate::checked_cursor(after).map_err(DomainError::Malformed)?;
    let rows = store.read(|r| Ok::<_, DomainError>(r.webhooks_after(tenant_id, after, limit)?))?;
    Ok(WebhookPage {
        next_after: crate::next_cursor(&rows, limit, |w| w.id.clone()),
        webhooks: rows.into_iter().map(|row| view(row, None)).collect(),
    })
}

/// Rotates a webhook's secret: the new one (in the answer only) signs from now on, the old one
/// beside it for `overlap_hours` (default 24).
pub fn rotate_secret(
    store: &Store,
    tenant_id: &str,
    id: &str,
    rotation: SecretRotation,
) -> Result<Webhook, DomainError> {
    let hours = rotation.overlap_hours.unwrap_or(24);
    if hours > MAX_OVERLAP_HOURS {
        return Err(DomainError::Invalid(format!(
            "overlap_hours is 0–{MAX_OVERLAP_HOURS}"
        )));
    }
    let secret = new_secret();
    let until = now_millis() + i64::from(hours) * 3_600_000;
    let row = store.write(|r| {
        let current = if plain_id(id) { r.webhook(id)? } else { None };
        let Some(current) = current.filter(|h| h.tenant_id == tenant_id && h.disabled_at.is_none())
        else {
            return Err(DomainError::NotFound(format!("no active webhook {id:?}")));
        };
        // Overwriting the old secret mid-overlap would stop it at once, unannounced.
        if let Some(until) = current.previous_secret_until.filter(|u| *u > now_millis()) {
            return Err(DomainError::Conflict(format!(
                "the last rotation's overlap runs until {}: rotate again after it",
                rfc3339(until)
            )));
        }
        if !r.rotate_webhook_secret(tenant_id, id, &secret, until)? {
            return Err(DomainError::NotFound(format!("no active webhook {id:?}")));
        }
        Ok(r.webhook(id)?)
    })?;
    let row = row.ok_or_else(|| DomainError::NotFound(format!("no active webhook {id:?}")))?;
    Ok(view(row, Some(STANDARD.encode(secret))))
}

/// Sends a `test` delivery to a tenant's webhook at once, through the path real ones take (the
/// lease, the signature, the egress checks), and answers its outcome; it is not retried.
pub fn send_test(
    store: &Store,
    links: &Links,
    tenant_id: &str,
    id: &str,
    allow_loopback: bool,
) -> Result<Delivery, DomainError> {
    let now = now_millis();
    let event_id = format!("test-{}", new_id());
    let body = serde_json::json!({
        "type": "test",
        "tenant": tenant_id,
        "event_id": event_id,
        "recorded_at": rfc3339(now),
    });
    // Inserted as leased (due only after the lease): the worker never takes it; it is sent here.
    let row = DeliveryRow {
        id: new_id(),
        webhook_id: id.to_string(),
        subject_id: String::new(),
        event_id,
        body: Some(body.to_string()),
        attempts: 0,
        next_attempt_at: Some(now + LEASE_MS),
        delivered_at: None,
        last_status: None,
        last_error: None,
        created_at: now,
    };
    store.write(|r| {
        let hook = if plain_id(id) { r.webhook(id)? } else { None };
        if hook.is_none_or(|h| h.tenant_id != tenant_id || h.disabled_at.is_some()) {
            return Err(DomainError::NotFound(format!("no active webhook {id:?}")));
        }
        Ok(r.insert_deliveries(std::slice::from_ref(&row))?)
    })?;
    let agent = client(Arc::new(SystemLookup), allow_loopback);
    let sent = send_one(store, &agent, links, allow_loopback, &row)?;
    if let Some(outcome) = sent.filter(|o| o.next_attempt_at.is_some()) {
        // Not retried: the answer is the outcome.
        let error = outcome.error.unwrap_or_default();
        let last = Attempt {
            status: outcome.status,
            ..give_up(outcome.attempts, &format!("test, not retried: {error}"))
        };
        store.autocommit(|r| Ok::<_, DomainError>(r.record_attempt(&row.id, &last)?))?;
    }
    let delivered = store.read(|r| Ok::<_, DomainError>(r.delivery(&row.id)?))?;
    delivered
        .map(delivery_view)
        .ok_or_else(|| DomainError::NotFound("the test delivery is gone".into()))
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
    limit: Option<i64>,
) -> Result<DeliveryPage, DomainError> {
    let limit = crate::page_limit(limit).map_err(DomainError::Invalid)?;
    store.read(|r| {
        let hook = if plain_id(id) { r.webhook(id)? } else { None };
        if hook.is_none_or(|h| h.tenant_id != tenant_id) {
            return Err(DomainError::NotFound(format!("no webhook {id:?}")));
        }
        let after = crate::checked_cursor(after).map_err(DomainError::Malformed)?;
        let rows = r.deliveries(id, after, limit)?;
        let next_after = crate::next_cursor(&rows, limit, |d| d.id.clone());
        let deliveries = rows.into_iter().map(delivery_view).collect();
        Ok(DeliveryPage {
            deliveries,
            next_after,
        })
    })
}

fn delivery_view(d: DeliveryRow) -> Delivery {
    Delivery {
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
    }
}

/// The signature header's value for `body` sent at `timestamp` (Unix seconds): one `v1` per
/// secret that signs (the current one, and a rotated one during its overlap).
pub fn signature(secrets: &[&[u8]], timestamp: i64, body: &str) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        let tag = hmac_sha256(secret, format!("{timestamp}.{body}").as_bytes());
        header.push_str(",v1=");
        header.push_str(&crate::hex(&tag));
    }
    header
}

/// The body as sent: a pending opt-in's gets its confirmation link (made now, never stored),
/// if it is of the webhook's own tenant.
fn body_to_send(links: &Links, tenant_id: &str, stored: &str) -> String {
    let Ok(mut body) = serde_json::from_str::<serde_json::Value>(stored) else {
        return stored.to_string();
    };
    if body["type"] != WebhookEvent::PendingOptIn.as_str() || body["tenant"] != tenant_id {
        return stored.to_string();
    }
    let leaf = serde_json::json!({
        "event": "opt_in",
        "confirmation_required": true,
        "tenant": body["tenant"],
        "event_id": body["event_id"],
        "recorded_at": body["recorded_at"],
    });
    body["confirmation_url"] = links.confirmation_url(&leaf).into();
    body.to_string()
}

/// The thread that sends due deliveries; stops when dropped.
pub struct Worker {
    _stop: mpsc::Sender<()>,
}

impl Worker {
    /// Starts the worker on `store` (with `links` for pending opt-ins' confirmation links);
    /// `allow_loopback` lets it reach http:// on this machine (development and tests only).
    pub fn start(store: Store, links: Links, allow_loopback: bool) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let agent = client(Arc::new(SystemLookup), allow_loopback);
        std::thread::Builder::new()
            .name("webhook-worker".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(POLL) {
                    if let Err(e) = send_due(&store, &agent, &links, allow_loopback) {
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
    links: &Links,
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
                    match send_one(store, agent, links, allow_loopback, &delivery) {
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
    links: &Links,
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
            let now = now_millis();
            let timestamp = now / 1000;
            let body = body_to_send(links, &hook.tenant_id, body);
            let mut secrets = vec![hook.secret.as_slice()];
            if let (Some(old), Some(until)) = (&hook.previous_secret, hook.previous_secret_until) {
                if until > now {
                    secrets.push(old);
                }
            }
            let sent = agent
                .post(&hook.url)
                .header("Content-Type", "application/json")
                .header("Webhook-Id", &delivery.id)
                .header(SIGNATURE_HEADER, &signature(&secrets, timestamp, &body))
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
    crate::metrics::webhook_attempt(match (outcome.delivered_at, outcome.next_attempt_at) {
        (Some(_), _) => "delivered",
        (None, Some(_)) => "failed",
        (None, None) => "given_up",
    });
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
        let a = signature(&[b"secret"], 1_700_000_000, "{}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, signature(&[b"secret"], 1_700_000_001, "{}"));
        assert_ne!(a, signature(&[b"secret"], 1_700_000_000, "{ }"));
        assert_ne!(a, signature(&[b"other"], 1_700_000_000, "{}"));
    }

    #[test]
    fn a_rotated_secret_signs_beside_the_new_one() {
        let both = signature(&[b"new", b"old"], 1_700_000_000, "{}");
        let new = signature(&[b"new"], 1_700_000_000, "{}");
        let old = signature(&[b"old"], 1_700_000_000, "{}");
        let v1 = |h: &str| h.split_once(",v1=").unwrap().1.to_string();
        assert_eq!(both, format!("{new},v1={}", v1(&old)));
    }

    #[test]
    fn a_pending_opt_in_is_sent_with_its_confirmation_link() {
        let links = Links::new([7u8; 32], "https://ledger.example.jp");
        let stored = serde_json::json!({"type": "pending_opt_in", "tenant": "t", "event_id": "e",
            "recorded_at": "2026-12-07T10:00:00.000Z"})
        .to_string();
        let sent: serde_json::Value =
            serde_json::from_str(&body_to_send(&links, "t", &stored)).unwrap();
        let url = sent["confirmation_url"].as_str().unwrap();
        assert!(
            url.starts_with("https://ledger.example.jp/confirm/"),
            "{url}"
        );
        let opt_out = serde_json::json!({"type": "opt_out", "tenant": "t"}).to_string();
        assert_eq!(body_to_send(&links, "t", &opt_out), opt_out);
        // Another tenant's webhook gets no link for it.
        assert_eq!(body_to_send(&links, "other", &stored), stored);
    }

    #[test]
    fn back_off_ends() {
        assert!(retry(1, None, "x".into()).next_attempt_at.is_some());
        let last = retry(BACKOFF_SECS.len() as i32 + 1, Some(500), "x".into());
        assert!(last.next_attempt_at.is_none());
        assert_eq!(last.status, Some(500));
    }
}
