//! Webhooks for every consent event: each webhook gets the event types it subscribed to, each
//! delivery signed; a pending opt-in carries the confirmation link the sender mails; a rotated
//! secret signs beside the new one for the overlap; a test delivery answers its outcome.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

use crate::common::{TestApp, TestDb};
use crate::on_both_backends;
use crate::unsubscribe::{shop, Shop};

on_both_backends!(
    each_event_type_reaches_the_webhooks_subscribed_to_it,
    a_rotated_secret_signs_beside_the_new_one_for_the_overlap,
    a_test_delivery_answers_its_outcome_and_is_not_retried,
    one_batch_naming_an_address_again_writes_what_each_event_changed
);

/// What a receiver got on each path: body and signature header.
type Received = Arc<Mutex<Vec<(String, String, String)>>>;

/// A receiver on a free port: `/ok/*` answers 204 and keeps what it got, `/down` 503.
async fn receiver() -> (u16, Received, actix_web::dev::ServerHandle) {
    let received: Received = Default::default();
    let sink = received.clone();
    let server = HttpServer::new(move || {
        let sink = sink.clone();
        App::new()
            .route(
                "/ok/{name}",
                web::post().to(move |req: HttpRequest, body: web::Bytes| {
                    let sink = sink.clone();
                    async move {
                        let signature = req
                            .headers()
                            .get("consent-ledger-signature")
                            .map(|v| v.to_str().unwrap().to_string())
                            .unwrap_or_default();
                        sink.lock().unwrap().push((
                            req.path().to_string(),
                            String::from_utf8(body.to_vec()).unwrap(),
                            signature,
                        ));
                        HttpResponse::NoContent().finish()
                    }
                }),
            )
            .route(
                "/down",
                web::post().to(|| async { HttpResponse::ServiceUnavailable().finish() }),
            )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    let running = server.run();
    let handle = running.handle();
    actix_web::rt::spawn(running);
    (port, received, handle)
}

/// Registers a webhook for `events` at `path`; its id and secret (the HMAC key's bytes).
async fn register(app: &TestApp, shop: &Shop, url: String, events: Value) -> (String, Vec<u8>) {
    let res = app
        .call(
            "POST",
            "/v1/webhooks",
            Some(&shop.sender),
            Some(&json!({"url": url, "events": events})),
            &[],
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let hook = res.json();
    (
        hook["id"].as_str().unwrap().to_string(),
        decode(hook["secret"].as_str().unwrap()),
    )
}

fn decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// The `v1` signatures of a header that `key` made, over `"<t>.<body>"`: verified as a receiver
/// does.
fn signed_by(key: &[u8], header: &str, body: &str) -> bool {
    let mut parts = header.split(',');
    let t = parts.next().and_then(|p| p.strip_prefix("t=")).unwrap();
    let tag = consent_ledger::log::hash::hmac_sha256(key, format!("{t}.{body}").as_bytes());
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    parts.any(|p| p.strip_prefix("v1=") == Some(hex.as_str()))
}

/// Waits until the receiver has `n` deliveries.
async fn wait_for(received: &Received, n: usize) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = received.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} deliveries: {got:?}",
            got.len()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn event(app: &TestApp, shop: &Shop, body: Value) -> Value {
    let res = app
        .call("POST", "/v1/events", Some(&shop.sender), Some(&body), &[])
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()
}

async fn each_event_type_reaches_the_webhooks_subscribed_to_it(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    let (port, received, handle) = receiver().await;
    let (_, signups) = register(
        &app,
        &shop,
        format!("http://127.0.0.1:{port}/ok/signups"),
        json!(["pending_opt_in", "confirmation", "opt_in"]),
    )
    .await;
    let (_, opt_outs) = register(
        &app,
        &shop,
        format!("http://127.0.0.1:{port}/ok/opt-outs"),
        json!(["opt_out"]),
    )
    .await;
    let by = json!({"role": "sender", "name": "Sakura Shop"});
    let pending = event(&app, &shop, json!({"event": "opt_in", "email": "p@example.jp",
        "purposes": ["newsletter"], "method": "web_form", "confirmation_required": true, "received_by": by}))
    .await;
    let got = wait_for(&received, 1).await;
    let body: Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(got[0].0, "/ok/signups");
    assert_eq!(body["type"], "pending_opt_in");
    assert_eq!(body["email"], "p@example.jp");
    assert_eq!(
        body["confirmation_url"], pending["confirmation_url"],
        "the link to mail"
    );
    assert_eq!(
        body["leaf_hash"], pending["leaf_hash"],
        "the leaf to check it by"
    );
    assert!(signed_by(&signups, &got[0].2, &got[0].1));
    // The person confirms by that link.
    let link = body["confirmation_url"].as_str().unwrap();
    let done = app
        .call(
            "POST",
            &link[link.find("/confirm/").unwrap()..],
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text());
    let got = wait_for(&received, 2).await;
    let body: Value = serde_json::from_str(&got[1].1).unwrap();
    assert_eq!(body["type"], "confirmation");
    assert_eq!(body["confirms"], pending["event_id"]);
    event(
        &app,
        &shop,
        json!({"event": "opt_in", "email": "q@example.jp",
        "purposes": ["offers"], "method": "web_form", "received_by": by}),
    )
    .await;
    let got = wait_for(&received, 3).await;
    let body: Value = serde_json::from_str(&got[2].1).unwrap();
    assert_eq!(body["type"], "opt_in");
    assert_eq!(body["basis"], "consent");
    let opted_out = event(
        &app,
        &shop,
        json!({"event": "opt_out", "email": "q@example.jp",
        "purposes": ["offers"], "method": "web_form", "received_by": by}),
    )
    .await;
    let got = wait_for(&received, 4).await;
    let body: Value = serde_json::from_str(&got[3].1).unwrap();
    assert_eq!(got[3].0, "/ok/opt-outs");
    assert_eq!(body["type"], "opt_out");
    assert_eq!(body["event_id"], opted_out["event_id"]);
    assert!(signed_by(&opt_outs, &got[3].2, &got[3].1));
    assert!(
        !signed_by(&signups, &got[3].2, &got[3].1),
        "each its own key"
    );
    // Each webhook got its own types only.
    let paths: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(
        paths,
        ["/ok/signups", "/ok/signups", "/ok/signups", "/ok/opt-outs"]
    );
    // An unknown type is refused.
    let res = app
        .call(
            "POST",
            "/v1/webhooks",
            Some(&shop.sender),
            Some(&json!({"url": format!("http://127.0.0.1:{port}/ok/x"), "events": ["bounce"]})),
            &[],
        )
        .await;
    assert!(res.status == 400 || res.status == 422, "{}", res.text());
    handle.stop(true).await;
    app.stop().await;
}

async fn a_rotated_secret_signs_beside_the_new_one_for_the_overlap(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    let (port, received, handle) = receiver().await;
    let (id, old) = register(
        &app,
        &shop,
        format!("http://127.0.0.1:{port}/ok/hook"),
        json!(["opt_out"]),
    )
    .await;
    let rotate = |hours: u32| {
        let (app, shop, id) = (&app, &shop, &id);
        async move {
            let res = app
                .call(
                    "POST",
                    &format!("/v1/webhooks/{id}/rotate-secret"),
                    Some(&shop.sender),
                    Some(&json!({"overlap_hours": hours})),
                    &[],
                )
                .await;
            assert_eq!(res.status, 200, "{}", res.text());
            res.json()
        }
    };
    let test = |n: usize| {
        let (app, shop, id, received) = (&app, &shop, &id, &received);
        async move {
            let res = app
                .call(
                    "POST",
                    &format!("/v1/webhooks/{id}/test"),
                    Some(&shop.sender),
                    None,
                    &[],
                )
                .await;
            assert_eq!(res.status, 200, "{}", res.text());
            assert_eq!(res.json()["status"], "delivered", "{}", res.text());
            wait_for(received, n).await[n - 1].clone()
        }
    };
    // No overlap: the new key alone signs.
    let first = decode(rotate(0).await["secret"].as_str().unwrap());
    assert_ne!(first, old);
    let (_, body, signature) = test(1).await;
    assert!(signed_by(&first, &signature, &body));
    assert!(!signed_by(&old, &signature, &body), "{signature}");
    assert_eq!(signature.matches("v1=").count(), 1);
    // With an overlap: the old key signs beside the new one.
    let rotated = rotate(24).await;
    let new = decode(rotated["secret"].as_str().unwrap());
    assert!(rotated["previous_secret_until"].is_string(), "{rotated}");
    let (_, body, signature) = test(2).await;
    assert!(signed_by(&new, &signature, &body), "{signature}");
    assert!(
        signed_by(&first, &signature, &body),
        "the old key still signs: {signature}"
    );
    // Not again while it runs (the old key would stop at once); not beyond the retry window.
    for (hours, status) in [(1, 409), (73, 422)] {
        let res = app
            .call(
                "POST",
                &format!("/v1/webhooks/{id}/rotate-secret"),
                Some(&shop.sender),
                Some(&json!({"overlap_hours": hours})),
                &[],
            )
            .await;
        assert_eq!(res.status, status, "{}", res.text());
    }
    handle.stop(true).await;
    app.stop().await;
}

async fn a_test_delivery_answers_its_outcome_and_is_not_retried(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    let (port, received, handle) = receiver().await;
    let (ok, key) = register(
        &app,
        &shop,
        format!("http://127.0.0.1:{port}/ok/hook"),
        json!(["opt_out"]),
    )
    .await;
    let (down, _) = register(
        &app,
        &shop,
        format!("http://127.0.0.1:{port}/down"),
        json!(["opt_out"]),
    )
    .await;
    let test = |id: String| {
        let (app, shop) = (&app, &shop);
        async move {
            let res = app
                .call(
                    "POST",
                    &format!("/v1/webhooks/{id}/test"),
                    Some(&shop.sender),
                    None,
                    &[],
                )
                .await;
            assert_eq!(res.status, 200, "{}", res.text());
            res.json()
        }
    };
    let delivered = test(ok.clone()).await;
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    assert_eq!(delivered["last_status"], 204);
    let (_, body, signature) = wait_for(&received, 1).await[0].clone();
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["type"],
        "test"
    );
    assert!(signed_by(&key, &signature, &body));
    let failed = test(down.clone()).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["last_status"], 503);
    assert!(
        failed.get("next_attempt_at").is_none_or(Value::is_null),
        "{failed}"
    );
    // Both are in the delivery logs.
    let log = app
        .call(
            "GET",
            &format!("/v1/webhooks/{down}/deliveries"),
            Some(&shop.sender),
            None,
            &[],
        )
        .await
        .json();
    assert_eq!(log["deliveries"][0]["id"], failed["id"]);
    let res = app
        .call(
            "POST",
            "/v1/webhooks/nope/test",
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status, 404, "{}", res.text());
    handle.stop(true).await;
    app.stop().await;
}

