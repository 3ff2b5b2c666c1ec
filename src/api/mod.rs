//! The HTTP layer: application state, routes, the OpenAPI document and the server. Handlers are
//! thin and call domain functions; this module is the only one that knows actix-web.
//!
//! - `access.rs`: extractors that authenticate callers (bearer tokens);
//! - `consent.rs`: tenants, collection points, events, the send decision, history, export;
//! - `evidence.rs`: the evidence bundle of an address;
//! - `log.rs`: the log's read API (checkpoint, tiles, proofs, history, verifier key);
//! - `health.rs`: liveness and readiness;
//! - `pages.rs`: HTML pages for recipients (double opt-in confirmation, unsubscribe and its
//!   RFC 8058 one-click);
//! - `tokens.rs`: API tokens (issue, list, revoke);
//! - `pagination.rs`: the one style of every list (`after`, `limit`, `next_after`, `Link`);
//! - `signup.rs`: browser signup forms with publishable keys (CORS, rate limits);
//! - `unsubscribe.rs`: unsubscribe links, the inbound unsubscribe mail, the display notice,
//!   webhooks; the one path every unsubscribe takes;
//! - `error.rs`: the one error type and its mapping to problem+json;
//! - `middleware.rs`: what wraps every request (request ids, the query's encoding);
//! - `connection.rs`: what wraps every connection (actix-http's bare 400 made a problem).

mod access;
mod connection;
pub mod consent;
pub mod error;
mod evidence;
mod health;
pub mod log;
mod middleware;
mod pages;
mod pagination;
mod signup;
mod tokens;
pub mod unsubscribe;
pub mod witness;

use std::net::SocketAddr;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App};
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::{AuthError, Authority};
use crate::config::IpRange;
use crate::config::{Config, ReadAccess};
use crate::consent::links::Links;
use crate::log::{Log, LogError};
use crate::store::{Store, StoreError};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The Merkle log.
    pub log: Log,
    /// Bearer tokens.
    pub authority: Authority,
    /// Who may read the log's API.
    pub log_read_access: ReadAccess,
    /// Recipients' links (double opt-in confirmation).
    pub links: Links,
    /// Rate limits of the public endpoints.
    pub rate_limits: std::sync::Arc<signup::RateLimits>,
    /// Public unsubscribe requests per second from one IP (0: no limit).
    pub unsubscribe_per_ip: u32,
    /// Webhooks may be http:// to this machine (development and tests).
    pub webhooks_to_loopback: bool,
    /// One unsubscribe at a time per recipient; one confirmation at a time per link.
    pub unsubscribe_locks: std::sync::Arc<unsubscribe::SubjectLocks>,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpRange>,
}

