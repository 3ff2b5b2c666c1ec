//! HTML pages for recipients: no login, no cookies, no JavaScript, no external assets (a strict
//! Content-Security-Policy), Japanese or English. A `GET` only shows a page (mail scanners
//! follow links); its button `POST`s. Here: the double opt-in confirmation page, and the
//! unsubscribe page, whose URL also takes RFC 8058 one-click `POST`s from mail clients. And one
//! page for inspectors, `/verify` (`evidence::page`): the one with a script, its own, allowed by
//! its hash.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use minijinja::{context, Value};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use crate::consent::{self};
use crate::error::DomainError;
use crate::log::LogEntry;
use crate::templates;

/// Page language.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LangQuery {
    /// `ja` or `en` (default: the browser's Accept-Language, then Japanese).
    pub lang: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    Ja,
    En,
}

fn lang(req: &HttpRequest, query: &LangQuery) -> Lang {
    lang_or(req, query, Lang::Ja)
}

/// The page language: `?lang=`, else Accept-Language's first choice if ja or en, else `default`.
fn lang_or(req: &HttpRequest, query: &LangQuery, default: Lang) -> Lang {
    match query.lang.as_deref() {
        Some("en") => return Lang::En,
        Some("ja") => return Lang::Ja,
        _ => {}
    }
    let accept = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    preferred(accept).unwrap_or(default)
}

/// The reader's preferred language of ours by Accept-Language (RFC 9110 §12.5.4: the highest
/// `q`, the earlier on a tie), if it names ja or en at all.
fn preferred(accept: &str) -> Option<Lang> {
    let mut best: Option<(f32, Lang)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
            })
            .unwrap_or(1.0);
        let lang = match tag.split('-').next() {
            Some("ja") => Lang::Ja,
            Some("en") => Lang::En,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, lang)| lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_follows_q_values() {
        assert!(preferred("en;q=0.1, ja") == Some(Lang::Ja));
        assert!(preferred("en-US,en;q=0.9,ja;q=0.8") == Some(Lang::En));
        assert!(preferred("ja-JP") == Some(Lang::Ja));
        assert!(preferred("fr, de;q=0.5").is_none());
        assert!(preferred("en;q=0, ja;q=0.2") == Some(Lang::Ja));
        assert!(preferred("").is_none());
    }
}

impl Lang {
    fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
}

/// A page: template `name` (of `crate::templates`) rendered with `lang` and `values`, with the
/// headers every recipients' page carries.
fn page(status: StatusCode, lang: Lang, name: &str, values: Value) -> HttpResponse {
    let html = templates::render(name, context! { lang => lang.code(), ..values });
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(html)
}

/// The verifier page
///
/// A static page where an inspector drops an evidence bundle (and, optionally, a trusted
/// checkpoint and a witness policy) and sees the verdict, the timeline and the screens, checked
/// in the browser by the TypeScript verifier; nothing is sent back. The log's verifier key is
/// filled in. `consent-ledger verify page` writes the same page as one file that works offline.
#[utoipa::path(get, path = "/verify", tag = "recipients",
    responses((status = 200, description = "The page", content_type = "text/html", body = String,
               example = json!("<!doctype html><html lang=\"ja\">…<h1>同意記録の検証 …"))))]
#[get("/verify")]
pub async fn verify_page(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            format!(
                "{}; frame-ancestors 'none'",
                crate::evidence::page::CSP.as_str()
            ),
        ))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(crate::evidence::page::verify_page(
            &state.log.verifier_key(),
        ))
}

/// The page for a signup link that is not valid or has expired.
fn invalid(lang: Lang) -> HttpResponse {
    page(
        StatusCode::BAD_REQUEST,
        lang,
        "invalid_link.html",
        context! { link => "signup" },
    )
}

/// Double opt-in confirmation page
///
/// The confirmation page of a double opt-in: who will mail, for what, and a button.
#[utoipa::path(get, path = "/confirm/{token}", tag = "recipients", params(("token" = String, Path, description = "From the confirmation link"), LangQuery),
    responses((status = 200, description = "The page", content_type = "text/html", body = String, example = json!("<!doctype html><html lang=\"ja\">…</html>")),
              (status = 400, description = "Invalid or expired link (a page)", content_type = "text/html", body = String)))]
#[get("/confirm/{token}")]
pub async fn confirmation_page(
    state: web::Data<AppState>,
    token: web::Path<String>,
    req: HttpRequest,
    query: web::Query<LangQuery>,
) -> HttpResponse {
    let lang = lang(&req, &query);
    let (store, links, token) = (state.store.clone(), state.links.clone(), token.into_inner());
    let Ok(Ok(target)) =
        web::block(move || consent::confirmation_target(&store, &links, &token)).await
    else {
        return invalid(lang);
    };
    let purposes: Vec<String> = target
        .purposes
        .iter()
        .map(|p| p.label(lang.code()).to_string())
        .collect();
    page(
        StatusCode::OK,
        lang,
        "confirm.html",
        context! { sender => target.sender, purposes },
    )
}

