//! Faults: a process that dies with requests in flight leaves its `Idempotency-Key`s to be taken
//! over at once by a live process (its owner lock is gone), while a live process's in-flight keys
//! stay its own.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use consent_ledger::api::AppState;
use consent_ledger::auth::Role;
use serde_json::json;

use crate::common::{bin, tamper, TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(an_in_flight_key_of_a_killed_process_is_taken_over_at_once);

/// Tokens for an admin and for a sender of a new tenant created through `base`.
async fn tenant_and_sender(db: &TestDb, app: &TestApp) -> String {
    let state = AppState::open(&db.config()).unwrap();
    let admin = state
        .authority
        .issue(Role::Admin, None, "ops", Duration::from_secs(600))
        .unwrap();
    let created = app
        .call("POST", "/v1/tenants", Some(&admin), Some(&json!({
            "name": "Example", "legal_name": "Example K.K.", "postal_address": "1-1 Chiyoda, Tokyo",
            "purposes": [{"purpose": "newsletter"}]
        })), &[])
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let tenant = created.json()["id"].as_str().unwrap().to_string();
    let sender = state
        .authority
        .issue(
            Role::Sender,
            Some(&tenant),
            "acme",
            Duration::from_secs(600),
        )
        .unwrap();
    state.log.shutdown();
    sender
}

fn opt_in(email: &str) -> serde_json::Value {
    json!({"event": "opt_in", "email": email, "purposes": ["newsletter"], "method": "web_form",
           "received_by": {"role": "sender", "name": "Example K.K."}})
}

async fn an_in_flight_key_of_a_killed_process_is_taken_over_at_once(db: TestDb) {
    let app = TestApp::start(&db).await;
    let sender = tenant_and_sender(&db, &app).await;

    // Another server process on the same database records one keyed request, and is killed.
    let mut child = bin()
        .args(["--database-url", &db.url, "--bind", "127.0.0.1:0"])
        .args(["--origin", "test.example/log", "serve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kept open: the server would fail writing to a closed stdout.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    let res = awc::Client::default()
        .post(format!("http://{base}/v1/events"))
        .insert_header(("Authorization", format!("Bearer {sender}")))
        .insert_header(("Idempotency-Key", "done-by-the-child"))
        .send_json(&opt_in("child@example.jp"))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // As if it had died mid-request: a reservation it held, without an answer yet.
    let reserve = |key: &str, owner: &str| {
        format!(
            "INSERT INTO idempotency_keys (tenant_id, key, request_sha256, status, body, created_at, owner) \
             SELECT tenant_id, 'api:{key}', request_sha256, 0, NULL, {now}, {owner} \
             FROM idempotency_keys WHERE key = 'api:done-by-the-child'",
            now = consent_ledger::now_millis(),
        )
    };
    tamper(&db, &reserve("in-flight", "owner"));
    // And one held by this process, which lives.
    let this_process = consent_ledger::store::Store::connect(&db.url, 2)
        .unwrap()
        .owner()
        .expect("this process holds an owner lock");
    tamper(&db, &reserve("held-here", &format!("'{this_process}'")));

    let post = |key: &'static str| {
        let (app, sender) = (&app, &sender);
        async move {
            app.call(
                "POST",
                "/v1/events",
                Some(sender),
                Some(&opt_in("child@example.jp")),
                &[("Idempotency-Key", key)],
            )
            .await
        }
    };
    // The request body differs from the stored fingerprint's only if the digest differs: the
    // rows copied the child's, made for this very body.
    let taken = post("in-flight").await;
    assert_eq!(
        taken.status,
        201,
        "the killed process's key was not taken over: {}",
        taken.text()
    );
    let held = post("held-here").await;
    assert_eq!(
        held.status,
        409,
        "a live process's in-flight key was taken: {}",
        held.text()
    );
    app.stop().await;
}
