//! Browser signup forms with a publishable key: CORS per key, pending opt-ins only, the link goes
//! to the sender (not the page), rate limits, and nothing a publishable key may not do.

use std::time::Duration;

use consent_ledger::api::AppState;
use consent_ledger::auth::Role;
use consent_ledger::consent::{self, model::*};
use serde_json::json;

use crate::common::{TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(
    a_signup_form_records_a_pending_opt_in_from_its_origin_only,
    behind_a_trusted_proxy_the_forwarded_client_address_is_the_evidence
);

const SHOP: &str = "https://shop.example.jp";

async fn a_signup_form_records_a_pending_opt_in_from_its_origin_only(db: TestDb) {
    let app = TestApp::start(&db).await;
    let state = AppState::open(&db.config()).unwrap();
    let tenant = consent::create_tenant(
        &state.store,
        NewTenant {
            name: "Shop".into(),
            legal_name: Some("Shop K.K.".into()),
            purposes: vec![PurposeDefinition {
                purpose: "newsletter".into(),
                description: "News".into(),
                ..Default::default()
            }],
            ..Default::default()
        },
    )
    .unwrap();
    let sender = state
        .authority
        .issue(
            Role::Sender,
            Some(&tenant.id),
            "shop",
            Duration::from_secs(600),
        )
        .unwrap();
    state.log.shutdown();
    let created = app
        .call(
            "POST",
            "/v1/publishable-keys",
            Some(&sender),
            Some(&json!({"origins": [SHOP]})),
            &[],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let key = created.json()["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("pk_"));
    let bad_origin = app
        .call(
            "POST",
            "/v1/publishable-keys",
            Some(&sender),
            Some(&json!({"origins": ["http://evil.example/path"]})),
            &[],
        )
        .await;
    assert_eq!(bad_origin.status, 422);

    let path = format!("/v1/signups/{key}");
    // Preflight: allowed origin only.
    let ok = app
        .call(
            "OPTIONS",
            &path,
            None,
            None,
            &[("Origin", SHOP), ("Access-Control-Request-Method", "POST")],
        )
        .await;
    assert_eq!(ok.status, 204);
    assert_eq!(ok.header("access-control-allow-origin"), SHOP);
    let evil = app
        .call(
            "OPTIONS",
            &path,
            None,
            None,
            &[("Origin", "https://evil.example")],
        )
        .await;
    assert_eq!(evil.status, 403);
    assert_eq!(evil.header("access-control-allow-origin"), "");

    let signup = json!({"email": "Visitor@Example.jp", "purposes": ["newsletter"],
        "consent_text": "□ Shop K.K. からニュースレターを受け取る", "prechecked": false, "language": "ja"});
    let a = app
        .call(
            "POST",
            &path,
            None,
            Some(&signup),
            &[("Origin", SHOP), ("Idempotency-Key", "form-1")],
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(a.header("access-control-allow-origin"), SHOP);
    let body = a.json();
    assert_eq!(body["status"], "pending");
    assert!(
        body.get("confirmation_url").is_none(),
        "the page never sees the confirmation link"
    );
    let again = app
        .call(
            "POST",
            &path,
            None,
            Some(&signup),
            &[("Origin", SHOP), ("Idempotency-Key", "form-1")],
        )
        .await;
    assert_eq!(
        (again.status, again.json()),
        (201, body.clone()),
        "a retry replays, still without the link"
    );

    // The sender sees a pending opt-in with the form as its collection point, and the link to mail.
    let decision = app
        .call(
            "GET",
            "/v1/consent?email=visitor@example.jp&purpose=newsletter",
            Some(&sender),
            None,
            &[],
        )
        .await
        .json();
    assert_eq!(
        (decision["may_send"].clone(), decision["status"].clone()),
        (json!(false), json!("pending"))
    );
    let history = app
        .call(
            "GET",
            "/v1/subjects/events?email=visitor@example.jp",
            Some(&sender),
            None,
            &[],
        )
        .await
        .json();
    let events = history["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0]["collection_point"].as_str().unwrap().len() == 64);
    let link = events[0]["confirmation_url"]
        .as_str()
        .expect("the sender gets the link to mail")
        .to_string();
    let done = app
        .call(
            "POST",
            &link[link.find("/confirm/").unwrap()..],
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(done.status, 200);
    let decision = app
        .call(
            "GET",
            "/v1/consent?email=visitor@example.jp&purpose=newsletter",
            Some(&sender),
            None,
            &[],
        )
        .await
        .json();
    assert_eq!(decision["may_send"], true);

    // A link confirms its own sign-up only: after an opt-out and a new sign-up, the old link does nothing.
    let opt_out = json!({"event": "opt_out", "email": "visitor@example.jp", "purposes": "all", "method": "email",
                         "received_by": {"role": "sender", "name": "Shop K.K."}});
    // The public form's Idempotency-Key cannot block the sender's call with the same key.
    assert_eq!(
        app.call(
            "POST",
            "/v1/events",
            Some(&sender),
            Some(&opt_out),
            &[("Idempotency-Key", "form-1")]
        )
        .await
        .status,
        201
    );
    let mut second = signup.clone();
    second["consent_text"] = json!("other text");
    assert_eq!(
        app.call("POST", &path, None, Some(&second), &[("Origin", SHOP)])
            .await
            .status,
        201
    );
    let stale = app
        .call(
            "POST",
            &link[link.find("/confirm/").unwrap()..],
            None,
            None,
            &[("Accept-Language", "en")],
        )
        .await;
    assert!(
        stale.text().contains("Nothing to confirm"),
        "{}",
        stale.text()
    );
    let decision = app
        .call(
            "GET",
            "/v1/consent?email=visitor@example.jp&purpose=newsletter",
            Some(&sender),
            None,
            &[],
        )
        .await
        .json();
    assert_eq!(
        decision["status"], "pending",
        "the stale link did not confirm the new sign-up"
    );
    // Only the tenant's senders see confirmation links.
    let state = AppState::open(&db.config()).unwrap();
    let admin = state
        .authority
        .issue(Role::Admin, None, "ops", Duration::from_secs(600))
        .unwrap();
    state.log.shutdown();
    let export = app
        .call(
            "GET",
            &format!("/v1/events/export?tenant={}", tenant.id),
            Some(&admin),
            None,
            &[],
        )
        .await
        .json();
    assert!(export["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e.get("confirmation_url").is_none()));
    // Senders cannot register forms in the signup name space; the page cannot choose names.
    let form = json!({"name": format!("signup:{key}"), "channel": "web_form", "content_type": "text/plain",
                      "content": "x", "sender_name_shown": "x", "prechecked": false, "language": "ja"});
    assert_eq!(
        app.call(
            "POST",
            "/v1/collection-points",
            Some(&sender),
            Some(&form),
            &[]
        )
        .await
        .status,
        422
    );
    let mut named = signup.clone();
    named["sender_name_shown"] = json!("Evil name in the log");
    assert_eq!(
        app.call("POST", &path, None, Some(&named), &[("Origin", SHOP)])
            .await
            .status,
        400
    );

    // What a publishable key may not do.
    assert_eq!(
        app.call("POST", &path, None, Some(&signup), &[])
            .await
            .status,
        403,
        "no Origin"
    );
    assert_eq!(
        app.call(
            "POST",
            &path,
            None,
            Some(&signup),
            &[("Origin", "https://evil.example")]
        )
        .await
        .status,
        403
    );
    assert_eq!(
        app.call(
            "POST",
            "/v1/signups/pk_unknown",
            None,
            Some(&signup),
            &[("Origin", SHOP)]
        )
        .await
        .status,
        404
    );
    let opt_out = json!({"event": "opt_out", "email": "someone@example.jp", "purposes": "all"});
    assert_eq!(
        app.call("POST", &path, None, Some(&opt_out), &[("Origin", SHOP)])
            .await
            .status,
        400,
        "no opt-outs"
    );
    assert_eq!(
        app.call(
            "GET",
            "/v1/consent?email=visitor@example.jp&purpose=newsletter",
            Some(&key),
            None,
            &[]
        )
        .await
        .status,
        401,
        "no reads"
    );
    assert_eq!(
        app.call("POST", "/v1/events", Some(&key), Some(&opt_out), &[])
            .await
            .status,
        401
    );

    // A revoked key stops at once; another tenant's sender cannot revoke it.
    let other = consent::create_tenant(
        &AppState::open(&db.config()).unwrap().store,
        NewTenant {
            name: "Other".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let state = AppState::open(&db.config()).unwrap();
    let stranger = state
        .authority
        .issue(
            Role::Sender,
            Some(&other.id),
            "other",
            Duration::from_secs(600),
        )
        .unwrap();
    state.log.shutdown();
    assert_eq!(
        app.call(
            "DELETE",
            &format!("/v1/publishable-keys/{key}"),
            Some(&stranger),
            None,
            &[]
        )
        .await
        .status,
        404
    );
    let spare = app
        .call(
            "POST",
            "/v1/publishable-keys",
            Some(&sender),
            Some(&json!({"origins": [SHOP]})),
            &[],
        )
        .await
        .json();
    let spare = spare["key"].as_str().unwrap().to_string();
    assert_eq!(
        app.call(
            "DELETE",
            &format!("/v1/publishable-keys/{spare}"),
            Some(&sender),
            None,
            &[]
        )
        .await
        .status,
        204
    );
    assert_eq!(
        app.call(
            "POST",
            &format!("/v1/signups/{spare}"),
            None,
            Some(&signup),
            &[("Origin", SHOP)]
        )
        .await
        .status,
        404
    );

    // A flood from one client is cut off with 429 and Retry-After.
    let mut statuses = Vec::new();
    for i in 0..30 {
        let mut s = signup.clone();
        s["email"] = json!(format!("flood{i}@example.jp"));
        let a = app
            .call("POST", &path, None, Some(&s), &[("Origin", SHOP)])
            .await;
        if a.status == 429 {
            assert!(!a.header("retry-after").is_empty());
        }
        statuses.push(a.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 429),
        "{statuses:?}"
    );
    app.stop().await;
}

/// The address kept as evidence is the socket's peer; `X-Forwarded-For` counts only when the peer
/// is a configured trusted proxy, and then only its last untrusted hop.
async fn behind_a_trusted_proxy_the_forwarded_client_address_is_the_evidence(db: TestDb) {
    let shop = crate::unsubscribe::shop(&db, false);
    let sender = shop.sender;
    let store = consent_ledger::store::Store::connect(&db.url, 2).unwrap();
    let mut signup = json!({"email": "a@example.jp", "purposes": ["newsletter"],
        "consent_text": "Send me news", "prechecked": false, "language": "en"});
    let forged = [
        ("Origin", SHOP),
        ("X-Forwarded-For", "6.6.6.6, 203.0.113.9"),
    ];
    let mut seen = Vec::new();
    for proxies in [vec![], vec!["127.0.0.1".to_string()]] {
        let mut config = db.config();
        config.trusted_proxies = proxies.iter().map(|p| p.parse().unwrap()).collect();
        let app = TestApp::start_with(config).await;
        let key = app
            .call(
                "POST",
                "/v1/publishable-keys",
                Some(&sender),
                Some(&json!({"origins": [SHOP]})),
                &[],
            )
            .await
            .json()["key"]
            .as_str()
            .unwrap()
            .to_string();
        let res = app
            .call(
                "POST",
                &format!("/v1/signups/{key}"),
                None,
                Some(&signup),
                &forged,
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
        let id = res.json()["event_id"].as_str().unwrap().to_string();
        let row = store
            .read(|r| Ok::<_, consent_ledger::store::StoreError>(r.event(&id)?))
            .unwrap()
            .unwrap();
        let evidence: serde_json::Value =
            serde_json::from_str(row.evidence.as_deref().unwrap()).unwrap();
        seen.push(evidence["ip"].as_str().unwrap().to_string());
        signup["email"] = json!("b@example.jp");
        app.stop().await;
    }
    assert_eq!(seen, ["127.0.0.1", "203.0.113.9"]);
}

/// The ledger serves the browser SDK as one ES module, to any origin: the README's snippet
/// imports `bindSignupForm` from it.
#[actix_web::test]
async fn the_browser_sdk_is_served_as_one_module_to_any_origin() {
    let db = TestDb::sqlite();
    let app = TestApp::start(&db).await;
    let sdk = app.get("/sdk.js").await;
    assert_eq!(sdk.status, 200);
    assert_eq!(sdk.header("content-type"), "text/javascript; charset=utf-8");
    assert_eq!(sdk.header("access-control-allow-origin"), "*");
    let text = sdk.text();
    assert!(text.contains(" as bindSignupForm"), "{text}");
    assert!(
        !text.contains("import "),
        "one module, nothing else to load"
    );
    app.stop().await;
}
