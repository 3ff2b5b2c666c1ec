//! Liveness (`/healthz`: the process answers), readiness (`/readyz`: the database answers and
//! the sequencer runs, so appends will be acknowledged) and the metrics (`/metrics`, for
//! Prometheus).

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, Problem};
use super::AppState;
use crate::log::LogError;

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// Liveness
///
/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Metrics for Prometheus
///
/// The service's metrics in the Prometheus text exposition format (OpenMetrics 1.0): requests
/// by route and status and their latency, sequencer batches and commit time, the lag from an
/// acknowledgement to its checkpoint, webhook backlog and failures, database pool waits. Counts
/// only, no personal data; readable as the log is (`log_read_access`: public, or any valid
/// token where the operator hides volumes).
#[utoipa::path(get, path = "/metrics", tag = "health", security((), ("bearer" = [])), responses(
    (status = 200, description = "The metrics", content_type = "application/openmetrics-text", body = String,
     example = "# HELP consent_ledger_log_tree_size Leaves in the latest checkpoint this process published.\n# TYPE consent_ledger_log_tree_size gauge\nconsent_ledger_log_tree_size 812\n# EOF\n"),
    (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json")))]
#[get("/metrics")]
pub async fn metrics(
    _reader: super::access::LogReader,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let backlog = super::short_query(&state.store, move || {
        store.read(|r| Ok::<_, LogError>(r.pending_delivery_count()?))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(crate::metrics::render(backlog)))
}

/// Readiness
///
/// Readiness: the database answers, the sequencer is running and its writes succeed.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, body = Health),
    (status = 503, description = "Not ready", body = Problem, content_type = "application/problem+json")))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    web::block(move || store.read(|r| Ok::<_, LogError>(r.log_state()?))).await??;
    if !state.log.is_running() {
        return Err(ApiError::Unavailable(
            "the log's sequencer is not running".into(),
        ));
    }
    if state.log.writes_failing() {
        return Err(ApiError::Unavailable(
            "writes to the database are failing (a full disk, I/O errors); reads are served, \
             writes are retried"
                .into(),
        ));
    }
    Ok(HttpResponse::Ok().json(Health { status: "ready" }))
}
