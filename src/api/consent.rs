//! HTTP handlers for consent records: tenants, collection points, events (with
//! `Idempotency-Key`), the send decision, a subject's history and the export. Thin: authenticate,
//! scope to a tenant, call [`crate::consent`] on the blocking pool (appends are awaited), render.

use actix_web::http::header;
use actix_web::{delete, get, patch, post, put, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{Access, Caller};
use super::error::{ApiError, Problem};
use super::pagination::ListFormat;
use super::AppState;
use crate::consent::{self, model::*};
use crate::idempotency::{self, AnswerShape, IdempotencyKey, Outcome};

/// Create a tenant
///
/// Create a tenant (admin).
#[utoipa::path(post, path = "/v1/tenants", tag = "consent", security(("bearer" = [])), request_body = NewTenant,
    responses((status = 201, body = Tenant), (status = 403, body = Problem, content_type = "application/problem+json"),
              ))]
#[post("/v1/tenants")]
pub async fn create_tenant(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<NewTenant>,
) -> Result<HttpResponse, ApiError> {
    caller.admin()?;
    let store = state.store.clone();
    let tenant = web::block(move || consent::create_tenant(&store, body.into_inner())).await??;
    Ok(HttpResponse::Created().json(tenant))
}

/// List tenants
///
/// All tenants, oldest first (admin). Paginated with a cursor.
#[utoipa::path(get, path = "/v1/tenants", tag = "consent", security(("bearer" = [])), params(super::pagination::PageQuery),
    responses((status = 200, body = TenantPage), (status = 403, body = Problem, content_type = "application/problem+json")))]
#[get("/v1/tenants")]
pub async fn list_tenants(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<super::pagination::PageQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.admin()?;
    let store = state.store.clone();
    let super::pagination::PageQuery { after, limit } = query.into_inner();
    let page = web::block(move || consent::tenants(&store, after.as_deref(), limit)).await??;
    Ok(super::pagination::page(
        &req,
        page.next_after.as_deref(),
        &page,
    ))
}

/// Read a tenant
///
/// A tenant: its display profile and purposes (admins, regulators, and the tenant's senders).
#[utoipa::path(get, path = "/v1/tenants/{id}", tag = "consent", security(("bearer" = [])),
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, body = Tenant), (status = 403, body = Problem, content_type = "application/problem+json"), ))]
#[get("/v1/tenants/{id}")]
pub async fn get_tenant(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(Some(&id), Access::Read)?;
    caller.audit(&state, &tenant_id, "tenant").await?;
    let store = state.store.clone();
    let tenant = web::block(move || consent::tenant(&store, &tenant_id)).await??;
    Ok(HttpResponse::Ok().json(tenant))
}

/// Change a tenant's display profile
///
/// Change a tenant's display profile (the tenant's senders, admins): the fields given replace
/// the stored ones. The display notice every mail carries is rendered from it.
#[utoipa::path(patch, path = "/v1/tenants/{id}", tag = "consent", security(("bearer" = [])), request_body = TenantProfile,
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, body = Tenant), (status = 403, body = Problem, content_type = "application/problem+json"), ))]
#[patch("/v1/tenants/{id}")]
pub async fn update_tenant(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    change: web::Json<TenantProfile>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(Some(&id), Access::Manage)?;
    let store = state.store.clone();
    let tenant =
        web::block(move || consent::update_tenant(&store, &tenant_id, change.into_inner()))
            .await??;
    Ok(HttpResponse::Ok().json(tenant))
}

/// A legal hold to put on or lift, and the order it follows (recorded in a `legal_hold` leaf).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"legal_hold": true, "order_date": "2026-12-01", "order_reference": "総務省 令和8年12月1日付 措置命令"}))]
pub struct LegalHold {
    /// True while a measures order (Art. 7) applies: records are then kept one year.
    pub legal_hold: bool,
    /// The date of the order that puts the hold on or lifts it, `YYYY-MM-DD`.
    pub order_date: String,
    /// The order's reference, e.g. its number (1–200 characters; no personal data: it goes
    /// in the log).
    pub order_reference: String,
}

/// Set or lift a legal hold
///
/// Put a tenant's legal hold on or lift it (admins and regulators), with the order it follows:
/// appends a `legal_hold` leaf to the tenant's hold chain.
#[utoipa::path(put, path = "/v1/tenants/{id}/legal-hold", tag = "consent", security(("bearer" = [])), request_body = LegalHold,
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, body = Tenant), (status = 403, body = Problem, content_type = "application/problem+json"),
              ))]