/// Runs a short database call (a few indexed queries, no scan): inline where the store says
/// that is cheaper ([`Store::short_queries_inline`]), on actix's blocking pool otherwise. Long
/// calls (exports, batch checks, imports) always go through `web::block`.
pub(crate) async fn short_query<T, E>(
    store: &Store,
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, error::ApiError>
where
    T: Send + 'static,
    E: Send + 'static,
    error::ApiError: From<E>,
{
    store
        .blocking(true, move || f().map_err(error::ApiError::from))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let trusted = [
            IpRange::parse("10.0.0.0/8").unwrap(),
            IpRange::parse("2001:db8::/32").unwrap(),
            IpRange::parse("192.0.2.1").unwrap(),
        ];
        let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
        // A client talking directly: its headers are not believed.
        assert_eq!(
            client_ip(&trusted, ip("198.51.100.7"), Some("1.2.3.4")),
            ip("198.51.100.7")
        );
        // Behind two trusted proxies: the last untrusted hop, not what the client prepended.
        assert_eq!(
            client_ip(
                &trusted,
                ip("10.1.2.3"),
                Some("6.6.6.6, 203.0.113.9, 192.0.2.1")
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(&trusted, ip("2001:db8::1"), Some("203.0.113.9")),
            ip("203.0.113.9")
        );
        // A trusted proxy without the header, or with garbage: the last trusted hop.
        assert_eq!(client_ip(&trusted, ip("10.0.0.1"), None), ip("10.0.0.1"));
        assert_eq!(
            client_ip(&trusted, ip("10.0.0.1"), Some("bogus")),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_ip(&[], ip("10.0.0.1"), Some("203.0.113.9")),
            ip("10.0.0.1")
        );
        assert!(IpRange::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(!IpRange::parse("10.0.0.0/8")
            .unwrap()
            .contains("11.0.0.1".parse().unwrap()));
        assert!(!IpRange::parse("10.0.0.0/8")
            .unwrap()
            .contains("::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "10.0.0", "example.com", "::/129", ""] {
            assert!(IpRange::parse(bad).is_none(), "{bad}");
        }
    }
}

/// The client's address: the socket's peer, or — when the peer is a trusted proxy — the last
/// address in `X-Forwarded-For` that is not a trusted proxy (addresses before it could be forged
/// by the client itself).
pub(crate) fn client_ip(
    trusted: &[IpRange],
    peer: Option<std::net::IpAddr>,
    forwarded_for: Option<&str>,
) -> Option<std::net::IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: std::net::IpAddr| trusted.iter().any(|r| r.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let Some(header) = forwarded_for else {
        return Some(peer);
    };
    let mut last = peer;
    for hop in header.rsplit(',').map(str::trim) {
        let Ok(ip) = hop.parse::<std::net::IpAddr>() else {
            return Some(last);
        };
        last = ip;
        if !is_trusted(ip) {
            return Some(ip);
        }
    }
    Some(last)
}

/// The client's address for a request to this service.
pub(crate) fn request_ip(
    state: &AppState,
    req: &actix_web::HttpRequest,
) -> Option<std::net::IpAddr> {
    client_ip(
        &state.trusted_proxies,
        req.peer_addr().map(|a| a.ip()),
        req.headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok()),
    )
}

/// What a person's client tells about a request, kept as erasable evidence: its address (the
/// socket's peer, or what trusted proxies forwarded; never a header from anyone else) and the
/// user agent.
pub(crate) fn client_evidence(
    state: &AppState,
    req: &actix_web::HttpRequest,
    note: impl Into<String>,
) -> crate::consent::model::Evidence {
    crate::consent::model::Evidence {
        ip: request_ip(state, req).map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(1000).collect()),
        confirmation_message_id: None,
        note: Some(note.into()),
        ..Default::default()
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database or the log.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The token keys.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<StoreError> for StartError {
    fn from(e: StoreError) -> Self {
        Self::Log(e.into())
    }
}

impl AppState {
    /// Connects to the configured database, applies migrations, opens the log and the token keys.
    pub fn open(config: &Config) -> Result<Self, StartError> {
        let store = Store::connect(&config.database_url, config.pool_size)?;
        store.migrate()?;
        let log = Log::open(store.clone(), config.log_settings())?;
        let authority = Authority::open(store.clone(), log.origin(), config.token_max_lifetime())?;
        let mut links = Links::new(
            log.derive_key("consent-ledger/recipient-links/v1"),
            &config.public_url,
        );
        if let Some(mailbox) = &config.unsubscribe_mailbox {
            links = links.with_mailbox(mailbox.as_str());
        }
        Ok(Self {
            store: store.clone(),
            log,
            authority,
            log_read_access: config.log_read_access,
            links,
            rate_limits: Default::default(),
            unsubscribe_per_ip: config.unsubscribe_per_ip,
            webhooks_to_loopback: config.webhooks_to_loopback,
            trusted_proxies: config.trusted_proxies.clone(),
            unsubscribe_locks: Default::default(),
        })
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "consent-ledger",
         description = "E-mail marketing consent events in an append-only, verifiable Merkle log. \
                        The log's read API follows C2SP tlog-tiles and tlog-checkpoint; proofs follow RFC 9162."),
    tags((name = "log", description = "The Merkle log: checkpoints, tiles, proofs"),
         (name = "consent", description = "Tenants, collection points, consent events and the send decision"),
         (name = "unsubscribe", description = "Unsubscribe links and headers, inbound unsubscribe mail, the display notice, opt-out webhooks"),
         (name = "recipients", description = "Pages for the people who receive mail"),
         (name = "tokens", description = "API tokens: issue, list, revoke"),
         (name = "health", description = "Liveness and readiness")),
    servers((url = "/", description = "This service: the origin the document is served from")),
    components(schemas(error::Problem)),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

/// Documents, on every operation that lacks them, the problem responses any request can get (and
/// gives every response without a description its reason phrase, as OpenAPI requires):
/// 400 (malformed request), 401 (secured operations), 404 (unknown tenant or resource), 413 and
/// 422 (operations with a body, and `/v1` reads that validate values), 503 (database unavailable).
struct CommonErrors;

impl utoipa::Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let v1 = path.starts_with("/v1/");
            // A CORS preflight (OPTIONS) documents its own answers; the others get the common ones.
            let operations = [
                (&mut item.get, true),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.patch, true),
                (&mut item.delete, true),
                (&mut item.options, false),
            ];
            for (operation, common) in operations {
                let Some(operation) = operation else { continue };
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let has_body = operation.request_body.is_some();
                let mut wanted = vec![
                    ("400", "The request is malformed"),
                    ("503", "The database is unavailable; retry"),
                ];
                if secured {
                    wanted.push(("401", "A bearer token is required, or it was refused"));
                }
                if v1 {
                    wanted.push(("404", "No such tenant or resource"));
                    wanted.push(("422", "A value is not acceptable"));
                }
                if has_body {
                    wanted.push(("413", "The body is too large"));
                }
                for (code, description) in wanted.into_iter().filter(|_| common) {
                    operation
                        .responses
                        .responses
                        .entry(code.to_string())
                        .or_insert_with(|| problem(description).into());
                }
                // OpenAPI requires a description on every response: the reason phrase where
                // the operation gives none. Problem answers get an example of their status.
                for (code, response) in operation.responses.responses.iter_mut() {
                    if let utoipa::openapi::RefOr::T(response) = response {
                        let example = code
                            .parse()
                            .ok()
                            .and_then(error::example_problem)
                            .and_then(|p| serde_json::to_value(p).ok());
                        if let (Some(utoipa::openapi::RefOr::T(content)), Some(example)) =
                            (response.content.get_mut(error::PROBLEM_JSON), example)
                        {
                            if content.example.is_none() && content.examples.is_empty() {
                                content.example = Some(example);
                            }
                        }
                        if response.description.is_empty() {
                            response.description = code
                                .parse::<u16>()
                                .ok()
                                .and_then(|c| actix_web::http::StatusCode::from_u16(c).ok())
                                .and_then(|c| c.canonical_reason())
                                .unwrap_or("Response")
                                .to_string();
                        }
                    }
                }
            }
        }
    }
}

