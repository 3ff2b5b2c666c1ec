//! HTTP for unsubscribing: links and headers for a campaign, the inbound unsubscribe mail, the
//! display notice, webhooks and their delivery log; and [`unsubscribe_once`], which every
//! unsubscribe path (one-click, the page's button, a mail) goes through. The recipients' page
//! itself is in `pages.rs`; the rules are in `crate::unsubscribe`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::http::header;
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{Access, Caller};
use super::error::{ApiError, Problem};
use super::pagination::{self, PageQuery};
use super::{short_query, AppState};
use crate::consent::links::UnsubscribeToken;
use crate::consent::model::{Evidence, Method};
use crate::log::LogEntry;
use crate::unsubscribe::webhooks::{
    self, Delivery, DeliveryPage, NewWebhook, SecretRotation, Webhook, WebhookPage,
};
use crate::unsubscribe::{self, DisplayNotice, LinkBatch, LinkRequest, Prepared, Scope};

/// Largest body of `POST /v1/unsubscribe-links` (10,000 addresses).
const MAX_LINK_REQUEST_BYTES: usize = 2 << 20;
/// Largest inbound unsubscribe mail (a hand-written reply may quote a whole message; only the
/// header section is read).
const MAX_MAIL_BYTES: usize = 2 << 20;
/// Requests per second (and burst) through one unsubscribe link.
const PER_LINK: (f64, f64) = (5.0, 50.0);

/// One lock per subject (or per link), so that a flood of unsubscribes for one recipient records
/// one opt-out, and a double click on a confirmation link one confirmation: the rest wait, then
/// find it done and answer with it.
#[derive(Default)]
pub struct SubjectLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl SubjectLocks {
    pub(super) async fn run<T>(&self, subject: &str, f: impl std::future::Future<Output = T>) -> T {
        /// Drops the map's entry once nobody holds or awaits it — also when the request is
        /// cancelled mid-way (a client that hung up).
        struct Release<'a> {
            locks: &'a SubjectLocks,
            subject: &'a str,
            lock: Option<Arc<tokio::sync::Mutex<()>>>,
        }
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                let mut locks = self.locks.locks.lock().expect("subject locks");
                let lock = self.lock.take();
                // The map's and ours: nobody else waits, so the entry can go.
                if lock.is_some_and(|l| Arc::strong_count(&l) == 2) {
                    locks.remove(self.subject);
                }
            }
        }
        let lock = self
            .locks
            .lock()
            .expect("subject locks")
            .entry(subject.to_string())
            .or_default()
            .clone();
        let release = Release {
            locks: self,
            subject,
            lock: Some(lock.clone()),
        };
        let out = {
            let _held = lock.lock().await;
            f.await
        };
        drop(lock);
        drop(release);
        out
    }
}

/// The result of an unsubscribe.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"unsubscribed": true, "since": "2026-12-07T10:00:00.120Z", "event_id": "01939c70-2a4b-7c5d-9e6f-708192a3b4c5", "leaf_index": 812}))]
pub struct Unsubscribed {
    /// True: mail covered by the link is stopped.
    pub unsubscribed: bool,
    /// When it took effect (RFC 3339).
    pub since: String,
    /// The opt-out recorded now; absent when it was stopped already (nothing recorded).
    pub event_id: Option<String>,
    /// Its leaf in the log.
    pub leaf_index: Option<u64>,
}

/// Records the opt-out a link asks for, at most once per subject at a time: returns when it took
/// effect. Rate-limited per link for what would write.
pub(super) async fn unsubscribe_once(
    state: &AppState,
    target: UnsubscribeToken,
    scope: Scope,
    method: Method,
    evidence: Evidence,
) -> Result<Unsubscribed, ApiError> {
    let subject = target.subject_id.clone();
    state
        .unsubscribe_locks
        .run(&subject, async {
            let store = state.store.clone();
            let prepared = super::short_query(&state.store, move || {
                unsubscribe::prepare(&store, target, scope, method, evidence)
            })
            .await?;
            match prepared {
                Prepared::AlreadyStopped(since) => Ok(Unsubscribed {
                    unsubscribed: true,
                    since,
                    event_id: None,
                    leaf_index: None,
                }),
                Prepared::Record(entry) => {
                    let appended = state
                        .log
                        .append_entries(vec![entry as Box<dyn LogEntry>])
                        .await?;
                    let recorded = crate::consent::recorded(&appended[0], &state.links);
                    Ok(Unsubscribed {
                        unsubscribed: true,
                        since: recorded.recorded_at,
                        event_id: Some(recorded.event_id),
                        leaf_index: Some(recorded.leaf_index),
                    })
                }
            }
        })
        .await
}