#[put("/v1/tenants/{id}/legal-hold")]
pub async fn set_legal_hold(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<LegalHold>,
) -> Result<HttpResponse, ApiError> {
    if caller.0.role == crate::auth::Role::Sender {
        return Err(ApiError::Forbidden(
            "a legal hold is set by an admin or a regulator".into(),
        ));
    }
    let body = body.into_inner();
    let change = consent::HoldChange {
        on: body.legal_hold,
        order_date: body.order_date,
        order_reference: body.order_reference,
    };
    let tenant = consent::set_legal_hold(&state.store, &state.log, &id, change).await?;
    Ok(HttpResponse::Ok().json(tenant))
}

/// Register a collection point version
///
/// Register a collection point version: the exact consent screen, form or template. Its id is
/// content-addressed; it becomes a log leaf, the start of its period of use. Registering an
/// existing version returns it (200). A new version does not retire older ones: several may be
/// in use at once; retire each when it is no longer shown.
#[utoipa::path(post, path = "/v1/collection-points", tag = "consent", security(("bearer" = [])), request_body = NewCollectionPoint,
    responses((status = 201, body = CollectionPoint), (status = 200, description = "Already registered", body = CollectionPoint),
              (status = 403, body = Problem, content_type = "application/problem+json"), ))]
#[post("/v1/collection-points")]
pub async fn register_collection_point(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<NewCollectionPoint>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(None, Access::Write)?;
    let (created, version) =
        consent::register_collection_point(&state.store, &state.log, &tenant_id, body.into_inner())
            .await?;
    Ok(match created {
        true => HttpResponse::Created().json(version),
        false => HttpResponse::Ok().json(version),
    })
}

/// A page of collection point versions.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CollectionPointQuery {
    /// Only the versions of this name.
    pub name: Option<String>,
    /// Cursor: `next_after` of the previous page.
    pub after: Option<u64>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The tenant (regulators and admins).
    pub tenant: Option<String>,
}

