//! Browser signup forms: `POST /v1/signups/{publishable key}` records a *pending* opt-in (the
//! person confirms by the link mailed to them), from an allowed origin only (CORS per key),
//! rate-limited per key and per client. Publishable keys never read and never opt anyone out.
//! Also `POST /v1/publishable-keys` for a sender to create one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{delete, get, post, route, web, HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::access::{Access, Caller};
use super::consent::record_once;
use super::error::{ApiError, Problem};
use super::{short_query, AppState};
use crate::consent;
use crate::consent::model::{PublishableKey, PublishableKeyPage, Signup, SignupRecorded};

/// Largest signup body.
const MAX_SIGNUP_BYTES: usize = 16 << 10;

/// Token buckets per key: `rate` requests a second, bursts of `burst`. In memory, per process.
pub struct RateLimits {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

impl RateLimits {
    /// Takes one token from `key`'s bucket, or says how long to wait.
    pub fn take(&self, key: &str, rate: f64, burst: f64) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().expect("rate limit lock");
        if buckets.len() > 100_000 {
            buckets.clear();
        }
        let now = Instant::now();
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

/// The key and the request's origin, if that origin may use it.
async fn admitted(
    state: &AppState,
    key: &str,
    req: &HttpRequest,
) -> Result<(PublishableKey, String), ApiError> {
    let (store, k) = (state.store.clone(), key.to_string());
    let key = web::block(move || consent::publishable_key(&store, &k))
        .await??
        .ok_or_else(|| ApiError::NotFound("unknown or revoked publishable key".into()))?;
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .ok_or_else(|| {
            ApiError::Forbidden("signups come from a web page: the Origin header is missing".into())
        })?
        .to_string();
    if !key.origins.contains(&origin) {
        return Err(ApiError::Forbidden(format!(
            "origin {origin} may not use this key"
        )));
    }
    Ok((key, origin))
}

fn with_cors(mut response: HttpResponse, origin: Option<&str>) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after"),
        );
    }
    response
}

/// CORS preflight of a signup form
///
/// CORS preflight for a signup form: allowed only from the key's origins.
#[utoipa::path(options, path = "/v1/signups/{key}", tag = "recipients", params(("key" = String, Path, description = "The publishable key")),
    responses((status = 204, description = "Allowed"), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such publishable key", body = Problem, content_type = "application/problem+json")))]
#[route("/v1/signups/{key}", method = "OPTIONS")]
pub async fn signup_preflight(
    state: web::Data<AppState>,
    key: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    match admitted(&state, &key, &req).await {
        Ok((_, origin)) => {
            let mut response = HttpResponse::NoContent();
            response
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST"))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "content-type, idempotency-key",
                ))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
            with_cors(response.finish(), Some(&origin))
        }
        Err(e) => with_cors(e.error_response(), None),
    }
}

/// Record a browser signup
///
/// Record a signup from a browser form (publishable key): a pending opt-in, confirmed by the
/// person through the link the sender mails. The consent text becomes a collection point version.
/// `Idempotency-Key` makes retries safe.
#[utoipa::path(post, path = "/v1/signups/{key}", tag = "recipients", request_body = Signup,
    params(("key" = String, Path, description = "The publishable key"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = SignupRecorded), (status = 403, description = "Origin not allowed", body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 429, description = "Too many signups; see Retry-After", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/signups/{key}")]
pub async fn signup(
    state: web::Data<AppState>,
    key: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    // CORS headers only for an origin this key admits (never for one it refused).
    let (key, origin) = match admitted(&state, &key, &req).await {
        Ok(admitted) => admitted,
        Err(e) => return with_cors(e.error_response(), None),
    };
    let result = async {
        let client = super::request_ip(&state, &req)
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        for (bucket, rate, burst) in [
            (format!("{}|{client}", key.key), 2.0, 10.0),
            (key.key.clone(), 200.0, 400.0),
        ] {
            if let Err(wait) = state.rate_limits.take(&bucket, rate, burst) {
                return Err(ApiError::TooMany(wait.as_secs().max(1)));
            }
        }
        if body.len() > MAX_SIGNUP_BYTES {
            return Err(ApiError::TooLarge(format!(
                "a signup is at most {MAX_SIGNUP_BYTES} bytes"
            )));
        }
        let signup: Signup = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid signup: {e}")))?;
        let evidence = super::client_evidence(&state, &req, format!("signup form on {origin}"));
        let tenant = key.tenant.clone();
        let (store, t) = (state.store.clone(), tenant.clone());
        let legal_name = web::block(move || consent::tenant(&store, &t))
            .await??
            .legal_name;
        let (form, mut event) = consent::signup_parts(signup, &key.key, &legal_name, evidence)?;
        // Validate the event before anything is written (a bad signup leaves no trace in the log).
        let (store, t, probe) = (state.store.clone(), tenant.clone(), event.clone());
        web::block(move || consent::prepare_event(&store, &t, probe)).await??;
        // The form version (content-addressed: registering it again is a no-op).
        let (store, t) = (state.store.clone(), tenant.clone());
        event.collection_point = Some(
            match web::block(move || consent::prepare_signup_form(&store, &t, form)).await?? {
                Err(existing) => existing.id,
                Ok(entry) => {
                    let id = entry.id();
                    state
                        .log
                        .append_entries(vec![Box::new(entry) as Box<dyn crate::log::LogEntry>])
                        .await?;
                    id
                }
            },
        );
        let (store, t) = (state.store.clone(), tenant.clone());
        let scope = format!("pk:{}:", key.key);
        let response = record_once(
            &state,
            &tenant,
            &req,
            &body,
            crate::idempotency::AnswerShape::Signup,
            &scope,
            move || Ok(vec![consent::prepare_event(&store, &t, event)?]),
        )
        .await?;
        Ok::<_, ApiError>(response)
    }
    .await;
    match result {
        Ok(response) => with_cors(response, Some(&origin)),
        Err(e) => with_cors(e.error_response(), Some(&origin)),
    }
}

/// Origins for a new publishable key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"origins": ["https://shop.example.jp"]}))]
pub struct NewPublishableKey {
    /// Origins of the pages that may use it, e.g. `https://shop.example.jp`.
    pub origins: Vec<String>,
}

/// Create a publishable key
///
/// Create a publishable key for this sender's signup forms.
#[utoipa::path(post, path = "/v1/publishable-keys", tag = "consent", security(("bearer" = [])), request_body = NewPublishableKey,
    responses((status = 201, body = PublishableKey), (status = 403, body = Problem, content_type = "application/problem+json")))]
