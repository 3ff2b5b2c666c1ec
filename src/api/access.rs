//! Extractors that decide who may call a handler: [`LogReader`] for the log's read API (public
//! unless the operator restricts it to token holders).

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};

use super::error::ApiError;
use super::AppState;
use crate::auth::{AuthError, Principal};
use crate::config::ReadAccess;

fn state(req: &HttpRequest) -> &AppState {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
}

/// The caller behind `Authorization: Bearer <token>`.
fn authenticate(req: &HttpRequest) -> Result<Principal, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?;
    let value = value
        .to_str()
        .map_err(|_| AuthError::Invalid("the Authorization header is not text".into()))?;
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| {
            AuthError::Invalid("use the Bearer scheme: 'Authorization: Bearer <token>'".into())
        })?;
    Ok(state(req).authority.verify(token)?)
}

/// Admits a reader of the log: anyone when `log_read_access = public`, else any valid token.
pub struct LogReader;

impl FromRequest for LogReader {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match state(req).log_read_access {
            ReadAccess::Public => Ok(LogReader),
            ReadAccess::Authenticated => authenticate(req).map(|_| LogReader),
        })
    }
}