/// List collection point versions
///
/// The tenant's collection point versions in registration order, each with its period of use.
/// Paginated with a cursor.
#[utoipa::path(get, path = "/v1/collection-points", tag = "consent", security(("bearer" = [])), params(CollectionPointQuery),
    responses((status = 200, body = CollectionPointPage), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
#[get("/v1/collection-points")]
pub async fn list_collection_points(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<CollectionPointQuery>,
) -> Result<HttpResponse, ApiError> {
    let CollectionPointQuery {
        name,
        after,
        limit,
        tenant,
    } = query.into_inner();
    let tenant_id = caller.tenant(tenant.as_deref(), Access::Read)?;
    let store = state.store.clone();
    let page = web::block(move || {
        consent::collection_points(&store, &tenant_id, name.as_deref(), after, limit)
    })
    .await??;
    let next = page.next_after.map(|n| n.to_string());
    Ok(super::pagination::page(&req, next.as_deref(), &page))
}

/// Read a collection point version
///
/// One collection point version, with its content and its period of use.
#[utoipa::path(get, path = "/v1/collection-points/{id}", tag = "consent", security(("bearer" = [])),
    params(("id" = String, Path, description = "The version's id"), TenantQuery),
    responses((status = 200, body = CollectionPoint), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
#[get("/v1/collection-points/{id}")]
pub async fn read_collection_point(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<TenantQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(query.tenant.as_deref(), Access::Read)?;
    let store = state.store.clone();
    let version = web::block(move || consent::collection_point(&store, &tenant_id, &id)).await??;
    Ok(HttpResponse::Ok().json(version))
}

/// Retire a collection point version
///
/// Retire a collection point version: the end of its period of use, a
/// `collection_point_retired` leaf. From then on a consent naming it is refused (422), unless it
/// claims a time before the retirement (an import, a late record). Retiring a retired version
/// changes nothing.
#[utoipa::path(post, path = "/v1/collection-points/{id}/retire", tag = "consent", security(("bearer" = [])),
    params(("id" = String, Path, description = "The version's id")),
    responses((status = 200, body = CollectionPoint), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
#[post("/v1/collection-points/{id}/retire")]
pub async fn retire_collection_point(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(None, Access::Write)?;
    let version =
        consent::retire_collection_point(&state.store, &state.log, &tenant_id, &id).await?;
    Ok(HttpResponse::Ok().json(version))
}

/// Largest body of `POST /v1/events`.
const MAX_EVENT_BYTES: usize = 64 << 10;
/// Largest body of `POST /v1/events:batch`.
const MAX_BATCH_BYTES: usize = 2 << 20;

/// The request's `Idempotency-Key`, scoped for its kind of caller (`api:`, `pk:<key>:`).
pub(super) fn idempotency_key(
    req: &HttpRequest,
    scope: &str,
) -> Result<Option<IdempotencyKey>, ApiError> {
    req.headers()
        .get("idempotency-key")
        .map(|v| IdempotencyKey::parse(scope, v.as_bytes()))
        .transpose()
        .map_err(ApiError::from)
}

/// A recorded request's answer: 201, marked when it is a replay of the first.
pub(super) fn created(outcome: Outcome) -> HttpResponse {
    match outcome {
        Outcome::Recorded(answer) => HttpResponse::Created().json(answer),
        Outcome::Replayed(answer) => HttpResponse::Created()
            .insert_header(("idempotent-replayed", "true"))
            .json(answer),
    }
}

/// Records what `prepare` validates once per Idempotency-Key (`idempotency::record_once`).
pub(super) async fn record_once<P>(
    state: &AppState,
    tenant_id: &str,
    req: &HttpRequest,
    body: &web::Bytes,
    shape: AnswerShape,
    scope: &str,
    prepare: P,
) -> Result<HttpResponse, ApiError>
where
    P: FnOnce() -> Result<Vec<consent::ConsentEventEntry>, ApiError> + Send + 'static,
{
    let key = idempotency_key(req, scope)?;
    let outcome = idempotency::record_once(
        &state.store,
        &state.log,
        &state.links,
        tenant_id,
        key,
        body,
        shape,
        prepare,
    )
    .await?;
    Ok(created(outcome))
}

pub(super) fn json_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    body: &[u8],
    limit: usize,
) -> Result<T, ApiError> {
    if body.len() > limit {
        return Err(ApiError::TooLarge(format!(
            "this endpoint takes at most {limit} bytes"
        )));
    }
    if !req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        return Err(ApiError::BadRequest(
            "send JSON with Content-Type: application/json".into(),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid request body: {e}")))
}

/// Record a consent event
///
/// Record one consent event: `opt_in`, `opt_out` or `confirm`. Answered (201) only once the
/// event is durably in the log. Send `Idempotency-Key` to make retries safe: the first answer is
/// replayed; the same key with another body is a 409.
#[utoipa::path(post, path = "/v1/events", tag = "consent", security(("bearer" = [])), request_body = NewEvent,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe (1–255 ASCII characters)")),
    responses((status = 201, body = RecordedEvent), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Nothing to confirm, or an Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid address, unknown purpose, unknown collection point, …", body = Problem, content_type = "application/problem+json"),
              ))]
#[post("/v1/events")]
pub async fn record_event(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(None, Access::Write)?;
    let input: Result<NewEvent, ApiError> = json_body(&req, &body, MAX_EVENT_BYTES);
    let (store, tenant) = (state.store.clone(), tenant_id.clone());
    record_once(
        &state,
        &tenant_id,
        &req,
        &body,
        AnswerShape::Event,
        "api:",
        move || Ok(vec![consent::prepare_event(&store, &tenant, input?)?]),
    )
    .await
}

/// Record a batch of consent events
///
/// Record up to 1,000 events at once, in order, all or none (imports, busy forms). Every event is
/// validated first; if any is invalid nothing is recorded and the problem lists each (`errors`).
#[utoipa::path(post, path = "/v1/events:batch", tag = "consent", security(("bearer" = [])), request_body = EventBatch,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = RecordedBatch), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid events, listed in `errors`", body = Problem, content_type = "application/problem+json"),
              ))]
#[post("/v1/events:batch")]
pub async fn record_events(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(None, Access::Write)?;
    let batch: Result<EventBatch, ApiError> = json_body(&req, &body, MAX_BATCH_BYTES);
    let (store, tenant) = (state.store.clone(), tenant_id.clone());
    record_once(
        &state,
        &tenant_id,
        &req,
        &body,
        AnswerShape::Batch,
        "api:",
        move || Ok(consent::prepare_events(&store, &tenant, batch?)?),
    )
    .await
}

