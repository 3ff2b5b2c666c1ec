//! Snapshots (inline, `insta`) of what people and programs read: the RFC 9457 problem bodies a
//! client's mistakes get — status, content type and the whole body, one mistake per test — and
//! the recipients' pages (the part inside `<main>`), as a Japanese recipient sees them.

use serde_json::json;

use crate::common::{Answer, TestApp, TestDb};
use crate::unsubscribe::{links, path_of, shop, Shop};

/// Runs each on a SQLite file: what a client reads does not depend on the backend (the other
/// suites run both), and an inline snapshot is asserted once per test process.
macro_rules! on_sqlite {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$name(crate::common::TestDb::sqlite()).await
            }
        }
    )*};
}

on_sqlite!(
    a_body_that_is_not_json,
    a_call_without_a_token,
    an_unknown_purpose,
    an_idempotency_key_reused_with_another_body,
    a_batch_with_an_invalid_event,
    an_unknown_path,
    a_method_the_path_does_not_take,
    a_query_that_is_not_utf8,
    a_header_with_a_nul,
    the_confirmation_page,
    the_unsubscribe_page
);

/// Status, content type and the pretty-printed body of a problem answer.
fn problem(res: &Answer) -> String {
    format!(
        "{} {}\n{}",
        res.status,
        res.header("content-type"),
        serde_json::to_string_pretty(&res.json()).unwrap()
    )
}

/// The `<main>` of a page.
fn main_of(res: &Answer) -> String {
    let html = res.text();
    let start = html.find("<main>").expect("a <main>");
    let end = html.find("</main>").expect("a </main>") + "</main>".len();
    html[start..end].to_string()
}

fn opt_in(email: &str) -> serde_json::Value {
    json!({"event": "opt_in", "email": email, "purposes": ["newsletter"], "method": "web_form",
           "received_by": {"role": "sender", "name": "Sakura Shop"}})
}

async fn post(app: &TestApp, shop: &Shop, path: &str, body: &serde_json::Value) -> Answer {
    app.call("POST", path, Some(&shop.sender), Some(body), &[])
        .await
}