/// Confirm a double opt-in
///
/// The confirmation page's button: records the `confirm` event in the log.
#[utoipa::path(post, path = "/confirm/{token}", tag = "recipients", params(("token" = String, Path, description = "From the confirmation link"), LangQuery),
    responses((status = 200, description = "Confirmed (or nothing left to confirm), as a page", content_type = "text/html", body = String, example = json!("<!doctype html><html lang=\"ja\">…</html>")),
              (status = 400, description = "Invalid or expired link (a page)", content_type = "text/html", body = String),
              (status = 503, description = "Not recorded; try again (a page)", content_type = "text/html", body = String)))]
#[post("/confirm/{token}")]
pub async fn confirm(
    state: web::Data<AppState>,
    token: web::Path<String>,
    req: HttpRequest,
    query: web::Query<LangQuery>,
) -> HttpResponse {
    let lang = lang(&req, &query);
    let evidence = super::client_evidence(&state, &req, "confirmed with the double opt-in link");
    let (store, links, token) = (state.store.clone(), state.links.clone(), token.into_inner());
    // One confirmation at a time per link: a double click finds the first one recorded.
    let lock = format!("confirm:{token}");
    let outcome = state
        .unsubscribe_locks
        .run(&lock, async {
            let prepared =
                web::block(move || consent::prepare_confirmation(&store, &links, &token, evidence))
                    .await;
            match prepared {
                Ok(Ok(entry)) => Ok(state
                    .log
                    .append_entries(vec![Box::new(entry) as Box<dyn LogEntry>])
                    .await),
                other => Err(other),
            }
        })
        .await;
    match outcome {
        Ok(Ok(appended)) => {
            let at = human_time(
                lang,
                &consent::recorded(&appended[0], &state.links).recorded_at,
            );
            page(StatusCode::OK, lang, "confirmed.html", context! { at })
        }
        Ok(Err(_)) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            lang,
            "not_recorded.html",
            context! {},
        ),
        Err(Ok(Err(DomainError::Conflict(_)))) => {
            page(StatusCode::OK, lang, "nothing_to_confirm.html", context! {})
        }
        _ => invalid(lang),
    }
}

/// A page for when the service cannot answer now (overloaded, database unavailable).
fn busy_page(lang: Lang, error: &super::error::ApiError) -> HttpResponse {
    let status = match error {
        super::error::ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut page = page(status, lang, "busy.html", context! {});
    page.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    page
}

/// A page for an unsubscribe link that is not valid (tampered with, expired, unknown).
fn invalid_unsubscribe(lang: Lang) -> HttpResponse {
    page(
        StatusCode::NOT_FOUND,
        lang,
        "invalid_link.html",
        context! { link => "unsubscribe" },
    )
}

/// A time for people: Japan time in Japanese pages, UTC in English ones (RFC 3339 in, as stored).
fn human_time(lang: Lang, rfc3339: &str) -> String {
    let Ok(t) =
        time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
    else {
        return rfc3339.to_string();
    };
    match lang {
        Lang::Ja => {
            let t = t.to_offset(time::UtcOffset::from_hms(9, 0, 0).expect("a valid offset"));
            format!(
                "{}年{}月{}日 {:02}:{:02}:{:02}（日本時間）",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        Lang::En => format!(
            "{} {} {} {:02}:{:02}:{:02} UTC",
            t.day(),
            t.month(),
            t.year(),
            t.hour(),
            t.minute(),
            t.second()
        ),
    }
}

fn unsubscribed_page(lang: Lang, sender: Option<&str>, since: &str) -> HttpResponse {
    let since = human_time(lang, since);
    page(
        StatusCode::OK,
        lang,
        "unsubscribed.html",
        context! { sender, since },
    )
}

/// Unsubscribe page
///
/// The unsubscribe page: who sends, what will stop (the link's purpose, or all mail), and a
/// button. Opening it changes nothing.
#[utoipa::path(get, path = "/u/{token}", tag = "recipients", params(("token" = String, Path, description = "From the unsubscribe link"), LangQuery),
    responses((status = 200, description = "The page", content_type = "text/html", body = String, example = json!("<!doctype html><html lang=\"ja\">…</html>")),
              (status = 404, description = "Invalid link (a page)", content_type = "text/html", body = String)))]
#[get("/u/{token}")]
pub async fn unsubscribe_page(
    state: web::Data<AppState>,
    token: web::Path<String>,
    req: HttpRequest,
    query: web::Query<LangQuery>,
) -> HttpResponse {
    let target = match super::unsubscribe::link(&state, &req, &token) {
        Ok(target) => target,
        Err(super::error::ApiError::NotFound(_)) => return invalid_unsubscribe(lang(&req, &query)),
        Err(e) => return busy_page(lang(&req, &query), &e),
    };
    let store = state.store.clone();
    let content = super::short_query(&state.store, move || {
        crate::unsubscribe::page(&store, &target)
    })
    .await;
    let content = match content {
        Ok(content) => content,
        Err(super::error::ApiError::NotFound(_)) => return invalid_unsubscribe(lang(&req, &query)),
        Err(e) => return busy_page(lang(&req, &query), &e),
    };
    let default = if content.default_language == "en" {
        Lang::En
    } else {
        Lang::Ja
    };
    let lang = lang_or(&req, &query, default);
    if let Some(since) = &content.all_stopped_since {
        return unsubscribed_page(lang, Some(&content.sender), since);
    }
    let purpose = content.purpose.as_ref().map(|p| p.label(lang.code()));
    let stopped_since = content
        .stopped_since
        .as_deref()
        .map(|since| human_time(lang, since));
    page(
        StatusCode::OK,
        lang,
        "unsubscribe.html",
        context! { sender => content.sender, purpose, stopped_since },
    )
}

/// The unsubscribe form's fields (the page's button), or RFC 8058's one-click body.
struct UnsubscribeForm {
    scope: Option<String>,
    list_unsubscribe: Option<String>,
}

/// Unsubscribe (page button or RFC 8058 one-click)
///
/// Unsubscribes. Two callers: a mail client's RFC 8058 one-click (`List-Unsubscribe=One-Click`,
/// form-encoded or multipart; answered with JSON), and the page's button (`scope=purpose|all`;
/// answered with a page stating when it took effect). Idempotent: what is already stopped is
/// answered with the time it stopped, and nothing more is recorded.
#[utoipa::path(post, path = "/u/{token}", tag = "recipients", params(("token" = String, Path, description = "From the unsubscribe link"), LangQuery),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`List-Unsubscribe=One-Click` (RFC 8058), or the page's `scope=purpose|all`", example = json!("List-Unsubscribe=One-Click")),
    responses((status = 200, description = "Unsubscribed: JSON for one-click, a page for the button", body = super::unsubscribe::Unsubscribed),
              (status = 400, description = "Neither a one-click nor the page's form", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "Invalid link (JSON for one-click, a page for the button)", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 429, description = "Too many requests", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 503, description = "Not recorded; try again", body = super::error::Problem, content_type = "application/problem+json")))]
