//! HTTP handlers for API tokens: issue (the secret in this answer only), list, revoke. Who may
//! manage which token is decided in [`crate::auth::tokens`].

use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::access::Caller;
use super::error::{ApiError, Problem};
use super::{pagination, short_query, AppState};
use crate::auth::tokens::{self, ApiToken, IssuedToken, NewToken, TokenPage};

/// Issue an API token
///
/// Issue an API token: an admin any role (a sender token names its tenant), a sender a sender
/// token of its own tenant. The secret is in this answer only: store it now. Lifetimes are
/// capped by the service's `token_max_lifetime_days`.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", security(("bearer" = [])), request_body = NewToken,
    responses((status = 201, body = IssuedToken, example = json!({"id": "tok_019af3c2b1e4a1b2c3d4e5f60718",
        "name": "newsletter-mailer", "role": "sender", "tenant": "t_8f2a", "created_by": "tok_019af3b07c2d9e8f7a6b5c4d3e2f",
        "created_at": "2026-12-07T10:00:00.000Z", "expires_at": "2027-01-06T10:00:00.000Z",
        "status": "active", "secret": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9.eyJzdWIiOiIuLi4ifQ.c2ln"})),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/tokens")]
pub async fn issue_token(
    caller: Caller,
    state: web::Data<AppState>,
    input: web::Json<NewToken>,
) -> Result<HttpResponse, ApiError> {
    let authority = state.authority.clone();
    let issued =
        web::block(move || tokens::issue(&authority, &caller.0, input.into_inner())).await??;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(issued))
}

/// Token list query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// Only this tenant's tokens (admins; a sender sees its own tenant's).
    pub tenant: Option<String>,
    /// The `next_after` of the previous page.
    pub after: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// List API tokens
///
/// The tokens the caller manages, oldest first, revoked and expired ones too (never their
/// secrets). Paginated with a cursor.
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", security(("bearer" = [])), params(TokenQuery),
    responses((status = 200, body = TokenPage), (status = 403, body = Problem, content_type = "application/problem+json")))]
#[get("/v1/tokens")]
pub async fn list_tokens(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let TokenQuery {
        tenant,
        after,
        limit,
    } = query.into_inner();
    let authority = state.authority.clone();
    let page = short_query(&state.store, move || {
        tokens::list(
            &authority,
            &caller.0,
            tenant.as_deref(),
            after.as_deref(),
            limit,
        )
    })
    .await?;
    Ok(pagination::page(&req, page.next_after.as_deref(), &page))
}

/// Revoke an API token
///
/// Revoke a token: refused from the next request on, by every node. Revoking a revoked token
/// answers the same.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "The token's id (`tok_…`)")),
    responses((status = 200, body = ApiToken), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
#[delete("/v1/tokens/{id}")]
pub async fn revoke_token(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let authority = state.authority.clone();
    let token = short_query(&state.store, move || {
        tokens::revoke(&authority, &caller.0, &id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(token))
}