#[post("/v1/publishable-keys")]
pub async fn create_publishable_key(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<NewPublishableKey>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(None, Access::Write)?;
    let store = state.store.clone();
    let key =
        web::block(move || consent::create_publishable_key(&store, &tenant_id, &body.origins))
            .await??;
    Ok(HttpResponse::build(StatusCode::CREATED).json(key))
}

/// The signup part of the TypeScript SDK (`bindSignupForm`) as one ES module, built by
/// `npm run bundle` in sdk/typescript and checked there against a fresh build.
const SDK_JS: &str = include_str!("../../sdk/typescript/browser/sdk.js");

/// The browser SDK
///
/// The signup form binding of the TypeScript SDK as one ES module, for pages without a bundler:
/// `import { bindSignupForm } from "https://<ledger>/sdk.js"`. Served to any origin (CORS `*`:
/// it holds no secret), cached for an hour.
#[utoipa::path(get, path = "/sdk.js", tag = "recipients",
    responses((status = 200, description = "The module", content_type = "text/javascript", body = String,
               example = json!("function T(){return globalThis.crypto.randomUUID()}…export{$ as bindSignupForm,c as SIGNUP_EVENTS};"))))]
#[get("/sdk.js")]
pub async fn sdk_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(SDK_JS)
}

/// Publishable keys list query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeysQuery {
    /// The tenant (admins).
    pub tenant: Option<String>,
    /// The `next_after` of the previous page (absent: the first page).
    pub after: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// List publishable keys
///
/// The tenant's publishable keys, oldest first, revoked ones too (the tenant's senders; admins
/// name the tenant). Paginated with a cursor.
#[utoipa::path(get, path = "/v1/publishable-keys", tag = "consent", security(("bearer" = [])), params(KeysQuery),
    responses((status = 200, body = PublishableKeyPage), (status = 403, body = Problem, content_type = "application/problem+json")))]
#[get("/v1/publishable-keys")]
pub async fn list_publishable_keys(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<KeysQuery>,
) -> Result<HttpResponse, ApiError> {
    let KeysQuery {
        tenant,
        after,
        limit,
    } = query.into_inner();
    let tenant_id = caller.tenant(tenant.as_deref(), Access::Manage)?;
    let store = state.store.clone();
    let page = short_query(&state.store, move || {
        consent::publishable_keys(&store, &tenant_id, after.as_deref(), limit)
    })
    .await?;
    Ok(super::pagination::page(
        &req,
        page.next_after.as_deref(),
        &page,
    ))
}

/// Revoke a publishable key
///
/// Revoke a publishable key of this sender's tenant: signups with it stop at once.
#[utoipa::path(delete, path = "/v1/publishable-keys/{key}", tag = "consent", security(("bearer" = [])),
    params(("key" = String, Path, description = "The publishable key")),
    responses((status = 204, description = "Revoked"), (status = 403, body = Problem, content_type = "application/problem+json"),
              ))]
#[delete("/v1/publishable-keys/{key}")]
pub async fn revoke_publishable_key(
    caller: Caller,
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(None, Access::Write)?;
    let store = state.store.clone();
    web::block(move || consent::revoke_publishable_key(&store, &tenant_id, &key)).await??;
    Ok(HttpResponse::NoContent().finish())
}