/// Largest import body.
const MAX_IMPORT_BYTES: usize = 64 << 20;

/// The format of an import.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `jsonl` (one event per line, as for `POST /v1/events` plus a required `occurred_at`) or
    /// `csv` (header row: event, email, purposes, basis, occurred_at, received_by_role,
    /// received_by_name, collection_point).
    pub format: String,
}

/// Import legacy consent records
///
/// Import legacy consent records (up to 100,000, 64 MiB): every line is validated first; if any is
/// invalid nothing is written and the problem lists each line (`errors[].index` is the line
/// number). Imported events keep their original `occurred_at` and are marked `method: import`.
#[utoipa::path(post, path = "/v1/events:import", tag = "consent", security(("bearer" = [])), params(ImportQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body(content = String, content_type = "text/plain", description = "JSON Lines (format=jsonl), or CSV with a header row (format=csv); any content type is accepted",
        example = json!("{\"event\": \"opt_in\", \"email\": \"taro@example.jp\", \"purposes\": [\"newsletter\"], \"method\": \"paper\", \"received_by\": {\"role\": \"sender\", \"name\": \"Sakura Shop K.K.\"}, \"occurred_at\": \"2021-04-01T10:00:00+09:00\"}\n")),
    responses((status = 201, body = ImportSummary), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid lines, listed in `errors`", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/events:import")]
pub async fn import(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ImportQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(None, Access::Write)?;
    let format = match query.format.as_str() {
        "jsonl" => consent::import::Format::Jsonl,
        "csv" => consent::import::Format::Csv,
        other => {
            return Err(ApiError::BadRequest(format!(
                "format must be jsonl or csv, not {other:?}"
            )))
        }
    };
    let body = payload
        .to_bytes_limited(MAX_IMPORT_BYTES)
        .await
        .map_err(|_| {
            ApiError::TooLarge(format!(
                "an import is at most {MAX_IMPORT_BYTES} bytes; split it"
            ))
        })?
        .map_err(|e| ApiError::BadRequest(format!("reading the body: {e}")))?;
    let (store, tenant) = (state.store.clone(), tenant_id.clone());
    let prepare_body = body.clone();
    record_once(
        &state,
        &tenant_id,
        &req,
        &body,
        AnswerShape::Import,
        "api:",
        move || {
            Ok(consent::import::prepare_import(
                &store,
                &tenant,
                format,
                &prepare_body,
            )?)
        },
    )
    .await
}

/// Send decisions for a campaign
///
/// A campaign's pre-flight: the send decision for up to 10,000 addresses at once, in order.
/// Invalid addresses are answered `may_send: false` with the reason, not refused. With
/// `"record": true` (senders) the check is recorded as a `campaign_check` leaf, its decisions
/// those of the leaves before it, and `campaign_check` names it for later proofs.
#[utoipa::path(post, path = "/v1/consent:check", tag = "consent", security(("bearer" = [])), request_body = CheckRequest,
    params(("tenant" = Option<String>, Query, description = "The tenant (regulators and admins)")),
    responses((status = 200, body = CheckResults), (status = 403, body = Problem, content_type = "application/problem+json"),
              ))]
#[post("/v1/consent:check")]
pub async fn check(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<TenantQuery>,
    body: web::Json<CheckRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    let access = if request.record {
        Access::Write
    } else {
        Access::Read
    };
    let tenant_id = caller.tenant(query.tenant.as_deref(), access)?;
    caller.audit(&state, &tenant_id, "check").await?;
    let store = state.store.clone();
    let answer = if request.record {
        let log = state.log.clone();
        let entry = web::block(move || {
            consent::prepare_campaign_check(&store, log.labeler(), &tenant_id, request)
        })
        .await??;
        let outcome = entry.outcome();
        let (results, check) = state
            .log
            .append_for(entry, &outcome)
            .await?
            .ok_or_else(|| ApiError::Internal("the campaign check left no answer".into()))?;
        CheckResults {
            results,
            campaign_check: Some(check),
        }
    } else {
        CheckResults {
            results: web::block(move || {
                consent::check_many(&store, state.log.labeler(), &tenant_id, request)
            })
            .await??,
            campaign_check: None,
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}

/// Optional tenant for readers that may name one.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    /// The tenant (regulators and admins).
    pub tenant: Option<String>,
}

/// A page of the suppression list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuppressionQuery {
    /// The purpose.
    pub purpose: String,
    /// Cursor: `next_after` of the previous page.
    pub after: Option<String>,
    /// Page size, 1–10000 (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    /// `json` (default: the page), `jsonl` (one entry a line) or `csv` (a header row, one entry
    /// a row); the next page's `Link` header in each.
    pub format: Option<String>,
    /// The tenant (regulators and admins).
    pub tenant: Option<String>,
}