#[post("/u/{token}")]
pub async fn unsubscribe(
    state: web::Data<AppState>,
    token: web::Path<String>,
    req: HttpRequest,
    query: web::Query<LangQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, super::error::ApiError> {
    use super::error::ApiError;
    use crate::consent::model::Method;
    use crate::unsubscribe::Scope;
    if body.len() > 16 << 10 {
        return Err(ApiError::TooLarge("an unsubscribe form is small".into()));
    }
    // RFC 8058 allows multipart/form-data too: its one field, in any encoding, says one-click.
    let text = String::from_utf8_lossy(&body);
    let multipart_one_click =
        text.contains("name=\"List-Unsubscribe\"") && text.contains("One-Click");
    let form: UnsubscribeForm = unsubscribe_form(&text);
    let one_click = multipart_one_click || form.list_unsubscribe.as_deref() == Some("One-Click");
    let scope = match (one_click, form.scope.as_deref()) {
        (true, _) => Scope::Purpose,
        (false, Some("purpose")) => Scope::Purpose,
        (false, Some("all")) => Scope::All,
        _ => {
            return Err(ApiError::BadRequest(
                "send List-Unsubscribe=One-Click (RFC 8058), or use the page's button".into(),
            ))
        }
    };
    let evidence = super::client_evidence(
        &state,
        &req,
        if one_click {
            "one-click unsubscribe (RFC 8058)"
        } else {
            "unsubscribe page"
        },
    );
    let method = if one_click {
        Method::OneClick
    } else {
        Method::WebForm
    };
    let done = match super::unsubscribe::link(&state, &req, &token) {
        Ok(target) => {
            super::unsubscribe::unsubscribe_once(&state, target, scope, method, evidence).await
        }
        Err(e) => Err(e),
    };
    if one_click {
        return Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(done?));
    }
    let lang = lang(&req, &query);
    Ok(match done {
        Ok(done) => unsubscribed_page(lang, None, &done.since),
        Err(ApiError::NotFound(_)) => invalid_unsubscribe(lang),
        Err(e) => busy_page(lang, &e),
    })
}

/// Parses a form-encoded body leniently (unknown fields ignored, nothing required).
fn unsubscribe_form(text: &str) -> UnsubscribeForm {
    let mut form = UnsubscribeForm {
        scope: None,
        list_unsubscribe: None,
    };
    for (key, value) in url::form_urlencoded::parse(text.trim().as_bytes()) {
        match key.as_ref() {
            "scope" => form.scope = Some(value.into_owned()),
            "List-Unsubscribe" => form.list_unsubscribe = Some(value.into_owned()),
            _ => {}
        }
    }
    form
}