/// Shows a real evidence bundle and a real campaign proof as the examples of the answers that
/// carry them: the golden vectors' valid cases (`sdk/vectors`), which both SDKs verify.
struct ProofExamples;

impl utoipa::Modify for ProofExamples {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let valid = |vectors: &str, field: &str| {
            let doc: serde_json::Value = serde_json::from_str(vectors).ok()?;
            let cases = doc["cases"].as_array()?;
            let case = cases
                .iter()
                .find(|c| c["name"] == "valid")
                .or(cases.first())?;
            Some(case[field].clone())
        };
        let examples = [
            (
                "/v1/evidence",
                valid(include_str!("../../sdk/vectors/bundles.json"), "bundle"),
            ),
            (
                "/v1/campaign-checks/{id}/proof",
                valid(include_str!("../../sdk/vectors/campaigns.json"), "proof"),
            ),
        ];
        for (path, example) in examples {
            let answer = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.get.as_mut())
                .and_then(|op| op.responses.responses.get_mut("200"));
            if let (Some(utoipa::openapi::RefOr::T(answer)), Some(example)) = (answer, example) {
                if let Some(utoipa::openapi::RefOr::T(content)) =
                    answer.content.get_mut("application/json")
                {
                    content.example = Some(example);
                }
            }
        }
    }
}

/// Declares the `bearer` security scheme (JWTs from `consent-ledger token issue`).
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Registers every route (and its OpenAPI operation).
fn routes(cfg: &mut ServiceConfig) {
    // The hot paths first: actix tries resources in this order, and the patterns with
    // parameters before a route are each matched on every request to it.
    cfg.service(consent::decision)
        .service(consent::record_event)
        .service(consent::check)
        .service(log::checkpoint)
        .service(log::tile)
        .service(log::verifier_key)
        .service(log::inclusion_proof)
        .service(log::consistency_proof)
        .service(log::checkpoints)
        .service(log::checkpoint_by_size)
        .service(consent::create_tenant)
        .service(consent::list_tenants)
        .service(consent::get_tenant)
        .service(consent::update_tenant)
        .service(consent::set_legal_hold)
        .service(consent::register_collection_point)
        .service(consent::list_collection_points)
        .service(consent::read_collection_point)
        .service(consent::retire_collection_point)
        .service(consent::record_events)
        .service(consent::import)
        .service(consent::erase)
        .service(consent::suppression)
        .service(consent::suppression_changes)
        .service(consent::regulator_reads)
        .service(consent::subject_events)
        .service(consent::export)
        .service(signup::sdk_js)
        .service(signup::signup_preflight)
        .service(signup::signup)
        .service(signup::create_publishable_key)
        .service(signup::list_publishable_keys)
        .service(signup::revoke_publishable_key)
        .service(pages::verify_page)
        .service(pages::confirmation_page)
        .service(pages::confirm)
        .service(pages::unsubscribe_page)
        .service(pages::unsubscribe)
        .service(unsubscribe::create_links)
        .service(unsubscribe::inbound_mail)
        .service(unsubscribe::display_notice)
        .service(unsubscribe::create_webhook)
        .service(unsubscribe::list_webhooks)
        .service(unsubscribe::remove_webhook)
        .service(unsubscribe::rotate_webhook_secret)
        .service(unsubscribe::test_webhook)
        .service(unsubscribe::deliveries)
        .service(tokens::issue_token)
        .service(tokens::list_tokens)
        .service(tokens::revoke_token)
        .service(evidence::bundle)
        .service(evidence::campaign_proof)
        .service(evidence::tenant_evidence)
        .service(health::healthz)
        .service(health::readyz)
        .service(health::metrics);
}