/// A public unsubscribe request's link, under the limits of the public endpoints: per link (token) always, generous — a person
/// clicks a few times, a mail provider once; per IP address only for tokens that are not valid
/// (guessing), so that a valid one-click is never refused for its neighbours' traffic (mail
/// providers send from few addresses; behind a proxy all share one). IPv6 by /64.
///
/// Returns what the token names, checked once here for every public path.
pub(super) fn link(
    state: &AppState,
    req: &HttpRequest,
    token: &str,
) -> Result<UnsubscribeToken, ApiError> {
    let too_many = |wait: std::time::Duration| ApiError::TooMany(wait.as_secs().max(1));
    let (rate, burst) = PER_LINK;
    let link = crate::log::hash::leaf_hash(token.as_bytes());
    state
        .rate_limits
        .take(
            &format!("unsub-link:{}", B64.encode(&link[..12])),
            rate,
            burst,
        )
        .map_err(too_many)?;
    let target = unsubscribe::token(&state.links, token);
    if target.is_ok() || state.unsubscribe_per_ip == 0 {
        return Ok(target?);
    }
    let ip = match super::request_ip(state, req) {
        Some(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(ip) => ip.to_string(),
        None => String::new(),
    };
    let rate = f64::from(state.unsubscribe_per_ip);
    state
        .rate_limits
        .take(&format!("unsub-ip:{ip}"), rate, rate * 10.0)
        .map_err(too_many)?;
    Ok(target?)
}

/// Unsubscribe links and headers for a campaign
///
/// Unsubscribe links and their mail headers for a campaign's recipients (1–10,000). Each link
/// names the recipient by an opaque subject id (never the address), is signed, and works without
/// expiry unless `valid_days` (at least 60) is given. Its `GET` shows a page; its `POST` with
/// `List-Unsubscribe=One-Click` (RFC 8058) unsubscribes at once.
#[utoipa::path(post, path = "/v1/unsubscribe-links", tag = "unsubscribe", security(("bearer" = [])), request_body = LinkRequest,
    responses((status = 200, body = LinkBatch), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid addresses (listed in `errors`), unknown purpose", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/unsubscribe-links")]
pub async fn create_links(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(None, Access::Write)?;
    let request: LinkRequest = super::consent::json_body(&req, &body, MAX_LINK_REQUEST_BYTES)?;
    let (store, links, log) = (state.store.clone(), state.links.clone(), state.log.clone());
    let batch = web::block(move || {
        unsubscribe::create_links(&store, &links, log.labeler(), &tenant_id, request)
    })
    .await??;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(batch))
}

/// Record an inbound unsubscribe mail
///
/// Records the opt-out named by an inbound unsubscribe mail (the `mailto:` of
/// `List-Unsubscribe`), piped by the MTA as the raw RFC 5322 message. Idempotent.
#[utoipa::path(post, path = "/v1/unsubscribe-mail", tag = "unsubscribe", security(("bearer" = [])),
    request_body(content = String, content_type = "text/plain", description = "The raw message (any content type is taken, `message/rfc822` included)",
        example = json!("From: taro@example.jp\r\nTo: unsubscribe@ledger.example.jp\r\nSubject: eyJ0IjoiMDE5M…\r\nMessage-ID: <a1b2@example.jp>\r\n\r\nunsubscribe\r\n")),
    responses((status = 200, body = Unsubscribed), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, description = "The token is not valid", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "No token in the subject", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/unsubscribe-mail")]
pub async fn inbound_mail(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.admin()?;
    if body.len() > MAX_MAIL_BYTES {
        return Err(ApiError::TooLarge(format!(
            "an unsubscribe mail is at most {MAX_MAIL_BYTES} bytes"
        )));
    }
    let mail = unsubscribe::mail::parse(&body).map_err(|e| ApiError::Invalid(e.to_string()))?;
    let evidence = Evidence {
        ip: None,
        user_agent: None,
        confirmation_message_id: mail.message_id,
        note: Some("unsubscribe mail (List-Unsubscribe mailto)".into()),
        ..Default::default()
    };
    let target = unsubscribe::token(&state.links, &mail.token)?;
    let done = unsubscribe_once(&state, target, Scope::Purpose, Method::Email, evidence).await?;
    Ok(HttpResponse::Ok().json(done))
}

/// Display-notice query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoticeQuery {
    /// `ja` or `en` (default: the tenant's language).
    pub lang: Option<String>,
    /// A recipient: the notice then carries their unsubscribe link.
    pub email: Option<String>,
    /// With `email`: the purpose of the mail (the link offers to stop just it).
    pub purpose: Option<String>,
    /// The tenant (admins).
    pub tenant: Option<String>,
}

