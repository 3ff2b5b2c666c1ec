//! Recipients unsubscribe: links and headers for a campaign, RFC 8058 one-click exactly as a
//! mail provider sends it, the page (a GET changes nothing; its button does), the mailto path,
//! tampered and foreign tokens, a flood for one address, the display notice, and the signed
//! webhook. Each on SQLite and PostgreSQL.

use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use consent_ledger::api::AppState;
use consent_ledger::auth::Role;
use consent_ledger::consent::{self, model::*};
use serde_json::{json, Value};

use crate::common::{TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(
    a_campaign_unsubscribes_by_one_click_page_and_mail,
    a_flood_of_one_clicks_records_one_opt_out,
    the_display_notice_is_complete_or_refused,
    opt_outs_reach_the_webhook_signed,
);

/// A tenant with two purposes, its sender and an admin token.
pub struct Shop {
    pub tenant: String,
    pub sender: String,
    pub admin: String,
}

pub fn shop(db: &TestDb, postal: bool) -> Shop {
    shop_in(&db.config(), postal)
}

/// The same in a service opened with `config`.
pub fn shop_in(config: &consent_ledger::config::Config, postal: bool) -> Shop {
    let state = AppState::open(config).unwrap();
    let tenant = consent::create_tenant(
        &state.store,
        NewTenant {
            name: "Shop".into(),
            legal_name: Some("Sakura Shop K.K.".into()),
            postal_address: postal.then(|| "1-2-3 Chiyoda, Tokyo".into()),
            complaint_contact: postal.then(|| "support@shop.example.jp".into()),
            purposes: vec![
                PurposeDefinition {
                    purpose: "newsletter".into(),
                    description: "Monthly newsletter".into(),
                    ..Default::default()
                },
                PurposeDefinition {
                    purpose: "offers".into(),
                    description: "Special offers".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        },
    )
    .unwrap();
    let issue = |role, tenant: Option<&str>| {
        state
            .authority
            .issue(role, tenant, "test", Duration::from_secs(600))
            .unwrap()
    };
    let shop = Shop {
        sender: issue(Role::Sender, Some(&tenant.id)),
        admin: issue(Role::Admin, None),
        tenant: tenant.id,
    };
    state.log.shutdown();
    shop
}

pub async fn opt_in(app: &TestApp, shop: &Shop, email: &str) -> serde_json::Value {
    let res = app
        .call(
            "POST",
            "/v1/events",
            Some(&shop.sender),
            Some(&json!({"event": "opt_in", "email": email, "purposes": ["newsletter", "offers"],
                         "method": "web_form", "received_by": {"role": "sender", "name": "Sakura Shop"}})),
            &[],
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()
}

pub async fn may_send(app: &TestApp, shop: &Shop, email: &str, purpose: &str) -> bool {
    let res = app
        .call(
            "GET",
            &format!("/v1/consent?email={email}&purpose={purpose}"),
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["may_send"].as_bool().unwrap()
}

async fn history(app: &TestApp, shop: &Shop, email: &str) -> Vec<Value> {
    let res = app
        .call(
            "GET",
            &format!("/v1/subjects/events?email={email}"),
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["events"].as_array().unwrap().clone()
}

pub async fn links(
    app: &TestApp,
    shop: &Shop,
    emails: &[&str],
    purpose: Option<&str>,
) -> Vec<Value> {
    let mut body = json!({"emails": emails});
    if let Some(p) = purpose {
        body["purpose"] = p.into();
    }
    let res = app
        .call(
            "POST",
            "/v1/unsubscribe-links",
            Some(&shop.sender),
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["links"].as_array().unwrap().clone()
}

/// The path of a link's URL on the test server.
pub fn path_of(url: &str) -> String {
    format!("/u/{}", url.rsplit_once("/u/").unwrap().1)
}

pub async fn one_click(app: &TestApp, path: &str) -> crate::common::Answer {
    // As Gmail sends it (RFC 8058 §3.2).
    app.call_raw(
        "POST",
        path,
        None,
        "application/x-www-form-urlencoded",
        b"List-Unsubscribe=One-Click",
    )
    .await
}

async fn a_campaign_unsubscribes_by_one_click_page_and_mail(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    for email in ["a@example.jp", "b@example.jp", "c@example.jp"] {
        opt_in(&app, &shop, email).await;
    }
    let links = links(
        &app,
        &shop,
        &[
            "a@example.jp",
            "B@Example.JP",
            "c@example.jp",
            "never-seen@example.jp",
        ],
        Some("newsletter"),
    )
    .await;
    assert_eq!(links.len(), 4);
    assert_eq!(links[1]["email"], "b@example.jp", "normalised");
    for link in &links {
        let url = link["url"].as_str().unwrap();
        assert!(url.contains("/u/") && !url.contains('@'), "{url}");
        let mailto = link["mailto"].as_str().unwrap();
        assert!(mailto.starts_with("mailto:unsubscribe@"), "{mailto}");
        assert_eq!(
            link["headers"]["List-Unsubscribe"],
            format!("<{url}>, <{mailto}>")
        );
        assert_eq!(
            link["headers"]["List-Unsubscribe-Post"],
            "List-Unsubscribe=One-Click"
        );
    }
    // Deterministic: the same recipient and purpose, the same link.
    let again = self::links(&app, &shop, &["a@example.jp"], Some("newsletter")).await;
    assert_eq!(again[0]["url"], links[0]["url"]);

    // The page: shows the sender, changes nothing.
    let a = path_of(links[0]["url"].as_str().unwrap());
    let page = app.get(&a).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page
        .header("content-security-policy")
        .contains("default-src 'none'"));
    let html = page.text();
    assert!(
        html.contains("Sakura Shop K.K.") && html.contains("配信を停止する"),
        "{html}"
    );
    assert!(html.contains("Monthly newsletter"));
    let en = app.get(&format!("{a}?lang=en")).await.text();
    assert!(
        en.contains("Unsubscribe") && en.contains("Stop only"),
        "{en}"
    );
    assert!(may_send(&app, &shop, "a@example.jp", "newsletter").await);

    // One-click as a mail provider sends it: newsletter stops, offers go on.
    let res = one_click(&app, &a).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let first = res.json();
    assert_eq!(first["unsubscribed"], true);
    assert!(first["event_id"].is_string() && first["leaf_index"].is_u64());
    assert!(!may_send(&app, &shop, "a@example.jp", "newsletter").await);
    assert!(may_send(&app, &shop, "a@example.jp", "offers").await);
    // Idempotent: a repeat records nothing and answers with the first.
    let repeat = one_click(&app, &a).await;
    assert_eq!(repeat.status, 200);
    assert_eq!(repeat.json()["event_id"], Value::Null);
    assert_eq!(repeat.json()["since"], first["since"]);
    let events = history(&app, &shop, "a@example.jp").await;
    let opt_outs: Vec<&Value> = events.iter().filter(|e| e["event"] == "opt_out").collect();
    assert_eq!(opt_outs.len(), 1);
    assert_eq!(opt_outs[0]["method"], "one_click");
    assert_eq!(opt_outs[0]["purposes"], json!(["newsletter"]));
    assert_eq!(opt_outs[0]["leaf_index"], first["leaf_index"]);
    // The page now says the purpose is stopped, with the time, and still offers all mail.
    let done = app.get(&a).await.text();
    assert!(
        done.contains("停止済み") && done.contains("（日本時間）"),
        "{done}"
    );
    assert!(done.contains(r#"name="scope" value="all""#), "{done}");
    // The page's other button stops the rest.
    let rest = app
        .call_raw(
            "POST",
            &a,
            None,
            "application/x-www-form-urlencoded",
            b"scope=all",
        )
        .await;
    assert_eq!(rest.status, 200, "{}", rest.text());
    assert!(!may_send(&app, &shop, "a@example.jp", "offers").await);
    let whole = app.get(&a).await.text();
    assert!(whole.contains("配信を停止しました"), "{whole}");

    // An empty or odd User-Agent is evidence, never a reason to refuse an opt-out.
    opt_in(&app, &shop, "ua@example.jp").await;
    let ua = self::links(&app, &shop, &["ua@example.jp"], None).await;
    for (n, agent) in ["", "Mozilla/5.0\tcompatible"].into_iter().enumerate() {
        // A first click records (with that agent), the second finds it stopped.
        let res = app
            .call_raw_with(
                "POST",
                &path_of(ua[0]["url"].as_str().unwrap()),
                None,
                "application/x-www-form-urlencoded",
                b"List-Unsubscribe=One-Click",
                &[("User-Agent", agent)],
            )
            .await;
        assert_eq!(res.status, 200, "{agent:?}: {}", res.text());
        assert_eq!(res.json()["event_id"].is_string(), n == 0);
    }

    // Multipart one-click (RFC 8058 allows it).
    let b = path_of(links[1]["url"].as_str().unwrap());
    let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
    let res = app
        .call_raw(
            "POST",
            &b,
            None,
            "multipart/form-data; boundary=XyZ",
            multipart.as_bytes(),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(!may_send(&app, &shop, "b@example.jp", "newsletter").await);

    // The page's button, for all mail.
    let c = path_of(links[2]["url"].as_str().unwrap());
    let res = app
        .call_raw(
            "POST",
            &c,
            None,
            "application/x-www-form-urlencoded",
            b"scope=all",
        )
        .await;
    assert_eq!(res.status, 200);
    assert!(res.text().contains("反映済み"), "{}", res.text());
    assert!(!may_send(&app, &shop, "c@example.jp", "newsletter").await);
    assert!(!may_send(&app, &shop, "c@example.jp", "offers").await);
    let c_events = history(&app, &shop, "c@example.jp").await;
    assert_eq!(c_events.last().unwrap()["method"], "web_form");
    assert_eq!(c_events.last().unwrap()["purposes"], "all");

    // The mailto path: the MTA pipes the message in.
    let mailto = links[3]["mailto"].as_str().unwrap();
    let token = mailto.rsplit_once("unsubscribe%20").unwrap().1;
    let mail = format!(
        "From: never-seen@example.jp\r\nTo: unsubscribe@127.0.0.1\r\nSubject: unsubscribe {token}\r\nMessage-ID: <m1@example.jp>\r\n\r\n"
    );
    let res = app
        .call_raw(
            "POST",
            "/v1/unsubscribe-mail",
            Some(&shop.admin),
            "message/rfc822",
            mail.as_bytes(),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let seen = history(&app, &shop, "never-seen@example.jp").await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["event"], "opt_out");
    assert_eq!(seen[0]["method"], "email");
    // Only an admin (the MTA's operator) feeds mail in; a mail without a token is a 422.
    let res = app
        .call_raw(
            "POST",
            "/v1/unsubscribe-mail",
            Some(&shop.sender),
            "message/rfc822",
            mail.as_bytes(),
        )
        .await;
    assert_eq!(res.status, 403);
    let res = app
        .call_raw(
            "POST",
            "/v1/unsubscribe-mail",
            Some(&shop.admin),
            "message/rfc822",
            b"Subject: hi\r\n\r\n",
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(res
        .header("content-type")
        .starts_with("application/problem+json"));

    // Tampered, garbage and other-kind tokens: a clear page or problem, nothing recorded.
    let mut tampered = a.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [tampered.as_str(), "/u/garbage", "/u/a.b", "/u/%00"] {
        let page = app.get(bad).await;
        assert_eq!(page.status, 404, "{bad}");
        assert!(page.text().contains("リンクが無効です"), "{bad}");
        let res = one_click(&app, bad).await;
        assert_eq!(res.status, 404, "{bad}: {}", res.text());
        assert!(res
            .header("content-type")
            .starts_with("application/problem+json"));
    }
    let res = app
        .call_raw(
            "POST",
            &a,
            None,
            "application/x-www-form-urlencoded",
            b"hello=1",
        )
        .await;
    assert_eq!(res.status, 400);
    // A double opt-in confirmation token is not an unsubscribe token.
    let pending = app
        .call(
            "POST",
            "/v1/events",
            Some(&shop.sender),
            Some(
                &json!({"event": "opt_in", "email": "d@example.jp", "purposes": ["newsletter"],
                         "method": "web_form", "confirmation_required": true,
                         "received_by": {"role": "sender", "name": "Sakura Shop"}}),
            ),
            &[],
        )
        .await;
    let confirm = pending.json()["confirmation_url"]
        .as_str()
        .unwrap()
        .to_string();
    let confirm_token = confirm.rsplit_once("/confirm/").unwrap().1;
    let res = one_click(&app, &format!("/u/{confirm_token}")).await;
    assert_eq!(res.status, 404);
    assert_eq!(history(&app, &shop, "d@example.jp").await.len(), 1);

    // Links: bad input is a clear 4xx.
    for (body, status) in [
        (json!({"emails": []}), 422),
        (json!({"emails": ["not an address"]}), 422),
        (
            json!({"emails": ["a@example.jp"], "purpose": "unknown"}),
            422,
        ),
        (json!({"emails": ["a@example.jp"], "valid_days": 30}), 422),
        (json!({"emails": ["a@example.jp"], "extra": 1}), 400),
    ] {
        let res = app
            .call(
                "POST",
                "/v1/unsubscribe-links",
                Some(&shop.sender),
                Some(&body),
                &[],
            )
            .await;
        assert_eq!(res.status, status, "{body}: {}", res.text());
    }
    let res = app
        .call(
            "POST",
            "/v1/unsubscribe-links",
            Some(&shop.admin),
            Some(&json!({"emails": ["a@example.jp"]})),
            &[],
        )
        .await;
    assert_eq!(res.status, 403);
    let expiring = app
        .call(
            "POST",
            "/v1/unsubscribe-links",
            Some(&shop.sender),
            Some(&json!({"emails": ["a@example.jp"], "valid_days": 60})),
            &[],
        )
        .await;
    assert_eq!(expiring.status, 200);
    assert!(expiring.json()["expires_at"].is_string());
    app.stop().await;
}

async fn a_flood_of_one_clicks_records_one_opt_out(db: TestDb) {
    let app = Rc::new(TestApp::start(&db).await);
    let shop = shop(&db, true);
    opt_in(&app, &shop, "flood@example.jp").await;
    let url = links(&app, &shop, &["flood@example.jp"], None).await[0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let path = path_of(&url);
    let mut clicks = Vec::new();
    for _ in 0..40 {
        let (app, path) = (app.clone(), path.clone());
        clicks.push(actix_web::rt::spawn(async move {
            let res = one_click(&app, &path).await;
            (res.status, res.text())
        }));
    }
    let mut recorded = 0;
    for click in clicks {
        let (status, text) = click.await.unwrap();
        assert_eq!(status, 200, "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        if body["event_id"].is_string() {
            recorded += 1;
        }
    }
    assert_eq!(recorded, 1);
    let events = history(&app, &shop, "flood@example.jp").await;
    assert_eq!(events.iter().filter(|e| e["event"] == "opt_out").count(), 1);
    assert!(!may_send(&app, &shop, "flood@example.jp", "newsletter").await);
    Rc::try_unwrap(app).ok().unwrap().stop().await;
}

async fn the_display_notice_is_complete_or_refused(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, false);
    let res = app
        .call(
            "GET",
            "/v1/display-notice?lang=ja",
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.text());
    let detail = res.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("postal_address") && detail.contains("complaint_contact"),
        "{detail}"
    );
    assert!(detail.contains("optout_contact"), "{detail}");
    // Refused with email= too, and nothing written (no subject for the address).
    let res = app
        .call(
            "GET",
            "/v1/display-notice?lang=ja&email=new@example.jp",
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status, 422);
    let state = AppState::open(&db.config()).unwrap();
    let subject = state
        .store
        .read(|r| {
            Ok::<_, consent_ledger::store::StoreError>(
                r.subject_by_address(&shop.tenant, "new@example.jp")?,
            )
        })
        .unwrap();
    state.log.shutdown();
    assert!(subject.is_none(), "a refused request wrote a subject");

    let patch = app
        .call(
            "PATCH",
            &format!("/v1/tenants/{}", shop.tenant),
            Some(&shop.sender),
            Some(&json!({"postal_address": "東京都千代田区1-2-3", "complaint_contact": "support@shop.example.jp",
                         "optout_contact": "https://shop.example.jp/unsubscribe"})),
            &[],
        )
        .await;
    assert_eq!(patch.status, 200, "{}", patch.text());
    assert_eq!(patch.json()["postal_address"], "東京都千代田区1-2-3");
    let bad = app
        .call(
            "PATCH",
            &format!("/v1/tenants/{}", shop.tenant),
            Some(&shop.sender),
            Some(&json!({"default_language": "fr"})),
            &[],
        )
        .await;
    assert_eq!(bad.status, 422);

    let ja = app
        .call(
            "GET",
            "/v1/display-notice?lang=ja",
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(ja.status, 200, "{}", ja.text());
    let ja = ja.json();
    let text = ja["text"].as_str().unwrap();
    for part in [
        "送信者: Sakura Shop K.K.",
        "受信を拒否することができます",
        "https://shop.example.jp/unsubscribe",
        "住所: 東京都千代田区1-2-3",
        "苦情・お問い合わせ: support@shop.example.jp",
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }
    let html = ja["html"].as_str().unwrap();
    assert!(
        html.contains(r#"<a href="mailto:support@shop.example.jp">"#),
        "{html}"
    );
    let en = app
        .call(
            "GET",
            "/v1/display-notice?lang=en&email=hanako@example.jp&purpose=newsletter",
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(en.status, 200, "{}", en.text());
    let en = en.json();
    let text = en["text"].as_str().unwrap();
    assert!(
        text.contains("Sender: Sakura Shop K.K.") && text.contains("You may refuse"),
        "{text}"
    );
    assert!(text.contains("/u/"), "the recipient's own link: {text}");
    // A value with markup is escaped in the HTML.
    app.call(
        "PATCH",
        &format!("/v1/tenants/{}", shop.tenant),
        Some(&shop.sender),
        Some(&json!({"legal_name": "<b>Shop</b>"})),
        &[],
    )
    .await;
    let html = app
        .call(
            "GET",
            "/v1/display-notice?lang=en",
            Some(&shop.sender),
            None,
            &[],
        )
        .await
        .json()["html"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        html.contains("&lt;b&gt;Shop&lt;/b&gt;") && !html.contains("<b>Shop"),
        "{html}"
    );
    let res = app
        .call(
            "GET",
            "/v1/display-notice?lang=fr",
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status, 422);
    app.stop().await;
}

/// What the test receiver got: body and signature header.
type Received = Arc<Mutex<Vec<(String, String)>>>;

async fn opt_outs_reach_the_webhook_signed(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    let received: Received = Default::default();
    let sink = received.clone();
    let server = HttpServer::new(move || {
        let sink = sink.clone();
        App::new()
            .route(
                "/hook",
                web::post().to(move |req: HttpRequest, body: web::Bytes| {
                    let sink = sink.clone();
                    async move {
                        let signature = req
                            .headers()
                            .get("consent-ledger-signature")
                            .map(|v| v.to_str().unwrap().to_string())
                            .unwrap_or_default();
                        sink.lock()
                            .unwrap()
                            .push((String::from_utf8(body.to_vec()).unwrap(), signature));
                        HttpResponse::NoContent().finish()
                    }
                }),
            )
            // An endpoint that is down: its deliveries wait for their back-off.
            .route(
                "/down",
                web::post().to(|| async { HttpResponse::ServiceUnavailable().finish() }),
            )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    let receiver = server.run();
    let receiver_handle = receiver.handle();
    actix_web::rt::spawn(receiver);

    let res = app
        .call(
            "POST",
            "/v1/webhooks",
            Some(&shop.sender),
            Some(&json!({"url": format!("http://127.0.0.1:{port}/hook")})),
            &[],
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let hook = res.json();
    let secret = base64_decode(hook["secret"].as_str().unwrap());
    let id = hook["id"].as_str().unwrap().to_string();
    let listed = app
        .call("GET", "/v1/webhooks", Some(&shop.sender), None, &[])
        .await
        .json();
    assert_eq!(listed["webhooks"][0]["id"], id.as_str());
    assert!(
        listed["webhooks"][0].get("secret").is_none(),
        "secrets are shown once"
    );
    for bad in ["http://hooks.example.jp/x", "ftp://x", "nonsense"] {
        let res = app
            .call(
                "POST",
                "/v1/webhooks",
                Some(&shop.sender),
                Some(&json!({"url": bad})),
                &[],
            )
            .await;
        assert_eq!(res.status, 422, "{bad}");
    }

    let down = app
        .call(
            "POST",
            "/v1/webhooks",
            Some(&shop.sender),
            Some(&json!({"url": format!("http://127.0.0.1:{port}/down")})),
            &[],
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();

    opt_in(&app, &shop, "hook@example.jp").await;
    let url = links(&app, &shop, &["hook@example.jp"], Some("offers")).await[0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let done = one_click(&app, &path_of(&url)).await.json();

    let deadline = Instant::now() + Duration::from_secs(15);
    while received.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the webhook was not called");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let (body, signature) = received.lock().unwrap()[0].clone();
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sent["type"], "opt_out");
    assert_eq!(sent["email"], "hook@example.jp");
    assert_eq!(sent["purposes"], json!(["offers"]));
    assert_eq!(sent["event_id"], done["event_id"]);
    assert_eq!(sent["method"], "one_click");
    // Verify as a receiver would: HMAC-SHA256(secret, "<t>.<body>").
    let (t, v1) = signature
        .strip_prefix("t=")
        .and_then(|s| s.split_once(",v1="))
        .expect("t=…,v1=…");
    let expected =
        consent_ledger::log::hash::hmac_sha256(&secret, format!("{t}.{body}").as_bytes());
    let hex: String = expected.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v1, hex);
    assert!((t.parse::<i64>().unwrap() - consent_ledger::now_millis() / 1000).abs() < 60);

    // The delivery log.
    let first = first_delivery_once(&app, &shop.sender, &id, |d| d["status"] == "delivered").await;
    assert_eq!(first["last_status"], 204);
    assert_eq!(first["attempts"], 1);
    // The endpoint that is down: the attempt is logged, the delivery waits to be retried.
    let first = first_delivery_once(&app, &shop.sender, &down, |d| d["attempts"] == 1).await;
    assert_eq!(first["status"], "pending", "{first}");
    assert_eq!(first["last_status"], 503);
    assert!(first["next_attempt_at"].is_string());
    // Removed: 204, then 404; another tenant's sender cannot see the log.
    let res = app
        .call(
            "DELETE",
            &format!("/v1/webhooks/{id}"),
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status, 204);
    let res = app
        .call(
            "DELETE",
            &format!("/v1/webhooks/{id}"),
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status, 404);
    let other = self::shop(&db, true);
    let res = app
        .call(
            "GET",
            &format!("/v1/webhooks/{id}/deliveries"),
            Some(&other.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status, 404);
    receiver_handle.stop(true).await;
    app.stop().await;
}

/// A webhook's first delivery, once `ready` holds for it (waits up to 5 s).
async fn first_delivery_once(
    app: &TestApp,
    token: &str,
    webhook: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = app
            .call(
                "GET",
                &format!("/v1/webhooks/{webhook}/deliveries"),
                Some(token),
                None,
                &[],
            )
            .await;
        assert_eq!(log.status, 200, "{}", log.text());
        let first = log.json()["deliveries"][0].clone();
        if ready(&first) {
            return first;
        }
        assert!(Instant::now() < deadline, "not there yet: {first}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}
