//! HTML pages for recipients: no login, no cookies, no JavaScript, no external assets (a strict
//! Content-Security-Policy), Japanese or English. A `GET` only shows a page (mail scanners
//! follow links); its button `POST`s. Here: the double opt-in confirmation page, and the
//! unsubscribe page, whose URL also takes RFC 8058 one-click `POST`s from mail clients.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use crate::consent::{self};
use crate::error::DomainError;
use crate::escape_html;
use crate::log::LogEntry;

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

fn page(status: StatusCode, lang: Lang, title: &str, body: &str) -> HttpResponse {
    let html_lang = if lang == Lang::Ja { "ja" } else { "en" };
    let switch = if lang == Lang::Ja {
        r#"<a href="?lang=en" hreflang="en">English</a>"#
    } else {
        r#"<a href="?lang=ja" hreflang="ja">日本語</a>"#
    };
    let html = format!(
        r#"<!doctype html>
<html lang="{html_lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;line-height:1.6;color:#1a1a1a}}
h1{{font-size:1.4rem}}button{{font-size:1.1rem;padding:.6rem 1.4rem;border-radius:.4rem;border:2px solid #1a56db;background:#1a56db;color:#fff;cursor:pointer}}
button:focus{{outline:3px solid #f59e0b;outline-offset:2px}}nav{{text-align:right;font-size:.9rem}}</style></head>
<body><nav>{switch}</nav><main><h1>{title}</h1>{body}</main></body></html>"#
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(html)
}

/// The page for a link that is not valid: one title, what to do next in the reader's language.
fn invalid_link(status: StatusCode, lang: Lang, ja: &str, en: &str) -> HttpResponse {
    let (title, text) = match lang {
        Lang::Ja => ("リンクが無効です", ja),
        Lang::En => ("This link is not valid", en),
    };
    page(status, lang, title, &format!("<p>{text}</p>"))
}

fn invalid(lang: Lang) -> HttpResponse {
    invalid_link(
        StatusCode::BAD_REQUEST,
        lang,
        "このリンクは無効か、有効期限が切れています。お手数ですが、もう一度登録してください。",
        "This link is not valid, or it has expired. Please sign up again.",
    )
}

/// The confirmation page of a double opt-in: who will mail, for what, and a button.
#[utoipa::path(get, path = "/confirm/{token}", tag = "recipients", params(("token" = String, Path, description = "From the confirmation link"), LangQuery),
    responses((status = 200, description = "The page", content_type = "text/html", body = String),
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
    let purposes: String = target
        .purposes
        .iter()
        .map(|(key, description)| {
            format!(
                "<li>{}</li>",
                escape_html(if description.is_empty() {
                    key
                } else {
                    description
                })
            )
        })
        .collect();
    let sender = escape_html(&target.sender);
    let body = match lang {
        Lang::Ja => format!("<p><strong>{sender}</strong> から、次の広告・宣伝メールを受け取ることに同意しますか。</p><ul>{purposes}</ul><form method=\"post\"><button type=\"submit\">同意して登録する</button></form><p>同意しない場合は、このページを閉じてください。何も登録されません。</p>"),
        Lang::En => format!("<p>Do you agree to receive the following advertising e-mail from <strong>{sender}</strong>?</p><ul>{purposes}</ul><form method=\"post\"><button type=\"submit\">Yes, subscribe me</button></form><p>If you do not agree, just close this page. Nothing will be recorded.</p>"),
    };
    let title = if lang == Lang::Ja {
        "配信登録の確認"
    } else {
        "Confirm your subscription"
    };
    page(StatusCode::OK, lang, title, &body)
}

/// The confirmation page's button: records the `confirm` event in the log.
#[utoipa::path(post, path = "/confirm/{token}", tag = "recipients", params(("token" = String, Path, description = "From the confirmation link"), LangQuery),
    responses((status = 200, description = "Confirmed (or nothing left to confirm), as a page", content_type = "text/html", body = String),
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
    let done =
        |title: &str, text: String| page(StatusCode::OK, lang, title, &format!("<p>{text}</p>"));
    match outcome {
        Ok(appended) => match appended {
            Ok(appended) => {
                let at = human_time(lang, &consent::recorded(&appended[0], &state.links).recorded_at);
                match lang {
                    Lang::Ja => done("登録しました", format!("配信登録が完了しました（{at}）。配信の停止は、届くメールの案内からいつでもできます。")),
                    Lang::En => done("You are subscribed", format!("Your subscription took effect at {at}. You can unsubscribe at any time from the link in each e-mail.")),
                }
            }
            Err(_) => page(StatusCode::SERVICE_UNAVAILABLE, lang, "Error", "<p>Not recorded. Please try again in a moment. / 記録できませんでした。しばらくしてからもう一度お試しください。</p>"),
        },
        Err(Ok(Err(DomainError::Conflict(_)))) => match lang {
            Lang::Ja => done("確認済みです", "確認が必要な登録はありません（すでに確認済みか、配信停止の手続きがされています）。".into()),
            Lang::En => done("Nothing to confirm", "There is nothing left to confirm: it was confirmed already, or you unsubscribed since.".into()),
        },
        _ => invalid(lang),
    }
}

/// A page for when the service cannot answer now (overloaded, database unavailable).
fn busy_page(lang: Lang, error: &super::error::ApiError) -> HttpResponse {
    let status = match error {
        super::error::ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut page = page(
        status,
        lang,
        if lang == Lang::Ja { "しばらくお待ちください" } else { "Please try again" },
        "<p>Nothing was changed. Please try again in a moment. / 何も変更されていません。しばらくしてからもう一度お試しください。</p>",
    );
    page.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    page
}

/// A page for an unsubscribe link that is not valid (tampered with, expired, unknown).
fn invalid_unsubscribe(lang: Lang) -> HttpResponse {
    invalid_link(
        StatusCode::NOT_FOUND,
        lang,
        "この配信停止リンクは無効です。お手数ですが、届いたメールのリンクをそのままお使いいただくか、送信者に直接ご連絡ください。",
        "This unsubscribe link is not valid. Please use the link in the e-mail exactly as it is, or contact the sender directly.",
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
    let since = escape_html(&human_time(lang, since));
    let (title, text) = match (lang, sender) {
        (Lang::Ja, Some(s)) => (
            "配信を停止しました",
            format!(
                "<strong>{}</strong> からの配信を停止しました。{since} に反映済みです。",
                escape_html(s)
            ),
        ),
        (Lang::Ja, None) => (
            "配信を停止しました",
            format!("配信を停止しました。{since} に反映済みです。"),
        ),
        (Lang::En, Some(s)) => (
            "You are unsubscribed",
            format!(
                "Mail from <strong>{}</strong> is stopped. This took effect at {since}.",
                escape_html(s)
            ),
        ),
        (Lang::En, None) => (
            "You are unsubscribed",
            format!("Your unsubscribe took effect at {since}."),
        ),
    };
    page(StatusCode::OK, lang, title, &format!("<p>{text}</p>"))
}

/// The unsubscribe page: who sends, what will stop (the link's purpose, or all mail), and a
/// button. Opening it changes nothing.
#[utoipa::path(get, path = "/u/{token}", tag = "recipients", params(("token" = String, Path, description = "From the unsubscribe link"), LangQuery),
    responses((status = 200, description = "The page", content_type = "text/html", body = String),
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
    let sender = escape_html(&content.sender);
    let choices = match (&content.purpose, lang) {
        // The purpose is stopped already: say so, and offer to stop all mail.
        (Some((key, description)), _) if content.stopped_since.is_some() => {
            let name = escape_html(if description.is_empty() {
                key
            } else {
                description
            });
            let since = escape_html(&human_time(
                lang,
                content.stopped_since.as_deref().unwrap_or_default(),
            ));
            match lang {
                Lang::Ja => format!(
                    r#"<p>「{name}」のメールは {since} に停止済みです。</p><input type="hidden" name="scope" value="all"><p>{sender} からのほかの広告・宣伝メールもすべて停止できます。</p>"#
                ),
                Lang::En => format!(
                    r#"<p>“{name}” was stopped at {since}.</p><input type="hidden" name="scope" value="all"><p>You can also stop all other advertising e-mail from {sender}.</p>"#
                ),
            }
        }
        (Some((key, description)), _) => {
            let name = escape_html(if description.is_empty() {
                key
            } else {
                description
            });
            let (one, all) = match lang {
                Lang::Ja => (
                    format!("「{name}」のメールだけを停止する"),
                    format!("{sender} からのすべての広告・宣伝メールを停止する"),
                ),
                Lang::En => (
                    format!("Stop only “{name}”"),
                    format!("Stop all advertising e-mail from {sender}"),
                ),
            };
            format!(
                r#"<fieldset><legend>{}</legend><p><label><input type="radio" name="scope" value="purpose" checked> {one}</label></p><p><label><input type="radio" name="scope" value="all"> {all}</label></p></fieldset>"#,
                if lang == Lang::Ja {
                    "停止する範囲"
                } else {
                    "What to stop"
                }
            )
        }
        (None, Lang::Ja) => format!(
            r#"<input type="hidden" name="scope" value="all"><p>{sender} からのすべての広告・宣伝メールを停止します。</p>"#
        ),
        (None, Lang::En) => format!(
            r#"<input type="hidden" name="scope" value="all"><p>All advertising e-mail from {sender} will stop.</p>"#
        ),
    };
    let (title, intro, button) = match lang {
        Lang::Ja => (
            "配信停止",
            format!("<p><strong>{sender}</strong> からのメールの配信を停止します。</p>"),
            "配信を停止する",
        ),
        Lang::En => (
            "Unsubscribe",
            format!("<p>Stop e-mail from <strong>{sender}</strong>.</p>"),
            "Unsubscribe",
        ),
    };
    let body = format!(
        r#"{intro}<form method="post">{choices}<p><button type="submit">{button}</button></p></form>"#
    );
    page(StatusCode::OK, lang, title, &body)
}

/// The unsubscribe form's fields (the page's button), or RFC 8058's one-click body.
struct UnsubscribeForm {
    scope: Option<String>,
    list_unsubscribe: Option<String>,
}

/// Unsubscribes. Two callers: a mail client's RFC 8058 one-click (`List-Unsubscribe=One-Click`,
/// form-encoded or multipart; answered with JSON), and the page's button (`scope=purpose|all`;
/// answered with a page stating when it took effect). Idempotent: what is already stopped is
/// answered with the time it stopped, and nothing more is recorded.
#[utoipa::path(post, path = "/u/{token}", tag = "recipients", params(("token" = String, Path, description = "From the unsubscribe link"), LangQuery),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`List-Unsubscribe=One-Click` (RFC 8058), or the page's `scope=purpose|all`"),
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