/// Checks a suppression page size, 1–10000 (default 1000).
fn suppression_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be 1–10000".into()));
    }
    Ok(limit)
}

/// Suppression list
///
/// The suppression list: addresses that refused mail for a purpose (or for all), for a mail
/// system to suppress at once, each entry with when the refusal was recorded, its scope
/// (`purpose` or `all`), how the person refused (`reason`) and who received it (`source`).
/// Paginated with a cursor; as JSON, JSON lines or CSV.
#[utoipa::path(get, path = "/v1/suppression", tag = "consent", security(("bearer" = [])), params(SuppressionQuery),
    responses((status = 200, description = "The entries: a JSON page, JSON lines or CSV", content((SuppressionPage = "application/json"), (String = "application/x-ndjson"), (String = "text/csv"))),
              (status = 403, body = Problem, content_type = "application/problem+json")))]
#[get("/v1/suppression")]
pub async fn suppression(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<SuppressionQuery>,
) -> Result<HttpResponse, ApiError> {
    let SuppressionQuery {
        purpose,
        after,
        limit,
        format,
        tenant,
    } = query.into_inner();
    let format = ListFormat::parse(format.as_deref())?;
    let tenant_id = caller.tenant(tenant.as_deref(), Access::Read)?;
    caller.audit(&state, &tenant_id, "suppression").await?;
    let limit = suppression_limit(limit)?;
    let store = state.store.clone();
    let page = web::block(move || {
        consent::suppression(&store, &tenant_id, &purpose, after.as_deref(), limit)
    })
    .await??;
    Ok(super::pagination::page_as(
        &req,
        format,
        page.next_after.as_deref().map(|n| ("after", n)),
        &page,
        &page.entries,
        consent::suppression_csv,
    ))
}

/// Changes to the suppression list since a cursor.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuppressionChangesQuery {
    /// The `resume_since` (or `next_after`) of the previous call; absent: from the first event.
    pub since: Option<u64>,
    /// Only this purpose (default: every purpose of the tenant).
    pub purpose: Option<String>,
    /// Events to read, 1–10000 (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    /// `json` (default), `jsonl` or `csv`.
    pub format: Option<String>,
    /// The tenant (regulators and admins).
    pub tenant: Option<String>,
}

/// Suppression list changes since a cursor
///
/// The suppression list's changes since a cursor, for a mail system that keeps its own copy:
/// each address and purpose that events after `since` touched, with its suppression as of now
/// (`suppressed` true or false: apply each as a set). Poll again with `since=resume_since`.
#[utoipa::path(get, path = "/v1/suppression/changes", tag = "consent", security(("bearer" = [])), params(SuppressionChangesQuery),
    responses((status = 200, description = "The entries: a JSON page, JSON lines or CSV", content((SuppressionChanges = "application/json"), (String = "application/x-ndjson"), (String = "text/csv"))),
              (status = 403, body = Problem, content_type = "application/problem+json")))]
#[get("/v1/suppression/changes")]
pub async fn suppression_changes(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<SuppressionChangesQuery>,
) -> Result<HttpResponse, ApiError> {
    let SuppressionChangesQuery {
        since,
        purpose,
        limit,
        format,
        tenant,
    } = query.into_inner();
    let format = ListFormat::parse(format.as_deref())?;
    let tenant_id = caller.tenant(tenant.as_deref(), Access::Read)?;
    caller.audit(&state, &tenant_id, "suppression").await?;
    let limit = suppression_limit(limit)?;
    let store = state.store.clone();
    let changes = web::block(move || {
        consent::suppression_changes(&store, &tenant_id, purpose.as_deref(), since, limit)
    })
    .await??;
    // The next page is asked for with `since`, the cursor of this feed.
    let next = changes.next_after.map(|n| n.to_string());
    let mut answer = super::pagination::page_as(
        &req,
        format,
        next.as_deref().map(|n| ("since", n)),
        &changes,
        &changes.changes,
        consent::suppression_csv,
    );
    if let Some(resume) = changes.resume_since {
        answer.headers_mut().insert(
            header::HeaderName::from_static("x-resume-since"),
            header::HeaderValue::from(resume),
        );
    }
    Ok(answer)
}

