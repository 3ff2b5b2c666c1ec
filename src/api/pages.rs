//! HTML pages for recipients: no login, no cookies, no JavaScript, no external assets (a strict
//! Content-Security-Policy), Japanese or English. Today: the double opt-in confirmation page —
//! `GET` only shows it (mail scanners follow links), its button `POST`s the confirmation.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use crate::consent::model::Evidence;
use crate::consent::{self, ConsentError};
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
    let accept = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match query.lang.as_deref() {
        Some("en") => Lang::En,
        Some("ja") => Lang::Ja,
        _ if accept.trim_start().to_ascii_lowercase().starts_with("en") => Lang::En,
        _ => Lang::Ja,
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
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

fn invalid(lang: Lang) -> HttpResponse {
    let (title, text) = match lang {
        Lang::Ja => (
            "リンクが無効です",
            "このリンクは無効か、有効期限が切れています。お手数ですが、もう一度登録してください。",
        ),
        Lang::En => (
            "This link is not valid",
            "This link is not valid, or it has expired. Please sign up again.",
        ),
    };
    page(
        StatusCode::BAD_REQUEST,
        lang,
        title,
        &format!("<p>{text}</p>"),
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
                escape(if description.is_empty() {
                    key
                } else {
                    description
                })
            )
        })
        .collect();
    let sender = escape(&target.sender);
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
    let evidence = Evidence {
        // The socket's peer, not client-supplied forwarding headers (which anyone can forge).
        ip: req.peer_addr().map(|a| a.ip().to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(1000).collect()),
        confirmation_message_id: None,
        note: Some("confirmed with the double opt-in link".into()),
    };
    let (store, links, token) = (state.store.clone(), state.links.clone(), token.into_inner());
    let prepared =
        web::block(move || consent::prepare_confirmation(&store, &links, &token, evidence)).await;
    let done =
        |title: &str, text: String| page(StatusCode::OK, lang, title, &format!("<p>{text}</p>"));
    match prepared {
        Ok(Ok(entry)) => match state.log.append_entries(vec![Box::new(entry) as Box<dyn LogEntry>]).await {
            Ok(appended) => {
                let at = consent::recorded(&appended[0], &state.links).recorded_at;
                match lang {
                    Lang::Ja => done("登録しました", format!("配信登録が完了しました（{at}）。配信の停止は、届くメールの案内からいつでもできます。")),
                    Lang::En => done("You are subscribed", format!("Your subscription took effect at {at}. You can unsubscribe at any time from the link in each e-mail.")),
                }
            }
            Err(_) => page(StatusCode::SERVICE_UNAVAILABLE, lang, "Error", "<p>Not recorded. Please try again in a moment. / 記録できませんでした。しばらくしてからもう一度お試しください。</p>"),
        },
        Ok(Err(ConsentError::Conflict(_))) => match lang {
            Lang::Ja => done("確認済みです", "確認が必要な登録はありません（すでに確認済みか、配信停止の手続きがされています）。".into()),
            Lang::En => done("Nothing to confirm", "There is nothing left to confirm: it was confirmed already, or you unsubscribed since.".into()),
        },
        _ => invalid(lang),
    }
}