async fn a_body_that_is_not_json(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let res = app
        .call_raw(
            "POST",
            "/v1/events",
            Some(&shop.sender),
            "application/json",
            b"{not json",
        )
        .await;
    insta::assert_snapshot!(problem(&res), @r#"
    400 application/problem+json
    {
      "detail": "invalid request body: key must be a string at line 1 column 2",
      "status": 400,
      "title": "Invalid request",
      "type": "/problems/invalid-request"
    }
    "#);
    app.stop().await;
}

async fn a_call_without_a_token(db: TestDb) {
    let app = TestApp::start(&db).await;
    let res = app
        .call(
            "POST",
            "/v1/events",
            None,
            Some(&opt_in("a@example.jp")),
            &[],
        )
        .await;
    insta::assert_snapshot!(problem(&res), @r#"
    401 application/problem+json
    {
      "detail": "this endpoint needs a bearer token: send 'Authorization: Bearer <token>'",
      "status": 401,
      "title": "Authentication required",
      "type": "/problems/unauthorized"
    }
    "#);
    app.stop().await;
}

async fn an_unknown_purpose(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let mut event = opt_in("a@example.jp");
    event["purposes"] = json!(["nope"]);
    let res = post(&app, &shop, "/v1/events", &event).await;
    insta::assert_snapshot!(problem(&res), @r#"
    422 application/problem+json
    {
      "detail": "unknown purpose \"nope\"; this tenant's purposes are: newsletter, offers",
      "status": 422,
      "title": "Invalid value",
      "type": "/problems/invalid-value"
    }
    "#);
    app.stop().await;
}

async fn an_idempotency_key_reused_with_another_body(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let key = [("Idempotency-Key", "k-1")];
    let first = app
        .call(
            "POST",
            "/v1/events",
            Some(&shop.sender),
            Some(&opt_in("a@example.jp")),
            &key,
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text());
    let res = app
        .call(
            "POST",
            "/v1/events",
            Some(&shop.sender),
            Some(&opt_in("b@example.jp")),
            &key,
        )
        .await;
    insta::assert_snapshot!(problem(&res), @r#"
    409 application/problem+json
    {
      "detail": "this Idempotency-Key was used with a different request",
      "status": 409,
      "title": "Conflict",
      "type": "/problems/conflict"
    }
    "#);
    app.stop().await;
}

async fn a_batch_with_an_invalid_event(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let batch = json!({"events": [opt_in("ok@example.jp"), opt_in("bad")]});
    let res = post(&app, &shop, "/v1/events:batch", &batch).await;
    insta::assert_snapshot!(problem(&res), @r#"
    422 application/problem+json
    {
      "detail": "1 item(s) of the batch are invalid; nothing was recorded",
      "errors": [
        {
          "detail": "invalid e-mail address: there is no '@'",
          "index": 1
        }
      ],
      "status": 422,
      "title": "Invalid items",
      "type": "/problems/invalid-items"
    }
    "#);
    app.stop().await;
}

async fn an_unknown_path(db: TestDb) {
    let app = TestApp::start(&db).await;
    let res = app.get("/v1/nothing-here").await;
    insta::assert_snapshot!(problem(&res), @r#"
    404 application/problem+json
    {
      "detail": "no resource at /v1/nothing-here; see /docs/openapi.json for the endpoints",
      "status": 404,
      "title": "Not found",
      "type": "/problems/not-found"
    }
    "#);
    app.stop().await;
}

async fn a_method_the_path_does_not_take(db: TestDb) {
    let app = TestApp::start(&db).await;
    let res = app.request("DELETE", "/checkpoint").await;
    insta::assert_snapshot!(problem(&res), @r#"
    405 application/problem+json
    {
      "detail": "method DELETE is not allowed here",
      "status": 405,
      "title": "Invalid request",
      "type": "/problems/invalid-request"
    }
    "#);
    app.stop().await;
}

async fn a_query_that_is_not_utf8(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let res = app
        .call(
            "GET",
            "/v1/consent?email=%FF%FE&purpose=newsletter",
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    insta::assert_snapshot!(problem(&res), @r#"
    400 application/problem+json
    {
      "detail": "the query string is not UTF-8 once percent-decoded: encode text as UTF-8 before percent-encoding it (e.g. %E3%81%82 for あ)",
      "status": 400,
      "title": "Invalid request",
      "type": "/problems/invalid-request"
    }
    "#);
    app.stop().await;
}

async fn a_header_with_a_nul(db: TestDb) {
    use std::io::{Read, Write};
    let app = TestApp::start(&db).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let answer = actix_web::rt::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\0b\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let mut headers: Vec<&str> = head.lines().filter(|l| !l.starts_with("date:")).collect();
    headers.sort();
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    insta::assert_snapshot!(
        format!("{}\n{}", headers.join("\n"), serde_json::to_string_pretty(&body).unwrap()),
        @r#"
    HTTP/1.1 400 Bad Request
    cache-control: no-store
    connection: close
    content-length: 226
    content-type: application/problem+json
    {
      "detail": "the request could not be parsed as HTTP/1.1: a header holds a control character (such as NUL), or the request line or a header is malformed",
      "status": 400,
      "title": "Invalid request",
      "type": "/problems/invalid-request"
    }
    "#
    );
    app.stop().await;
}

async fn the_confirmation_page(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let mut event = opt_in("c@example.jp");
    event["confirmation_required"] = json!(true);
    let recorded = post(&app, &shop, "/v1/events", &event).await.json();
    let url = recorded["confirmation_url"].as_str().unwrap();
    let page = app.get(&url[url.find("/confirm/").unwrap()..]).await;
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    insta::assert_snapshot!(main_of(&page), @"<main><h1>配信登録の確認</h1><p><strong>Sakura Shop K.K.</strong> から、次の広告・宣伝メールを受け取ることに同意しますか。</p><ul><li>Monthly newsletter</li></ul><form method=\"post\"><button type=\"submit\">同意して登録する</button></form><p>同意しない場合は、このページを閉じてください。何も登録されません。</p></main>");
    app.stop().await;
}

async fn the_unsubscribe_page(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let link = &links(&app, &shop, &["d@example.jp"], None).await[0];
    let page = app.get(&path_of(link["url"].as_str().unwrap())).await;
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    insta::assert_snapshot!(main_of(&page), @"<main><h1>配信停止</h1><p><strong>Sakura Shop K.K.</strong> からのメールの配信を停止します。</p><form method=\"post\"><input type=\"hidden\" name=\"scope\" value=\"all\"><p>Sakura Shop K.K. からのすべての広告・宣伝メールを停止します。</p><p><button type=\"submit\">配信を停止する</button></p></form></main>");
    app.stop().await;
}
