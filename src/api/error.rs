//! The HTTP layer's one error type and its one mapping to RFC 9457 `application/problem+json`.
//! Domain errors convert into [`ApiError`] here; nothing else in `api` picks status codes for
//! failures. Also: the extractor error handlers and the catch-all that turns any bare 4xx/5xx
//! from actix itself (unknown route, wrong method) into a problem document.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::error::DomainError;
use crate::log::LogError;
use crate::store::StoreError;

/// The problem+json content type.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem details document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"type": "/problems/out-of-range", "title": "Out of range", "status": 400,
    "detail": "tree size 9000 is not covered: the latest checkpoint has size 812 (use 1..=812)"}))]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this case, and what to do about it.
    pub detail: String,
    /// For a batch: which items are invalid, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ItemError>>,
    /// For an erasure refused during the retention period: when it becomes possible (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erasable_from: Option<String>,
}

/// One invalid item of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemError {
    /// Its position in the request, from 0.
    pub index: usize,
    /// What is wrong with it.
    pub detail: String,
}

/// Errors a handler returns; each maps to one status and problem type.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (bad parameter, bad path).
    #[error("{0}")]
    BadRequest(String),
    /// A parameter is well-formed but outside what the log can answer.
    #[error("{0}")]
    OutOfRange(String),
    /// The resource does not exist (yet).
    #[error("{0}")]
    NotFound(String),
    /// The service cannot answer now; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// Well-formed, but a value is not acceptable (422).
    #[error("{0}")]
    Invalid(String),
    /// Items of a batch are invalid (422, listed in `errors`).
    #[error("{} item(s) of the batch are invalid; nothing was recorded", .0.len())]
    InvalidItems(Vec<(usize, String)>),
    /// Erasure is not allowed yet (409, with `erasable_from`).
    #[error("the record must be kept until {0} (one month after the address's last event; one year under a legal hold)")]
    RetentionRunning(String),
    /// Too many requests; retry after this many seconds (429, with `Retry-After`).
    #[error("too many requests: retry in {0} s")]
    TooMany(u64),
    /// The body is larger than this endpoint takes (413).
    #[error("{0}")]
    TooLarge(String),
    /// No acceptable credentials (401, with `WWW-Authenticate: Bearer`).
    #[error("{0}")]
    Unauthorized(String),
    /// A fault on our side; details are logged, not sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                "invalid-request",
                "Invalid request",
            ),
            Self::OutOfRange(_) => (StatusCode::BAD_REQUEST, "out-of-range", "Out of range"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::InvalidItems(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-items",
                "Invalid items",
            ),
            Self::RetentionRunning(_) => (
                StatusCode::CONFLICT,
                "retention-running",
                "Retention period running",
            ),
            Self::TooMany(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            Self::TooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Payload too large",
            ),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-value",
                "Invalid value",
            ),
            Self::Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
            ),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let (status, slug, title) = self.parts();
        let detail = match self {
            Self::Internal(_) => "an internal error occurred; it has been logged".to_string(),
            other => other.to_string(),
        };
        let errors = match self {
            Self::InvalidItems(items) => Some(
                items
                    .iter()
                    .map(|(index, detail)| ItemError {
                        index: *index,
                        detail: detail.clone(),
                    })
                    .collect(),
            ),
            _ => None,
        };
        let erasable_from = match self {
            Self::RetentionRunning(date) => Some(date.clone()),
            _ => None,
        };
        Problem {
            kind: format!("/problems/{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail,
            errors,
            erasable_from,
        }
    }
}

/// A problem document as this service answers it for `status`, to show in the OpenAPI
/// document: made by the one mapping above, so the examples cannot drift from the answers.
pub fn example_problem(status: u16) -> Option<Problem> {
    let error = match status {
        400 => ApiError::BadRequest("name the tenant with tenant=<id>".into()),
        401 => ApiError::Unauthorized(crate::auth::AuthError::Missing.to_string()),
        403 => ApiError::Forbidden("a sender token acts on its own tenant only".into()),
        404 => ApiError::NotFound("no tenant \"01939c6e-5f10-7a2b-8c3d-4e5f60718293\"".into()),
        409 => ApiError::Conflict("this Idempotency-Key was used with a different request".into()),
        413 => ApiError::TooLarge("the body is larger than 2 MiB".into()),
        422 => ApiError::Invalid("\"taro@@example.jp\" is not an e-mail address".into()),
        429 => ApiError::TooMany(1),
        503 => ApiError::Unavailable(
            "the database is unavailable: timed out waiting for connection".into(),
        ),
        _ => return None,
    };
    Some(error.problem())
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            tracing::error!(%cause, "internal error");
        }
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((header::CONTENT_TYPE, PROBLEM_JSON))
            .insert_header((header::CACHE_CONTROL, "no-store"));
        if let Self::Unauthorized(_) = self {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"consent-ledger\""));
        }
        if let Self::TooMany(seconds) = self {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Self::Unavailable(_) = self {
            response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()));
        }
        response.json(self.problem())
    }
}

/// Seconds a client is asked to wait before retrying a 503.
const RETRY_AFTER_SECS: u64 = 2;