/// The OpenAPI document of the service, built from the registered routes (no server needed).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes)
        .split_for_parts()
        .1;
    // After the routes' operations are merged in (modifiers on `ApiDoc` run before that).
    utoipa::Modify::modify(&CommonErrors, &mut doc);
    utoipa::Modify::modify(&ProofExamples, &mut doc);
    doc
}

/// The OpenAPI document as the pretty JSON committed in `openapi/openapi.json`.
pub fn openapi_json() -> String {
    let mut json = openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    json.push('\n');
    json
}

/// Binds `bind` (port 0 picks a free port) and returns the server, not yet running, and the
/// addresses it listens on.
pub fn server(state: AppState, bind: &str) -> std::io::Result<(Server, Vec<SocketAddr>)> {
    let document = openapi();
    let route_table = error::RouteTable::from_openapi(&document);
    let state = web::Data::new(state);
    let app = move || {
        let (app, _) = App::new()
            .into_utoipa_app()
            .openapi(ApiDoc::openapi())
            .app_data(state.clone())
            .app_data(web::QueryConfig::default().error_handler(error::bad_request))
            .app_data(web::PathConfig::default().error_handler(error::bad_request))
            // Raw bodies (events) are read up to 2 MiB; each endpoint then applies its own limit.
            .app_data(web::PayloadConfig::new(2 << 20))
            .app_data(
                web::JsonConfig::default()
                    .limit(8 << 20)
                    .error_handler(error::bad_request),
            )
            .configure(routes)
            .split_for_parts();
        // Interactive docs from files vendored in the binary: they work offline.
        app.service(SwaggerUi::new("/docs/{_:.*}").url("/docs/openapi.json", document.clone()))
            .wrap(error::problem_for_bare_errors(route_table.clone()))
            .wrap(from_fn(middleware::query_is_utf8))
            // The request id, the access log (paths only) and the metrics.
            .wrap(from_fn(middleware::request_id))
    };
    // actix-web's `HttpServer`, but with each connection wrapped (`connection.rs`) so that
    // actix-http's own answer to an unparsable request is a problem document too.
    let mut builder = actix_server::Server::build().shutdown_timeout(30);
    let mut addrs = Vec::new();
    let mut refused = None;
    for addr in std::net::ToSocketAddrs::to_socket_addrs(bind)? {
        // As actix-web's HttpServer: serve on the addresses that bind (`localhost` without
        // IPv6), fail only if none does.
        let listener = match std::net::TcpListener::bind(addr) {
            Ok(listener) => listener,
            Err(e) => {
                refused = Some(e);
                continue;
            }
        };
        let local = listener.local_addr()?;
        addrs.push(local);
        let app = app.clone();
        builder = builder.listen(format!("consent-ledger-{local}"), listener, move || {
            use actix_service::{IntoServiceFactory, ServiceFactoryExt};
            let factory = app()
                .into_factory()
                .map_err(|e: actix_web::Error| e.error_response());
            let http = actix_http::HttpService::build()
                .client_disconnect_timeout(std::time::Duration::from_secs(1))
                .local_addr(local)
                .finish(actix_service::map_config(factory, |_| {
                    actix_web::dev::AppConfig::default()
                }));
            actix_service::fn_service(|io: actix_web::rt::net::TcpStream| async move {
                let peer = io.peer_addr().ok();
                Ok::<_, actix_http::error::DispatchError>((
                    connection::ProblemOnBareError::new(io),
                    actix_http::Protocol::Http1,
                    peer,
                ))
            })
            .and_then(http)
        })?;
    }
    if addrs.is_empty() {
        return Err(refused.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::AddrNotAvailable,
                format!("{bind}: no address"),
            )
        }));
    }
    Ok((builder.run(), addrs))
}
