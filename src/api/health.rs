//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the database answers and
//! the sequencer runs, so appends will be acknowledged).

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, Problem};
use super::AppState;
use crate::log::LogError;

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

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
