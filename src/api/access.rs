//! Extractors that decide who may call a handler: [`LogReader`] for the log's read API (public
//! unless the operator restricts it to token holders) and [`Caller`] for endpoints that always
//! need a token; [`Caller::tenant`] scopes a request to the tenant the caller may act on.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};

use super::error::ApiError;
use super::AppState;
use crate::auth::{AuthError, Principal, Role};
use crate::config::ReadAccess;

/// What an extractor's future is: it reads the token's row, so it may wait.
type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

fn state(req: &HttpRequest) -> &AppState {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
}

/// The caller behind `Authorization: Bearer <token>`: its signature and claims (cached), then
/// its row (revoked or unknown tokens are refused), read where short queries run.
async fn authenticate(req: HttpRequest) -> Result<Principal, ApiError> {
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
    let state = state(&req);
    let principal = state.authority.verify(token)?;
    if principal.token_id.is_none() {
        return Ok(principal);
    }
    let authority = state.authority.clone();
    super::short_query(&state.store, move || {
        authority.ensure_live(&principal).map(|()| principal)
    })
    .await
}

/// Admits a reader of the log: anyone when `log_read_access = public`, else any valid token.
pub struct LogReader;

impl FromRequest for LogReader {
    type Error = ApiError;
    type Future = LocalBoxFuture<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match state(&req).log_read_access {
                ReadAccess::Public => Ok(LogReader),
                ReadAccess::Authenticated => authenticate(req).await.map(|_| LogReader),
            }
        })
    }
}

/// An authenticated caller (any role); [`Caller::tenant`] decides which tenant it may act on.
pub struct Caller(pub Principal);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(req).await.map(Caller) })
    }
}

/// Whether an operation reads or writes consent records.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading (senders: own tenant; regulators and admins: any, named with `tenant=`).
    Read,
    /// Recording (a sender, for its own tenant).
    Write,
    /// Managing the tenant's settings (senders: own tenant; admins: any, named with `tenant=`).
    Manage,
}

impl Caller {
    /// The tenant this request acts on.
    pub fn tenant(&self, requested: Option<&str>, access: Access) -> Result<String, ApiError> {
        let Principal { role, tenant, .. } = &self.0;
        match (role, access) {
            (Role::Sender, _) => {
                let own = tenant.clone().expect("sender tokens carry a tenant");
                match requested {
                    Some(other) if other != own => Err(ApiError::Forbidden(
                        "a sender token acts on its own tenant only".into(),
                    )),
                    _ => Ok(own),
                }
            }
            (Role::Regulator | Role::Admin, Access::Write) => Err(ApiError::Forbidden(
                "only a sender token of the tenant records consent".into(),
            )),
            (Role::Regulator, Access::Manage) => Err(ApiError::Forbidden(
                "regulators read; a sender or admin token manages a tenant".into(),
            )),
            (Role::Regulator | Role::Admin, Access::Read | Access::Manage) => requested
                .map(str::to_string)
                .ok_or_else(|| ApiError::BadRequest("name the tenant with tenant=<id>".into())),
        }
    }

    /// Records a regulator's read of `tenant_id` before it is answered; a read that cannot be
    /// recorded is not served. Other roles' reads are not recorded.
    pub async fn audit(
        &self,
        state: &AppState,
        tenant_id: &str,
        operation: &'static str,
    ) -> Result<(), ApiError> {
        if self.0.role != Role::Regulator {
            return Ok(());
        }
        let (store, tenant, regulator) = (
            state.store.clone(),
            tenant_id.to_string(),
            self.0.subject.clone(),
        );
        web::block(move || {
            crate::consent::record_regulator_read(&store, &tenant, &regulator, operation)
        })
        .await??;
        Ok(())
    }

    /// Requires the admin role.
    pub fn admin(&self) -> Result<(), ApiError> {
        match self.0.role {
            Role::Admin => Ok(()),
            _ => Err(ApiError::Forbidden("this needs an admin token".into())),
        }
    }
}