/// The sequencer writes a batch's consent rows together, after building all its leaves: an
/// event later in the batch must still see what the earlier ones changed (a subject made, a
/// refusal recorded), and every event gets its own delivery.
async fn one_batch_naming_an_address_again_writes_what_each_event_changed(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    let (port, received, handle) = receiver().await;
    register(
        &app,
        &shop,
        format!("http://127.0.0.1:{port}/ok/all"),
        json!(["opt_in", "opt_out"]),
    )
    .await;
    let by = json!({"role": "sender", "name": "Sakura Shop"});
    let e = |kind: &str, email: &str, purposes: Value| {
        json!({"event": kind, "email": email, "purposes": purposes, "method": "web_form",
               "received_by": by})
    };
    // Given minutes ago: the refusal before the fresh consent.
    let at = |mut event: Value, minutes: i64| {
        let when = consent_ledger::now_millis() - minutes * 60_000;
        event["occurred_at"] = json!(consent_ledger::rfc3339(when));
        event
    };
    let batch = json!({"events": [
        e("opt_in", "a@example.jp", json!(["newsletter"])),
        e("opt_in", "b@example.jp", json!(["newsletter", "offers"])),
        at(e("opt_out", "a@example.jp", json!("all")), 2),
        at(e("opt_in", "a@example.jp", json!(["offers"])), 1),
        e("opt_out", "b@example.jp", json!(["offers"])),
    ]});
    let res = app
        .call(
            "POST",
            "/v1/events:batch",
            Some(&shop.sender),
            Some(&batch),
            &[],
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let recorded = res.json()["events"].as_array().unwrap().clone();
    let index = |i: usize| recorded[i]["leaf_index"].as_u64().unwrap();
    assert_eq!(recorded[2]["prev_leaf_index"].as_u64(), Some(index(0)));
    assert_eq!(recorded[3]["prev_leaf_index"].as_u64(), Some(index(2)));
    assert_eq!(recorded[4]["prev_leaf_index"].as_u64(), Some(index(1)));
    let status = |email: &str, purpose: &str| {
        let path = format!("/v1/consent?email={email}&purpose={purpose}");
        let (app, sender) = (&app, &shop.sender);
        async move {
            let res = app.call("GET", &path, Some(sender), None, &[]).await;
            assert_eq!(res.status, 200, "{}", res.text());
            res.json()["status"].as_str().unwrap().to_string()
        }
    };
    assert_eq!(status("a@example.jp", "newsletter").await, "withdrawn");
    assert_eq!(
        status("a@example.jp", "offers").await,
        "granted",
        "fresh consent after"
    );
    assert_eq!(status("b@example.jp", "newsletter").await, "granted");
    assert_eq!(status("b@example.jp", "offers").await, "withdrawn");
    let got = wait_for(&received, 5).await;
    let mut delivered: Vec<String> = got
        .iter()
        .map(|(_, body, _)| serde_json::from_str::<Value>(body).unwrap()["event_id"].to_string())
        .collect();
    let mut events: Vec<String> = recorded.iter().map(|e| e["event_id"].to_string()).collect();
    delivered.sort();
    events.sort();
    assert_eq!(delivered, events, "one delivery per event");
    // The rows' copy of each chain's head is the last event's.
    let store = consent_ledger::store::Store::connect(&db.url, 1).unwrap();
    for (email, last) in [("a@example.jp", index(3)), ("b@example.jp", index(4))] {
        let row = store
            .read(|r| {
                Ok::<_, consent_ledger::store::StoreError>(
                    r.subject_by_address(&shop.tenant, email)?,
                )
            })
            .unwrap()
            .unwrap();
        assert_eq!(row.last_leaf_index.map(|i| i.get()), Some(last), "{email}");
    }
    handle.stop(true).await;
    app.stop().await;
}