/// Recent reads of a tenant's records by regulators.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Most reads, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The tenant (regulators and admins).
    pub tenant: Option<String>,
}

/// Regulators' reads of this tenant
///
/// Every read of this tenant's consent records by a regulator, newest first: a sender sees who
/// looked at its records, and when.
#[utoipa::path(get, path = "/v1/audit/regulator-reads", tag = "consent", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = RegulatorReads), (status = 403, body = Problem, content_type = "application/problem+json")))]
#[get("/v1/audit/regulator-reads")]
pub async fn regulator_reads(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let AuditQuery { limit, tenant } = query.into_inner();
    let tenant_id = caller.tenant(tenant.as_deref(), Access::Read)?;
    caller.audit(&state, &tenant_id, "audit").await?;
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be 1–1000".into()));
    }
    let store = state.store.clone();
    let reads = web::block(move || consent::regulator_reads(&store, &tenant_id, limit)).await??;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(RegulatorReads { reads }))
}

/// Whose personal data to erase.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EraseQuery {
    /// The address.
    pub email: String,
}

/// Erase an address's personal data
///
/// Erase an address's personal data (address, salt, evidence) once the law allows: no purpose
/// still granted, and one month since its last event (one year under a legal hold). Otherwise 409,
/// with `erasable_from` when only time is missing. Appends an `erasure` leaf to the address's chain; its other leaves stay, unlinkable.
#[utoipa::path(delete, path = "/v1/subjects", tag = "consent", security(("bearer" = [])), params(EraseQuery),
    responses((status = 200, body = Erasure), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 409, description = "Consent still in force, or the retention period is running (see erasable_from)", body = Problem, content_type = "application/problem+json"),
              ))]
#[delete("/v1/subjects")]
pub async fn erase(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<EraseQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant(None, Access::Write)?;
    let erased = consent::erase(&state.log, &tenant_id, &query.email).await?;
    Ok(HttpResponse::Ok().json(erased))
}

/// Whom and what a read is about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DecisionQuery {
    /// The address.
    pub email: String,
    /// The purpose.
    pub purpose: String,
    /// The tenant (regulators and admins; senders act on their own).
    pub tenant: Option<String>,
    /// `true`: answer with the proof (`consent-ledger/decision/v1`: the decision as of a
    /// checkpoint covering the address's newest event, and the address's evidence bundle), which
    /// `consent-ledger verify decision` and the SDKs check offline. Slower: it waits for that
    /// checkpoint.
    pub proof: Option<bool>,
}

/// The live decision, or with `proof=true` the decision with its proof.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum DecisionAnswer {
    /// The decision now (`proof` not asked).
    Live(Decision),
    /// The decision with its proof.
    Proven(Box<crate::evidence::ProvenDecision>),
}

/// Send decision for one address
///
/// May I mail this address for this purpose? An opt-out wins at once.
#[utoipa::path(get, path = "/v1/consent", tag = "consent", security(("bearer" = [])), params(DecisionQuery),
    responses((status = 200, body = DecisionAnswer, example = json!({"may_send": true, "status": "granted", "basis": "consent", "since": "2026-12-07T10:00:00.120Z", "event_id": "01939c70-2a4b-7c5d-9e6f-708192a3b4c5", "leaf_index": 812})), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "With proof=true: no events for this address (its decision is none; nothing to prove)", body = Problem, content_type = "application/problem+json"), ))]
#[get("/v1/consent")]
pub async fn decision(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<DecisionQuery>,
) -> Result<HttpResponse, ApiError> {
    let DecisionQuery {
        email,
        purpose,
        tenant,
        proof,
    } = query.into_inner();
    let tenant_id = caller.tenant(tenant.as_deref(), Access::Read)?;
    caller.audit(&state, &tenant_id, "decision").await?;
    let store = state.store.clone();
    let log = state.log.clone();
    let decision = if proof == Some(true) {
        DecisionAnswer::Proven(Box::new(
            web::block(move || {
                crate::evidence::proven_decision(&store, &log, &tenant_id, &email, &purpose)
            })
            .await??,
        ))
    } else {
        DecisionAnswer::Live(
            super::short_query(&state.store, move || {
                consent::decide(&store, log.labeler(), &tenant_id, &email, &purpose)
            })
            .await?,
        )
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(decision))
}

