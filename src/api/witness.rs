//! The witness's HTTP interface (C2SP `tlog-witness`), served by `consent-ledger witness serve`:
//! `POST /add-checkpoint`, and for monitors `GET /<origin hash>/checkpoint` (the latest
//! checkpoint it cosigned, with its cosignature). The judgement is `log::witness`; here only the
//! protocol's statuses: 200 with cosignature lines, 409 with the held size as
//! `text/x.tlog.size`, and problem documents for 400, 403, 404, 422 and 500.

use std::sync::Arc;

use actix_web::{web, HttpResponse};

use super::error::ApiError;
use crate::log::witness::{Witness, WitnessError};

/// The largest request: a checkpoint, some signatures and at most 63 proof lines.
const MAX_BODY: usize = 64 * 1024;

/// Builds the witness server on `bind`, returning it and its bound addresses.
pub fn server(
    witness: Arc<Witness>,
    bind: &str,
) -> std::io::Result<(actix_web::dev::Server, Vec<std::net::SocketAddr>)> {
    let data = web::Data::from(witness);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .route("/add-checkpoint", web::post().to(add_checkpoint))
            .route("/{origin_hash}/checkpoint", web::get().to(checkpoint))
    })
    .workers(2)
    .bind(bind)?;
    let addrs = server.addrs();
    Ok((server.run(), addrs))
}

async fn add_checkpoint(
    witness: web::Data<Witness>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::BadRequest("the request body is not UTF-8".into()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let result = web::block(move || witness.add_checkpoint(&text, now))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    match result {
        Ok(lines) => Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(lines)),
        Err(WitnessError::OldSizeMismatch { latest, .. }) => Ok(HttpResponse::Conflict()
            .content_type("text/x.tlog.size")
            .body(format!("{latest}\n"))),
        Err(e) => Err(match e {
            WitnessError::BadRequest(m) => ApiError::BadRequest(m),
            WitnessError::UnknownLog(_) => ApiError::NotFound(e.to_string()),
            WitnessError::NotSigned(_) => ApiError::Forbidden(e.to_string()),
            WitnessError::Fork(_) => {
                tracing::error!(error = %e, "a log showed this witness two roots for one size");
                ApiError::Invalid(e.to_string())
            }
            WitnessError::Inconsistent(..)
            | WitnessError::Unprocessable(_)
            | WitnessError::AuditFailed(_) => ApiError::Invalid(e.to_string()),
            WitnessError::AuditUnavailable(_) => ApiError::Unavailable(e.to_string()),
            WitnessError::State(_) | WitnessError::OldSizeMismatch { .. } => {
                ApiError::Internal(e.to_string())
            }
        }),
    }
}

/// The latest checkpoint cosigned for the log whose origin's SHA-256 is `origin_hash` (hex,
/// lower case), with the log's signature and this witness's cosignature; 404 if none.
async fn checkpoint(
    witness: web::Data<Witness>,
    origin_hash: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let hash = origin_hash.into_inner();
    let note = web::block(move || witness.cosigned(&hash))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(|| {
            ApiError::NotFound("this witness has cosigned no checkpoint of that log".into())
        })?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-cache"))
        .body(note))
}