impl ApiError {
    /// A failure of the database: a 503 when the database is failing (down, busy, full, a
    /// connection lost), with a fixed message — the driver's own is logged, never sent — and a
    /// 500 when a query of ours is wrong.
    pub fn from_store(e: StoreError) -> Self {
        if e.is_outage() {
            tracing::warn!(error = %e, "database failure answered 503");
            Self::Unavailable(
                "the database is unavailable: retry shortly (with the same Idempotency-Key, a \
                 retry records an event at most once)"
                    .into(),
            )
        } else {
            Self::Internal(e.to_string())
        }
    }
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::OutOfRange(m) => Self::OutOfRange(m),
            LogError::NotFound(m) => Self::NotFound(m),
            LogError::InvalidLeaf(m) => Self::BadRequest(m),
            LogError::Store(e) => Self::from_store(e),
            LogError::NotCommitted(_) | LogError::ShuttingDown => {
                Self::Unavailable(format!("{e}; retry shortly"))
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing | AuthError::Invalid(_) => Self::Unauthorized(e.to_string()),
            AuthError::BadRequest(m) => Self::BadRequest(m),
            AuthError::Unacceptable(m) => Self::Invalid(m),
            AuthError::Internal(m) => Self::Internal(m),
            AuthError::Forbidden(m) => Self::Forbidden(m),
            AuthError::NotFound(m) => Self::NotFound(m),
            AuthError::Store(e) => Self::from_store(e),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(m) => Self::Invalid(m),
            DomainError::NotFound(m) => Self::NotFound(m),
            DomainError::Conflict(m) => Self::Conflict(m),
            DomainError::Malformed(m) => Self::BadRequest(m),
            DomainError::RetentionRunning(date) => Self::RetentionRunning(date),
            DomainError::InvalidItems(items) => Self::InvalidItems(items),
            DomainError::Log(e) => e.into(),
            DomainError::Store(e) => LogError::Store(e).into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::from_store(e)
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// Extractor error handler: a query, path or JSON body that does not parse is a 400 problem.
pub fn bad_request<E: std::fmt::Display>(
    err: E,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid request: {err}")).into()
}

/// The methods each route answers, from the OpenAPI document, to tell 405 from 404.
/// actix's route macros guard the whole resource by method, so a wrong method would be a 404.
#[derive(Clone)]
pub struct RouteTable(std::sync::Arc<Vec<(actix_web::dev::ResourceDef, String)>>);

impl RouteTable {
    /// Builds the table from an OpenAPI document (`{x_path}` parameters match several segments,
    /// as the tile route's does).
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let routes = doc
            .paths
            .paths
            .iter()
            .map(|(template, item)| {
                let pattern = template.replace("_path}", "_path:.*}");
                let mut methods: Vec<String> = serde_json::to_value(item)
                    .ok()
                    .and_then(|v| {
                        v.as_object()
                            .map(|o| o.keys().map(|k| k.to_uppercase()).collect())
                    })
                    .unwrap_or_default();
                methods.retain(|m| ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str()));
                if methods.iter().any(|m| m == "GET") {
                    methods.push("HEAD".into());
                }
                (
                    actix_web::dev::ResourceDef::new(pattern),
                    methods.join(", "),
                )
            })
            .collect();
        Self(std::sync::Arc::new(routes))
    }

    fn allowed(&self, path: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(def, _)| def.is_match(path))
            .map(|(_, allow)| allow.as_str())
    }
}

/// Middleware that gives every error response without a problem body one (actix's own 404 and
/// 405 answers, for instance), so clients see problem+json everywhere.
pub fn problem_for_bare_errors<B: MessageBody + 'static>(routes: RouteTable) -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(move |res: ServiceResponse<B>| {
        let is_problem = res
            .headers()
            .get(header::CONTENT_TYPE)
            // A problem document already, or a page written for a person: leave it.
            .is_some_and(|v| {
                v.as_bytes().starts_with(PROBLEM_JSON.as_bytes())
                    || v.as_bytes().starts_with(b"text/html")
            });
        if is_problem {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let mut status = res.status();
        let allow = routes.allowed(res.request().path()).map(str::to_string);
        if status == StatusCode::NOT_FOUND && allow.is_some() {
            status = StatusCode::METHOD_NOT_ALLOWED;
        }
        let reason = status.canonical_reason().unwrap_or("Error");
        let error = match status {
            StatusCode::NOT_FOUND => ApiError::NotFound(format!(
                "no resource at {}; see /docs/openapi.json for the endpoints",
                res.request().path()
            )),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::BadRequest(format!(
                "method {} is not allowed here",
                res.request().method()
            )),
            s if s.is_server_error() => ApiError::Internal(reason.to_string()),
            _ => ApiError::BadRequest(reason.to_string()),
        };
        let mut problem = error.problem();
        problem.status = status.as_u16();
        let body = serde_json::to_string(&problem).expect("a problem serialises");
        let (req, mut res) = res.into_parts();
        *res.status_mut() = status;
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::METHOD_NOT_ALLOWED {
            if let Some(allow) = allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
                res.headers_mut().insert(header::ALLOW, allow);
            }
        }
        let res = res.set_body(BoxBody::new(body));
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, res).map_into_right_body(),
        ))
    })
}