/// Whose history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The address.
    pub email: String,
    /// The tenant (regulators and admins).
    pub tenant: Option<String>,
}

/// A subject's events.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"events": [{"event_id": "01939c70-2a4b-7c5d-9e6f-708192a3b4c5", "email": "taro@example.jp", "event": "opt_in", "purposes": ["newsletter"], "basis": "consent", "method": "web_form", "collection_point": "9f2c1a7e5b3d8c6a4e2f0b9d7c5a3e1f9b7d5c3a1e9f7b5d3c1a9e7f5b3d1c9a", "received_by": {"role": "sender", "name": "Sakura Shop K.K."}, "occurred_at": "2026-12-07T10:00:00.000Z", "recorded_at": "2026-12-07T10:00:00.120Z", "leaf_index": 812}]}))]
pub struct History {
    /// Oldest first, each with its leaf index and the previous one of the same address.
    pub events: Vec<EventRecord>,
}

/// History of one address
///
/// Every event of one address, with leaf indexes (the per-address chain).
#[utoipa::path(get, path = "/v1/subjects/events", tag = "consent", security(("bearer" = [])), params(HistoryQuery),
    responses((status = 200, body = History), (status = 403, body = Problem, content_type = "application/problem+json"), ))]
#[get("/v1/subjects/events")]
pub async fn subject_events(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let HistoryQuery { email, tenant } = query.into_inner();
    let tenant_id = caller.tenant(tenant.as_deref(), Access::Read)?;
    caller.audit(&state, &tenant_id, "history").await?;
    let links = (caller.0.role == crate::auth::Role::Sender).then(|| state.links.clone());
    let store = state.store.clone();
    let events =
        web::block(move || consent::history(&store, links.as_ref(), &tenant_id, &email)).await??;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(History { events }))
}

/// A page of the export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Cursor: events after this leaf index (`next_after` of the previous page).
    pub after: Option<u64>,
    /// Page size, 1–10000 (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    /// `json` (default: a page with a cursor), `jsonl` (one event per line) or `csv`; the
    /// next page's `Link` header (and `x-next-after`) for the last two.
    pub format: Option<String>,
    /// The tenant (regulators and admins).
    pub tenant: Option<String>,
}

/// A page of a tenant's events.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"events": [{"event_id": "01939c70-2a4b-7c5d-9e6f-708192a3b4c5", "email": "taro@example.jp", "event": "opt_in", "purposes": ["newsletter"], "basis": "consent", "method": "web_form", "collection_point": "9f2c1a7e5b3d8c6a4e2f0b9d7c5a3e1f9b7d5c3a1e9f7b5d3c1a9e7f5b3d1c9a", "received_by": {"role": "sender", "name": "Sakura Shop K.K."}, "occurred_at": "2026-12-07T10:00:00.000Z", "recorded_at": "2026-12-07T10:00:00.120Z", "leaf_index": 812}], "next_after": 812}))]
pub struct ExportPage {
    /// Events, oldest first.
    pub events: Vec<EventRecord>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// Export consent records
///
/// Export a tenant's consent records, oldest first (JSON pages or JSON Lines).
#[utoipa::path(get, path = "/v1/events/export", tag = "consent", security(("bearer" = [])), params(ExportQuery),
    responses((status = 200, body = ExportPage), (status = 403, body = Problem, content_type = "application/problem+json")))]
#[get("/v1/events/export")]
pub async fn export(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let ExportQuery {
        after,
        limit,
        format,
        tenant,
    } = query.into_inner();
    let tenant_id = caller.tenant(tenant.as_deref(), Access::Read)?;
    caller.audit(&state, &tenant_id, "export").await?;
    let limit = limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be 1–10000".into()));
    }
    let format = ListFormat::parse(format.as_deref())?;
    let links = (caller.0.role == crate::auth::Role::Sender).then(|| state.links.clone());
    let store = state.store.clone();
    let events =
        web::block(move || consent::export(&store, links.as_ref(), &tenant_id, after, limit))
            .await??;
    let next_after = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.leaf_index))
        .flatten();
    let next = next_after.map(|n| n.to_string());
    let page = ExportPage { events, next_after };
    Ok(super::pagination::page_as(
        &req,
        format,
        next.as_deref().map(|n| ("after", n)),
        &page,
        &page.events,
        consent::import::to_csv,
    ))
}