/// Display notice for a mail's footer
///
/// The footer every mail must carry (Art. 4): sender name, how to refuse further mail (the
/// recipient's unsubscribe link with `email=`, else the tenant's opt-out contact), postal
/// address, complaint contact — as text and HTML. 422 while the tenant profile lacks an item.
#[utoipa::path(get, path = "/v1/display-notice", tag = "unsubscribe", security(("bearer" = [])), params(NoticeQuery),
    responses((status = 200, body = DisplayNotice), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "The profile lacks a required item, or a bad value", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/display-notice")]
pub async fn display_notice(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, ApiError> {
    let NoticeQuery {
        lang,
        email,
        purpose,
        tenant,
    } = query.into_inner();
    let tenant_id = caller.tenant(tenant.as_deref(), Access::Manage)?;
    let (store, links, log) = (state.store.clone(), state.links.clone(), state.log.clone());
    let notice = web::block(move || {
        unsubscribe::display_notice(
            &store,
            &links,
            log.labeler(),
            &tenant_id,
            lang.as_deref(),
            email.as_deref(),
            purpose,
        )
    })
    .await??;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(notice))
}

/// Register a webhook
///
/// Registers a webhook: every consent event of the tenant of the types it subscribes to
/// (`events`, default `["opt_out"]`; `pending_opt_in` carries the `confirmation_url` to mail)
/// is POSTed to it as JSON, signed (`Consent-Ledger-Signature: t=<unix>,v1=<hex
/// HMAC-SHA256(key, "<t>.<body>")>`, the key being the bytes the base64 `secret` decodes to),
/// retried with back-off for about three days. The secret is in this answer only.
#[utoipa::path(post, path = "/v1/webhooks", tag = "unsubscribe", security(("bearer" = [])), request_body = NewWebhook,
    responses((status = 201, body = Webhook), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Too many webhooks", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Not an https URL", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/webhooks")]
pub async fn create_webhook(
    caller: Caller,
    state: web::Data<AppState>,
    input: web::Json<NewWebhook>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(None, Access::Write)?;
    let (store, loopback) = (state.store.clone(), state.webhooks_to_loopback);
    let hook =
        web::block(move || webhooks::register(&store, &tenant_id, input.into_inner(), loopback))
            .await??;
    Ok(HttpResponse::Created().json(hook))
}

/// List webhooks
///
/// The tenant's active webhooks, oldest first, without their secrets. Paginated with a cursor.
#[utoipa::path(get, path = "/v1/webhooks", tag = "unsubscribe", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = WebhookPage), (status = 403, body = Problem, content_type = "application/problem+json")))]
#[get("/v1/webhooks")]
pub async fn list_webhooks(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(None, Access::Write)?;
    let store = state.store.clone();
    let PageQuery { after, limit } = query.into_inner();
    let page = short_query(&state.store, move || {
        webhooks::list(&store, &tenant_id, after.as_deref(), limit)
    })
    .await?;
    Ok(pagination::page(&req, page.next_after.as_deref(), &page))
}

/// Rotate a webhook's secret
///
/// Rotates a webhook's secret: the new one (in this answer only) signs from now on; the old one
/// signs too, as a second `v1=` of the signature header, for `overlap_hours` (default 24), so
/// the receiver can switch without losing a delivery.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "unsubscribe", security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id")), request_body = SecretRotation,
    responses((status = 200, body = Webhook), (status = 403, body = Problem, content_type = "application/problem+json")))]
#[post("/v1/webhooks/{id}/rotate-secret")]
pub async fn rotate_webhook_secret(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    rotation: web::Json<SecretRotation>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(None, Access::Write)?;
    let store = state.store.clone();
    let hook = short_query(&state.store, move || {
        webhooks::rotate_secret(&store, &tenant_id, &id, rotation.into_inner())
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(hook))
}

/// Send a test delivery
///
/// Sends a test delivery (`{"type": "test", …}`, signed like every other) to the webhook now
/// and answers its outcome, as the delivery log keeps it; a failed test is not retried.
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "unsubscribe", security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = Delivery), (status = 403, body = Problem, content_type = "application/problem+json")))]
#[post("/v1/webhooks/{id}/test")]
pub async fn test_webhook(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(None, Access::Write)?;
    let (store, links, loopback) = (
        state.store.clone(),
        state.links.clone(),
        state.webhooks_to_loopback,
    );
    let delivery =
        web::block(move || webhooks::send_test(&store, &links, &tenant_id, &id, loopback))
            .await??;
    Ok(HttpResponse::Ok().json(delivery))
}

/// Remove a webhook
///
/// Removes a webhook: nothing more is sent to it.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "unsubscribe", security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 204, description = "Removed"), (status = 403, body = Problem, content_type = "application/problem+json"), ))]
#[delete("/v1/webhooks/{id}")]
pub async fn remove_webhook(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(None, Access::Write)?;
    let store = state.store.clone();
    web::block(move || webhooks::remove(&store, &tenant_id, &id)).await??;
    Ok(HttpResponse::NoContent().finish())
}

/// Delivery log of a webhook
///
/// A webhook's delivery log: each opt-out sent to it, attempts, last status, outcome.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "unsubscribe", security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id"), PageQuery),
    responses((status = 200, body = DeliveryPage), (status = 403, body = Problem, content_type = "application/problem+json"), ))]
#[get("/v1/webhooks/{id}/deliveries")]
pub async fn deliveries(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(None, Access::Write)?;
    let store = state.store.clone();
    let PageQuery { after, limit } = query.into_inner();
    let page =
        web::block(move || webhooks::deliveries(&store, &tenant_id, &id, after.as_deref(), limit))
            .await??;
    Ok(pagination::page(&req, page.next_after.as_deref(), &page))
}
