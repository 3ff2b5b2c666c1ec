//! Consent records end to end over HTTP, as a sender and a regulator use them: a tenant, a token,
//! a registered form, opt-in → may_send true, opt-out → false at once, the opt-out a leaf with a
//! valid proof and no plaintext address, double opt-in, idempotency, and every misuse a 4xx that
//! writes nothing.

use std::time::Duration;

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use consent_ledger::auth::Role;
use consent_ledger::consent::{self, model::*};
use serde_json::{json, Value};

use crate::common::reference as r;
use crate::common::{wait_for_checkpoint, TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(
    csv_exports_start_no_spreadsheet_formula,
    an_export_after_a_position_beyond_the_log_is_empty,
    a_sender_records_consent_and_the_decision_follows,
    misuse_is_refused_and_writes_nothing,
    concurrent_opt_in_and_opt_out_end_in_the_last_one,
    batches_are_all_or_nothing_and_checks_answer_per_address,
    a_check_answers_each_address_as_its_single_decision_does,
    erasure_waits_for_the_law_then_leaves_the_log_unlinkable,
    an_opt_out_binds_every_basis_and_beats_stale_opt_ins,
    idempotency_is_exactly_once,
    double_opt_in_by_link_confirms_only_on_the_button,
    imports_are_all_or_nothing_and_exports_round_trip,
);

struct Setup {
    app: TestApp,
    tenant: String,
    sender: String,
    regulator: String,
    admin: String,
}

async fn setup(db: &TestDb) -> Setup {
    let app = TestApp::start(db).await;
    let state = consent_ledger::api::AppState::open(&db.config()).unwrap();
    let admin = state
        .authority
        .issue(Role::Admin, None, "ops", Duration::from_secs(600))
        .unwrap();
    let regulator = state
        .authority
        .issue(Role::Regulator, None, "officer", Duration::from_secs(600))
        .unwrap();
    state.log.shutdown();
    let created = app
        .call("POST", "/v1/tenants", Some(&admin), Some(&json!({
            "name": "Example", "legal_name": "Example K.K.", "postal_address": "1-1 Chiyoda, Tokyo",
            "purposes": [{"purpose": "newsletter", "description": "Weekly news"}, {"purpose": "offers"}]
        })), &[])
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let tenant = created.json()["id"].as_str().unwrap().to_string();
    let state = consent_ledger::api::AppState::open(&db.config()).unwrap();
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
    Setup {
        app,
        tenant,
        sender,
        regulator,
        admin,
    }
}

fn event(kind: &str, email: &str, purposes: Value) -> Value {
    json!({"event": kind, "email": email, "purposes": purposes, "method": "web_form",
           "received_by": {"role": "sender", "name": "Example K.K."}})
}

/// POSTs `body` to `path` as the sender, expecting `status`; the answer.
async fn post_as_sender(s: &Setup, path: &str, body: &Value, status: u16) -> Value {
    let a = s
        .app
        .call("POST", path, Some(&s.sender), Some(body), &[])
        .await;
    assert_eq!(a.status, status, "{}", a.text());
    a.json()
}

/// Records a batch of events as the sender; its 201 body.
async fn record_batch(s: &Setup, batch: &Value) -> Value {
    post_as_sender(s, "/v1/events:batch", batch, 201).await
}

fn with_time(mut event: Value, occurred_at: &str) -> Value {
    event["occurred_at"] = occurred_at.into();
    event
}

async fn decide(s: &Setup, email: &str, purpose: &str) -> Value {
    let a = s
        .app
        .call(
            "GET",
            &format!("/v1/consent?email={email}&purpose={purpose}"),
            Some(&s.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    a.json()
}

/// The first page of the suppression list for `purpose`, as the sender.
async fn suppression(s: &Setup, purpose: &str) -> Value {
    let path = format!("/v1/suppression?purpose={purpose}");
    let a = s.app.call("GET", &path, Some(&s.sender), None, &[]).await;
    assert_eq!(a.status, 200, "{}", a.text());
    a.json()
}

/// A campaign's pre-flight check (`POST /v1/consent:check`), as the sender: the answer.
async fn preflight(s: &Setup, body: &Value) -> Value {
    post_as_sender(s, "/v1/consent:check", body, 200).await
}

/// The first page of the JSON export, as the sender.
async fn export_json(s: &Setup) -> Value {
    s.app
        .call("GET", "/v1/events/export", Some(&s.sender), None, &[])
        .await
        .json()
}

/// A client may name any position as `after`, up to 2^64 − 1: beyond the log (even beyond what a
/// database `BIGINT` holds), the page is empty, not an error.
async fn an_export_after_a_position_beyond_the_log_is_empty(db: TestDb) {
    let s = setup(&db).await;
    for after in [
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551615",
    ] {
        let path = format!("/v1/events/export?after={after}");
        let a = s.app.call("GET", &path, Some(&s.sender), None, &[]).await;
        assert_eq!(a.status, 200, "after={after}: {}", a.text());
        assert_eq!(a.json()["events"], json!([]), "after={after}");
    }
}

async fn post_event(s: &Setup, body: &Value) -> Value {
    let a = s
        .app
        .call("POST", "/v1/events", Some(&s.sender), Some(body), &[])
        .await;
    assert_eq!(a.status, 201, "{}", a.text());
    a.json()
}

async fn a_sender_records_consent_and_the_decision_follows(db: TestDb) {
    let s = setup(&db).await;
    let form = json!({"name": "signup", "channel": "web_form", "content_type": "text/html; charset=utf-8",
                      "content": "<label><input type=checkbox> Send me the Example newsletter</label>",
                      "sender_name_shown": "Example K.K.", "prechecked": false, "language": "ja"});
    let cp = s
        .app
        .call(
            "POST",
            "/v1/collection-points",
            Some(&s.sender),
            Some(&form),
            &[],
        )
        .await;
    assert_eq!(cp.status, 201, "{}", cp.text());
    let cp = cp.json();
    let again = s
        .app
        .call(
            "POST",
            "/v1/collection-points",
            Some(&s.sender),
            Some(&form),
            &[],
        )
        .await;
    assert_eq!(
        (again.status, again.json()["id"].clone()),
        (200, cp["id"].clone()),
        "content-addressed"
    );

    let email = "Taro.Yamada@Example.JP";
    assert_eq!(decide(&s, email, "newsletter").await["may_send"], false);
    let mut opt_in = event("opt_in", email, json!(["newsletter"]));
    opt_in["collection_point"] = cp["id"].clone();
    opt_in["evidence"] = json!({"ip": "203.0.113.7", "user_agent": "Mozilla/5.0"});
    let first = post_event(&s, &opt_in).await;
    let d = decide(&s, "taro.yamada@example.jp", "newsletter").await;
    assert_eq!(
        (d["may_send"].clone(), d["basis"].clone()),
        (json!(true), json!("consent"))
    );
    assert_eq!(decide(&s, email, "offers").await["may_send"], false);

    let second = post_event(&s, &event("opt_out", email, json!(["newsletter"]))).await;
    assert_eq!(
        decide(&s, email, "newsletter").await["may_send"],
        false,
        "an opt-out wins at once"
    );
    assert_eq!(
        second["prev_leaf_index"], first["leaf_index"],
        "the per-address chain"
    );

    // The opt-out is a leaf with a valid proof, and the leaf holds no plaintext personal data.
    let index = second["leaf_index"].as_u64().unwrap();
    let cp_now = wait_for_checkpoint(&s.app.log, index + 1).await;
    let proof = s
        .app
        .get(&format!(
            "/v1/log/proof/inclusion?index={index}&size={}",
            cp_now.size
        ))
        .await
        .json();
    let path: Vec<r::Hash> = proof["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| B64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect();
    let leaf_hash: r::Hash = B64
        .decode(second["leaf_hash"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        r::root_from_inclusion(leaf_hash, index, cp_now.size, &path),
        Some(cp_now.root)
    );
    let tile = s
        .app
        .get(&format!("/tile/entries/000.p/{}", cp_now.size.min(255)))
        .await;
    let leaves = r::entries(&tile.body);
    let leaf = &leaves[index as usize];
    assert_eq!(r::leaf_hash(leaf), leaf_hash);
    let text = String::from_utf8(leaf.clone()).unwrap();
    for secret in ["taro", "yamada", "203.0.113.7", "Mozilla"] {
        assert!(
            !text.to_lowercase().contains(&secret.to_lowercase()),
            "{secret} leaked into a leaf: {text}"
        );
    }
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (
            doc["type"].clone(),
            doc["event"].clone(),
            doc["prev"].clone()
        ),
        (
            json!("consent_event"),
            json!("opt_out"),
            first["leaf_index"].clone()
        )
    );
    assert_eq!(doc["subject"].as_str().unwrap().len(), 64);

    // History and export show both, with leaf indexes.
    let history = s
        .app
        .call(
            "GET",
            &format!("/v1/subjects/events?email={email}"),
            Some(&s.sender),
            None,
            &[],
        )
        .await
        .json();
    let kinds: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["opt_in", "opt_out"]);
    let export = s
        .app
        .call(
            "GET",
            "/v1/events/export?format=jsonl",
            Some(&s.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(export.header("content-type"), "application/x-ndjson");
    let lines: Vec<Value> = export
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["email"], "taro.yamada@example.jp");
    // A regulator reads any tenant, naming it.
    let reg = s
        .app
        .call(
            "GET",
            &format!(
                "/v1/consent?email={email}&purpose=newsletter&tenant={}",
                s.tenant
            ),
            Some(&s.regulator),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (reg.status, reg.json()["may_send"].clone()),
        (200, json!(false))
    );

    // That regulator read is on record, for the sender to see.
    let audit = s
        .app
        .call(
            "GET",
            "/v1/audit/regulator-reads",
            Some(&s.sender),
            None,
            &[],
        )
        .await
        .json();
    let reads = audit["reads"].as_array().unwrap();
    assert_eq!(reads.len(), 1, "{audit}");
    assert_eq!(
        (reads[0]["regulator"].clone(), reads[0]["operation"].clone()),
        (json!("officer"), json!("decision"))
    );

    // Double opt-in: pending until confirmed; confirming twice is a conflict.
    let mut pending = event("opt_in", "hanako@example.jp", json!(["offers"]));
    pending["confirmation_required"] = json!(true);
    post_event(&s, &pending).await;
    assert_eq!(
        decide(&s, "hanako@example.jp", "offers").await["status"],
        "pending"
    );
    post_event(&s, &event("confirm", "hanako@example.jp", json!("all"))).await;
    assert_eq!(
        decide(&s, "hanako@example.jp", "offers").await["may_send"],
        true
    );
    let twice = s
        .app
        .call(
            "POST",
            "/v1/events",
            Some(&s.sender),
            Some(&event("confirm", "hanako@example.jp", json!("all"))),
            &[],
        )
        .await;
    assert_eq!(twice.status, 409);

    // Opt-out of everything, then a new opt-in for one purpose: only that one is back.
    post_event(
        &s,
        &event("opt_in", "jiro@example.jp", json!(["newsletter", "offers"])),
    )
    .await;
    post_event(&s, &event("opt_out", "jiro@example.jp", json!("all"))).await;
    assert_eq!(
        decide(&s, "jiro@example.jp", "offers").await["may_send"],
        false
    );
    post_event(
        &s,
        &event("opt_in", "jiro@example.jp", json!(["newsletter"])),
    )
    .await;
    assert_eq!(
        decide(&s, "jiro@example.jp", "newsletter").await["may_send"],
        true
    );
    assert_eq!(
        decide(&s, "jiro@example.jp", "offers").await["may_send"],
        false
    );

    // Idempotency: a retry gets the first answer; the same key with another body is refused.
    let body = event("opt_in", "saburo@example.jp", json!(["newsletter"]));
    let a1 = s
        .app
        .call(
            "POST",
            "/v1/events",
            Some(&s.sender),
            Some(&body),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    let a2 = s
        .app
        .call(
            "POST",
            "/v1/events",
            Some(&s.sender),
            Some(&body),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!((a1.status, a2.status), (201, 201));
    assert_eq!(a1.json(), a2.json());
    assert_eq!(a2.header("idempotent-replayed"), "true");
    let other = event("opt_out", "saburo@example.jp", json!(["newsletter"]));
    assert_eq!(
        s.app
            .call(
                "POST",
                "/v1/events",
                Some(&s.sender),
                Some(&other),
                &[("Idempotency-Key", "k-1")]
            )
            .await
            .status,
        409
    );
    let history = s
        .app
        .call(
            "GET",
            "/v1/subjects/events?email=saburo@example.jp",
            Some(&s.sender),
            None,
            &[],
        )
        .await
        .json();
    assert_eq!(
        history["events"].as_array().unwrap().len(),
        1,
        "the retry wrote nothing"
    );
    s.app.stop().await;
}

async fn misuse_is_refused_and_writes_nothing(db: TestDb) {
    let s = setup(&db).await;
    post_event(&s, &event("opt_in", "a@example.jp", json!(["newsletter"]))).await;
    let count = || async { export_json(&s).await["events"].as_array().unwrap().len() };
    let before = count().await;
    let other_tenant = consent::create_tenant(
        &s.app_store(&db),
        NewTenant {
            name: "Other".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let ok = event("opt_in", "b@example.jp", json!(["newsletter"]));
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = ok.clone();
        f(&mut v);
        v
    };
    let cases: Vec<(&str, Option<&str>, Value, u16)> = vec![
        ("no token", None, ok.clone(), 401),
        ("regulator writes", Some(&s.regulator), ok.clone(), 403),
        ("admin writes", Some(&s.admin), ok.clone(), 403),
        (
            "invalid address",
            Some(&s.sender),
            with(&|v| v["email"] = json!("not-an-address")),
            422,
        ),
        (
            "unknown purpose",
            Some(&s.sender),
            with(&|v| v["purposes"] = json!(["spam"])),
            422,
        ),
        (
            "no purposes",
            Some(&s.sender),
            with(&|v| v["purposes"] = json!([])),
            422,
        ),
        (
            "opt-in for all",
            Some(&s.sender),
            with(&|v| v["purposes"] = json!("all")),
            422,
        ),
        (
            "unknown collection point",
            Some(&s.sender),
            with(&|v| v["collection_point"] = json!("ab")),
            422,
        ),
        (
            "future",
            Some(&s.sender),
            with(&|v| v["occurred_at"] = json!("2999-01-01T00:00:00Z")),
            422,
        ),
        (
            "bad time",
            Some(&s.sender),
            with(&|v| v["occurred_at"] = json!("yesterday")),
            422,
        ),
        (
            "unknown event",
            Some(&s.sender),
            with(&|v| v["event"] = json!("maybe")),
            400,
        ),
        (
            "unknown field",
            Some(&s.sender),
            with(&|v| v["extra"] = json!(1)),
            400,
        ),
        (
            "missing field",
            Some(&s.sender),
            with(&|v| {
                v.as_object_mut().unwrap().remove("method");
            }),
            400,
        ),
        (
            "basis on opt-out",
            Some(&s.sender),
            json!({"event": "opt_out", "email": "b@example.jp", "purposes": "all", "basis": "consent", "method": "email", "received_by": {"role": "sender", "name": "x"}}),
            422,
        ),
        (
            "confirm with nothing pending",
            Some(&s.sender),
            with(&|v| v["event"] = json!("confirm")),
            409,
        ),
    ];
    for (what, token, body, status) in cases {
        let a = s
            .app
            .call("POST", "/v1/events", token, Some(&body), &[])
            .await;
        assert_eq!(a.status, status, "{what}: {}", a.text());
        assert_eq!(
            a.header("content-type"),
            "application/problem+json",
            "{what}"
        );
    }
    assert_eq!(raw_post(&s, "{not json".into()).await, 400);
    assert_eq!(
        raw_post(&s, format!("{{\"email\": \"{}\"}}", "a".repeat(1 << 20))).await,
        413
    );
    // Reads are scoped to the caller's tenant.
    let foreign = s
        .app
        .call(
            "GET",
            &format!(
                "/v1/consent?email=a@example.jp&purpose=newsletter&tenant={}",
                other_tenant.id
            ),
            Some(&s.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(foreign.status, 403);
    assert_eq!(
        s.app
            .call(
                "GET",
                "/v1/consent?email=a@example.jp&purpose=newsletter",
                Some(&s.regulator),
                None,
                &[]
            )
            .await
            .status,
        400
    );
    assert_eq!(
        s.app
            .call(
                "GET",
                "/v1/consent?email=nope&purpose=newsletter",
                Some(&s.sender),
                None,
                &[]
            )
            .await
            .status,
        422
    );
    assert_eq!(
        s.app
            .call(
                "GET",
                "/v1/consent?email=a@example.jp&purpose=spam",
                Some(&s.sender),
                None,
                &[]
            )
            .await
            .status,
        422
    );
    assert_eq!(
        s.app
            .call(
                "POST",
                "/v1/tenants",
                Some(&s.sender),
                Some(&json!({"name": "x"})),
                &[]
            )
            .await
            .status,
        403
    );
    assert_eq!(count().await, before, "nothing was written");
    s.app.stop().await;
}

async fn concurrent_opt_in_and_opt_out_end_in_the_last_one(db: TestDb) {
    let s = std::rc::Rc::new(setup(&db).await);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = s.clone();
        tasks.push(actix_web::rt::spawn(async move {
            let kind = if i % 2 == 0 { "opt_in" } else { "opt_out" };
            post_event(&s, &event(kind, "race@example.jp", json!(["newsletter"]))).await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let history = s
        .app
        .call(
            "GET",
            "/v1/subjects/events?email=race@example.jp",
            Some(&s.sender),
            None,
            &[],
        )
        .await
        .json();
    let events = history["events"].as_array().unwrap();
    assert_eq!(events.len(), 24);
    for pair in events.windows(2) {
        assert_eq!(
            pair[1]["prev_leaf_index"], pair[0]["leaf_index"],
            "one unbroken chain"
        );
    }
    // The documented rule, replayed over the history in log order: an opt-out always applies; an
    // opt-in grants unless a refusal claimed at the same time or later is in force.
    let at = |e: &Value| {
        time::OffsetDateTime::parse(
            e["occurred_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let mut state: Option<(bool, time::OffsetDateTime, Value)> = None;
    for e in events {
        let granted_now = match (&state, e["event"].as_str().unwrap()) {
            (_, "opt_out") => false,
            (Some((false, withdrawn_at, _)), _) if at(e) <= *withdrawn_at => continue,
            _ => true,
        };
        state = Some((granted_now, at(e), e["event_id"].clone()));
    }
    let (expected, _, deciding) = state.unwrap();
    let d = decide(&s, "race@example.jp", "newsletter").await;
    assert_eq!(
        d["may_send"],
        json!(expected),
        "the decision follows the documented rule"
    );
    assert_eq!(d["event_id"], deciding);
}

async fn raw_post(s: &Setup, body: String) -> u16 {
    let client = awc::Client::default();
    let mut res = client
        .post(format!("{}/v1/events", s.app.base))
        .insert_header(("Authorization", format!("Bearer {}", s.sender)))
        .insert_header(("Content-Type", "application/json"))
        .send_body(body)
        .await
        .unwrap();
    let _ = res.body().await;
    res.status().as_u16()
}

impl Setup {
    fn app_store(&self, db: &TestDb) -> consent_ledger::store::Store {
        consent_ledger::store::Store::connect(&db.url, 2).unwrap()
    }
}

async fn a_check_answers_each_address_as_its_single_decision_does(db: TestDb) {
    let s = setup(&db).await;
    let events = json!({"events": [
        // Opted in, then out of everything: the all-purposes row is the later one.
        event("opt_in", "all-out@example.jp", json!(["newsletter"])),
        event("opt_out", "all-out@example.jp", "all".into()),
        // Out of everything, then in again for the newsletter a day later: the purpose's row
        // is the later one.
        with_time(event("opt_out", "back@example.jp", "all".into()), "2026-01-01T00:00:00Z"),
        with_time(event("opt_in", "back@example.jp", json!(["newsletter"])), "2026-01-02T00:00:00Z"),
        // Out of another purpose only.
        event("opt_in", "other-out@example.jp", json!(["newsletter", "offers"])),
        event("opt_out", "other-out@example.jp", json!(["offers"])),
        // A subject with no row for the newsletter.
        event("opt_in", "offers-only@example.jp", json!(["offers"])),
        event("opt_in", "plain@example.jp", json!(["newsletter"])),
    ]});
    record_batch(&s, &events).await;
    let emails = [
        "all-out@example.jp",
        "back@example.jp",
        "other-out@example.jp",
        "offers-only@example.jp",
        "plain@example.jp",
        "nobody@example.jp",
    ];
    let checked = preflight(&s, &json!({"purpose": "newsletter", "emails": emails})).await;
    let mut got = Vec::new();
    for (email, result) in emails.iter().zip(checked["results"].as_array().unwrap()) {
        let single = decide(&s, email, "newsletter").await;
        assert_eq!(result["status"], single["status"], "{email}");
        assert_eq!(result["may_send"], single["may_send"], "{email}");
        got.push(result["status"].as_str().unwrap().to_string());
    }
    assert_eq!(
        got,
        ["withdrawn", "granted", "granted", "none", "granted", "none"]
    );
}

async fn batches_are_all_or_nothing_and_checks_answer_per_address(db: TestDb) {
    let s = setup(&db).await;
    let good = json!({"events": [
        event("opt_in", "one@example.jp", json!(["newsletter"])),
        event("opt_in", "two@example.jp", json!(["newsletter", "offers"])),
        event("opt_out", "two@example.jp", json!(["offers"])),
    ]});
    let recorded = record_batch(&s, &good).await["events"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(recorded.len(), 3);
    let first = recorded[0]["leaf_index"].as_u64().unwrap();
    for (i, e) in recorded.iter().enumerate() {
        assert_eq!(
            e["leaf_index"].as_u64(),
            Some(first + i as u64),
            "one contiguous run, in order"
        );
    }
    assert_eq!(recorded[2]["prev_leaf_index"], recorded[1]["leaf_index"]);

    let bad = json!({"events": [
        event("opt_in", "three@example.jp", json!(["newsletter"])),
        event("opt_in", "not-an-address", json!(["newsletter"])),
        event("opt_in", "four@example.jp", json!(["spam"])),
    ]});
    let a = s
        .app
        .call("POST", "/v1/events:batch", Some(&s.sender), Some(&bad), &[])
        .await;
    assert_eq!(a.status, 422, "{}", a.text());
    let errors = a.json()["errors"].as_array().unwrap().clone();
    assert_eq!(
        errors
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(
        decide(&s, "three@example.jp", "newsletter").await["status"],
        "none",
        "nothing half-written"
    );
    let too_many =
        json!({"events": vec![event("opt_in", "x@example.jp", json!(["newsletter"])); 1001]});
    assert_eq!(
        s.app
            .call(
                "POST",
                "/v1/events:batch",
                Some(&s.sender),
                Some(&too_many),
                &[]
            )
            .await
            .status,
        422
    );
    let empty = json!({"events": []});
    assert_eq!(
        s.app
            .call(
                "POST",
                "/v1/events:batch",
                Some(&s.sender),
                Some(&empty),
                &[]
            )
            .await
            .status,
        422
    );

    let check = json!({"purpose": "offers", "emails": ["TWO@example.jp", "one@example.jp", "nobody@example.jp", "broken"]});
    let a = s
        .app
        .call(
            "POST",
            "/v1/consent:check",
            Some(&s.sender),
            Some(&check),
            &[],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let results = a.json()["results"].as_array().unwrap().clone();
    let got: Vec<(bool, &str)> = results
        .iter()
        .map(|r| {
            (
                r["may_send"].as_bool().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (false, "withdrawn"),
            (false, "none"),
            (false, "none"),
            (false, "invalid")
        ]
    );
    assert_eq!(
        results[0]["email"], "TWO@example.jp",
        "answers carry the address as given"
    );
    let check = json!({"purpose": "newsletter", "emails": ["two@example.jp", "one@example.jp"]});
    let results = preflight(&s, &check).await;
    assert_eq!(results["results"][0]["may_send"], true);
    assert_eq!(results["results"][1]["may_send"], true);
    let many: Vec<String> = (0..10_000).map(|i| format!("user{i}@example.jp")).collect();
    let a = s
        .app
        .call(
            "POST",
            "/v1/consent:check",
            Some(&s.sender),
            Some(&json!({"purpose": "newsletter", "emails": many})),
            &[],
        )
        .await;
    assert_eq!(
        (a.status, a.json()["results"].as_array().unwrap().len()),
        (200, 10_000)
    );
    // The suppression list: who refused, for this purpose or for all.
    post_event(&s, &event("opt_out", "one@example.jp", json!("all"))).await;
    post_event(&s, &event("opt_in", "back@example.jp", json!(["offers"]))).await;
    post_event(&s, &event("opt_out", "back@example.jp", json!(["offers"]))).await;
    post_event(&s, &event("opt_in", "back@example.jp", json!(["offers"]))).await;
    let mut offers = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = s
            .app
            .call(
                "GET",
                &format!("/v1/suppression?purpose=offers&limit=1{cursor}"),
                Some(&s.sender),
                None,
                &[],
            )
            .await
            .json();
        offers.extend(
            page["addresses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string()),
        );
        match page["next_after"].as_str() {
            Some(next) => cursor = format!("&after={next}"),
            None => break,
        }
    }
    offers.sort();
    assert_eq!(
        offers,
        ["one@example.jp", "two@example.jp"],
        "refusals in force only"
    );
    let newsletter = suppression(&s, "newsletter").await;
    assert_eq!(newsletter["addresses"], json!(["one@example.jp"]));
    let unknown = json!({"purpose": "spam", "emails": ["one@example.jp"]});
    assert_eq!(
        s.app
            .call(
                "POST",
                "/v1/consent:check",
                Some(&s.sender),
                Some(&unknown),
                &[]
            )
            .await
            .status,
        422
    );
    s.app.stop().await;
}

async fn erasure_waits_for_the_law_then_leaves_the_log_unlinkable(db: TestDb) {
    let s = setup(&db).await;
    let email = "erase.me@example.jp";
    let first = post_event(&s, &event("opt_in", email, json!(["newsletter"]))).await;
    let erase_path = format!("/v1/subjects?email={email}");
    let erase = async |s: &Setup| {
        s.app
            .call("DELETE", &erase_path, Some(&s.sender), None, &[])
            .await
    };
    let a = erase(&s).await;
    assert_eq!(a.status, 409, "consent in force: {}", a.text());
    assert!(a.json()["detail"].as_str().unwrap().contains("newsletter"));
    post_event(&s, &event("opt_out", email, json!("all"))).await;
    let a = erase(&s).await;
    assert_eq!(a.status, 409);
    let from = a.json()["erasable_from"].as_str().unwrap().to_string();
    assert!(
        from.as_str()
            > consent_ledger::rfc3339(consent_ledger::now_millis() + 30 * 86_400_000).as_str(),
        "{from}"
    );
    assert_eq!(
        s.app
            .call(
                "DELETE",
                "/v1/subjects?email=nobody@example.jp",
                Some(&s.sender),
                None,
                &[]
            )
            .await
            .status,
        404
    );
    assert_eq!(
        s.app
            .call(
                "DELETE",
                &format!("/v1/subjects?email={email}"),
                Some(&s.regulator),
                None,
                &[]
            )
            .await
            .status,
        403
    );

    // Forty days later (the log's clock moved on, as the test cannot wait).
    let mut s = s;
    s.app = s.app.restart_with_clock(&db, 40).await;
    let a = erase(&s).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["events"], 2);
    // The address is gone, its refusal is not: found by its label.
    assert_eq!(decide(&s, email, "newsletter").await["status"], "withdrawn");
    let check = json!({"purpose": "newsletter", "emails": [email, "other@example.jp"]});
    let answer = preflight(&s, &check).await;
    assert_eq!(answer["results"][0]["status"], "withdrawn", "{answer}");
    assert_eq!(answer["results"][1]["status"], "none", "{answer}");
    let suppressed = suppression(&s, "newsletter").await;
    assert_eq!(suppressed["addresses"], json!([]), "{suppressed}");
    assert_eq!(
        suppressed["erased"].as_array().map(Vec::len),
        Some(1),
        "the refusal stays on the list, by label: {suppressed}"
    );
    let history = s
        .app
        .call(
            "GET",
            &format!("/v1/subjects/events?email={email}"),
            Some(&s.sender),
            None,
            &[],
        )
        .await
        .json();
    assert!(
        history["events"].as_array().unwrap().is_empty(),
        "the address no longer leads to the events"
    );
    let export = export_json(&s).await;
    let mine: Vec<&Value> = export["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_id"] == first["event_id"])
        .collect();
    assert_eq!(mine.len(), 1, "the record stays");
    assert!(mine[0]["email"].is_null(), "without the address");
    // The leaf is still in the log and still proves.
    let index = first["leaf_index"].as_u64().unwrap();
    let cp = wait_for_checkpoint(&s.app.log, index + 1).await;
    assert_eq!(
        s.app
            .get(&format!(
                "/v1/log/proof/inclusion?index={index}&size={}",
                cp.size
            ))
            .await
            .status,
        200
    );
    s.app.stop().await;
}

async fn an_opt_out_binds_every_basis_and_beats_stale_opt_ins(db: TestDb) {
    let s = setup(&db).await;
    let email = "refuser@example.jp";
    post_event(&s, &event("opt_in", email, json!(["newsletter"]))).await;
    post_event(&s, &event("opt_out", email, json!("all"))).await;
    // An exception basis does not survive a refusal (Art. 3(3)).
    let mut exception = event("opt_in", email, json!(["newsletter"]));
    exception["basis"] = json!("business_relationship");
    exception["evidence"] =
        json!({"transaction_reference": "order 1234", "transaction_date": "2017-12-01"});
    post_event(&s, &exception).await;
    assert_eq!(
        decide(&s, email, "newsletter").await["may_send"],
        false,
        "exception basis after opt-out"
    );
    // A stale opt-in (claimed before the refusal) arriving late does not bring consent back.
    let mut stale = event("opt_in", email, json!(["newsletter"]));
    stale["occurred_at"] = json!("2024-01-01T00:00:00Z");
    stale["method"] = json!("import");
    post_event(&s, &stale).await;
    assert_eq!(
        decide(&s, email, "newsletter").await["may_send"],
        false,
        "stale opt-in after opt-out"
    );
    // Fresh consent does.
    post_event(&s, &event("opt_in", email, json!(["newsletter"]))).await;
    assert_eq!(decide(&s, email, "newsletter").await["may_send"], true);
    // Every event is on record, effective or not.
    let history = s
        .app
        .call(
            "GET",
            &format!("/v1/subjects/events?email={email}"),
            Some(&s.sender),
            None,
            &[],
        )
        .await
        .json();
    assert_eq!(history["events"].as_array().unwrap().len(), 5);
    // A refusal is never turned away for the client's clock; times before 1970 are refused.
    let mut future = event("opt_out", email, json!(["newsletter"]));
    future["occurred_at"] = json!("2999-01-01T00:00:00Z");
    post_event(&s, &future).await;
    assert_eq!(decide(&s, email, "newsletter").await["may_send"], false);
    let mut ancient = event("opt_in", email, json!(["newsletter"]));
    ancient["occurred_at"] = json!("0000-01-01T00:00:00+01:00");
    assert_eq!(
        s.app
            .call("POST", "/v1/events", Some(&s.sender), Some(&ancient), &[])
            .await
            .status,
        422
    );
    // Odd ids are not found (never a database error).
    let nul = s
        .app
        .call(
            "GET",
            "/v1/consent?email=a@example.jp&purpose=newsletter&tenant=%00x",
            Some(&s.regulator),
            None,
            &[],
        )
        .await;
    assert_eq!(nul.status, 404, "{}", nul.text());
    let mut odd_cp = event("opt_in", "b@example.jp", json!(["newsletter"]));
    odd_cp["collection_point"] = json!("a\u{0}b");
    assert_eq!(
        s.app
            .call("POST", "/v1/events", Some(&s.sender), Some(&odd_cp), &[])
            .await
            .status,
        422
    );
    // Under a legal hold the record is kept a year.
    let hold = s
        .app
        .call(
            "PUT",
            &format!("/v1/tenants/{}/legal-hold", s.tenant),
            Some(&s.regulator),
            Some(&json!({"legal_hold": true, "order_date": crate::common::date(-1), "order_reference": "措置命令 第1号"})),
            &[],
        )
        .await;
    assert_eq!(
        (hold.status, hold.json()["legal_hold"].clone()),
        (200, json!(true))
    );
    assert_eq!(
        s.app
            .call(
                "PUT",
                &format!("/v1/tenants/{}/legal-hold", s.tenant),
                Some(&s.sender),
                Some(&json!({"legal_hold": false, "order_date": crate::common::date(-1), "order_reference": "解除 第1号"})),
                &[]
            )
            .await
            .status,
        403
    );
    let refused = s
        .app
        .call(
            "DELETE",
            &format!("/v1/subjects?email={email}"),
            Some(&s.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(refused.status, 409);
    let from = refused.json()["erasable_from"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        from.as_str()
            > consent_ledger::rfc3339(consent_ledger::now_millis() + 360 * 86_400_000).as_str(),
        "{from}"
    );
    s.app.stop().await;
}

async fn idempotency_is_exactly_once(db: TestDb) {
    let s = std::rc::Rc::new(setup(&db).await);
    // A confirm retried after the state moved on still gets its first answer.
    let mut pending = event("opt_in", "dup@example.jp", json!(["newsletter"]));
    pending["confirmation_required"] = json!(true);
    post_event(&s, &pending).await;
    let confirm = event("confirm", "dup@example.jp", json!("all"));
    let first = s
        .app
        .call(
            "POST",
            "/v1/events",
            Some(&s.sender),
            Some(&confirm),
            &[("Idempotency-Key", "c-1")],
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text());
    let again = s
        .app
        .call(
            "POST",
            "/v1/events",
            Some(&s.sender),
            Some(&confirm),
            &[("Idempotency-Key", "c-1")],
        )
        .await;
    assert_eq!(
        (again.status, again.json()),
        (201, first.json()),
        "replayed, not re-validated"
    );
    // A failed request frees its key: fixing nothing, the same request fails the same way.
    let bad = event("opt_in", "dup@example.jp", json!(["spam"]));
    assert_eq!(
        s.app
            .call(
                "POST",
                "/v1/events",
                Some(&s.sender),
                Some(&bad),
                &[("Idempotency-Key", "b-1")]
            )
            .await
            .status,
        422
    );
    assert_eq!(
        s.app
            .call(
                "POST",
                "/v1/events",
                Some(&s.sender),
                Some(&bad),
                &[("Idempotency-Key", "b-1")]
            )
            .await
            .status,
        422
    );
    // Concurrent retries of one request record it once.
    let body = event("opt_in", "once@example.jp", json!(["offers"]));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, body) = (s.clone(), body.clone());
        tasks.push(actix_web::rt::spawn(async move {
            s.app
                .call(
                    "POST",
                    "/v1/events",
                    Some(&s.sender),
                    Some(&body),
                    &[("Idempotency-Key", "race-1")],
                )
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201));
    let history = s
        .app
        .call(
            "GET",
            "/v1/subjects/events?email=once@example.jp",
            Some(&s.sender),
            None,
            &[],
        )
        .await
        .json();
    assert_eq!(
        history["events"].as_array().unwrap().len(),
        1,
        "recorded once: {statuses:?}"
    );
    // Batches replay whole.
    let batch = json!({"events": [event("opt_in", "b1@example.jp", json!(["offers"])), event("opt_in", "b2@example.jp", json!(["offers"]))]});
    let a = s
        .app
        .call(
            "POST",
            "/v1/events:batch",
            Some(&s.sender),
            Some(&batch),
            &[("Idempotency-Key", "batch-1")],
        )
        .await;
    let b = s
        .app
        .call(
            "POST",
            "/v1/events:batch",
            Some(&s.sender),
            Some(&batch),
            &[("Idempotency-Key", "batch-1")],
        )
        .await;
    assert_eq!((a.status, b.status), (201, 201));
    assert_eq!(a.json(), b.json());
    assert_eq!(
        s.app
            .call(
                "POST",
                "/v1/events",
                Some(&s.sender),
                Some(&body),
                &[("Idempotency-Key", "bad key é")]
            )
            .await
            .status,
        400
    );
    // Keys are kept 48 hours, then purged by housekeeping: a retry after that is a new request.
    let store = consent_ledger::store::Store::connect(&db.url, 2).unwrap();
    assert_eq!(
        consent_ledger::idempotency::purge(&store, consent_ledger::now_millis()).unwrap(),
        0
    );
    let later = consent_ledger::now_millis() + consent_ledger::idempotency::RETENTION_MS + 1;
    assert!(consent_ledger::idempotency::purge(&store, later).unwrap() >= 1);
    let after = s
        .app
        .call(
            "POST",
            "/v1/events",
            Some(&s.sender),
            Some(&confirm),
            &[("Idempotency-Key", "c-1")],
        )
        .await;
    // Validated anew (nothing is pending any more), not replayed.
    assert_eq!(after.status, 409, "{}", after.text());
    assert!(after.text().contains("nothing awaits confirmation"));
}

async fn double_opt_in_by_link_confirms_only_on_the_button(db: TestDb) {
    let s = setup(&db).await;
    let email = "linked@example.jp";
    let mut pending = event("opt_in", email, json!(["newsletter"]));
    pending["confirmation_required"] = json!(true);
    let a = s
        .app
        .call(
            "POST",
            "/v1/events",
            Some(&s.sender),
            Some(&pending),
            &[("Idempotency-Key", "dl-1")],
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text());
    let url = a.json()["confirmation_url"]
        .as_str()
        .expect("a pending opt-in gets a link")
        .to_string();
    let path = &url[url.find("/confirm/").unwrap()..];
    let replay = s
        .app
        .call(
            "POST",
            "/v1/events",
            Some(&s.sender),
            Some(&pending),
            &[("Idempotency-Key", "dl-1")],
        )
        .await;
    assert_eq!(
        replay.json()["confirmation_url"],
        json!(url),
        "a replay carries the same link"
    );
    assert!(!url.contains("linked"), "no address in the link");

    // Opening the link (as a mail scanner would) changes nothing.
    for _ in 0..3 {
        let page = s.app.get(path).await;
        assert_eq!(page.status, 200);
        assert!(page.header("content-type").starts_with("text/html"));
        assert!(page
            .header("content-security-policy")
            .contains("default-src 'none'"));
        assert_eq!(page.header("referrer-policy"), "no-referrer");
        let html = page.text();
        assert!(
            html.contains("Example K.K.")
                && html.contains("Weekly news")
                && html.contains("<form method=\"post\">"),
            "{html}"
        );
        assert!(
            !html.contains("<script") && !html.contains("https://"),
            "no scripts, no external assets"
        );
    }
    assert_eq!(decide(&s, email, "newsletter").await["status"], "pending");
    let english = s
        .app
        .call(
            "GET",
            path,
            None,
            None,
            &[("Accept-Language", "en-US,en;q=0.9")],
        )
        .await;
    assert!(english.text().contains("Confirm your subscription"));
    assert!(s
        .app
        .get(&format!("{path}?lang=en"))
        .await
        .text()
        .contains("Yes, subscribe me"));

    // The button confirms — clicked twice at once, it records one confirmation.
    let click = || {
        s.app.call(
            "POST",
            path,
            None,
            None,
            &[("User-Agent", "TestBrowser/1.0")],
        )
    };
    let (one, two) = tokio::join!(click(), click());
    assert_eq!((one.status, two.status), (200, 200), "{}", one.text());
    let mut pages = [one.text(), two.text()];
    pages.sort_by_key(|p| !p.contains("登録しました"));
    assert!(pages[0].contains("登録しました"), "{}", pages[0]);
    assert!(pages[1].contains("確認済みです"), "{}", pages[1]);
    assert_eq!(decide(&s, email, "newsletter").await["may_send"], true);
    let history = s
        .app
        .call(
            "GET",
            &format!("/v1/subjects/events?email={email}"),
            Some(&s.sender),
            None,
            &[],
        )
        .await
        .json();
    let last = history["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["event"].clone(), last["method"].clone()),
        (json!("confirm"), json!("email"))
    );
    let confirms = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "confirm")
        .count();
    assert_eq!(confirms, 1, "a double click records one confirmation");
    let again = s
        .app
        .call("POST", &format!("{path}?lang=en"), None, None, &[])
        .await;
    assert_eq!(again.status, 200);
    assert!(again.text().contains("Nothing to confirm"));
    assert_eq!(
        s.app
            .call(
                "GET",
                "/v1/subjects/events?email=linked@example.jp",
                Some(&s.sender),
                None,
                &[]
            )
            .await
            .json()["events"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Tampered, truncated or foreign tokens get a clear page, never a confirmation.
    let token = &path["/confirm/".len()..];
    let (text, tag) = token.split_once('.').unwrap();
    let flipped = format!(
        "{}{}.{tag}",
        &text[..text.len() - 1],
        if text.ends_with('A') { "B" } else { "A" }
    );
    for bad in [
        flipped.as_str(),
        &token[..token.len() - 2],
        "garbage",
        "a.b",
    ] {
        for method in ["GET", "POST"] {
            let page = s
                .app
                .call(method, &format!("/confirm/{bad}"), None, None, &[])
                .await;
            assert_eq!(page.status, 400, "{method} {bad}");
            assert!(
                page.header("content-type").starts_with("text/html"),
                "a page, not JSON"
            );
        }
    }
    s.app.stop().await;
}

async fn raw(
    s: &Setup,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> crate::common::Answer {
    let client = awc::Client::default();
    let mut req = client
        .request(
            awc::http::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{}", s.app.base, path),
        )
        .insert_header(("Authorization", format!("Bearer {}", s.sender)))
        .insert_header(("Content-Type", content_type));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let mut res = req.send_body(body.to_string()).await.unwrap();
    let body = res.body().limit(64 << 20).await.unwrap().to_vec();
    crate::common::Answer {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body,
    }
}

async fn imports_are_all_or_nothing_and_exports_round_trip(db: TestDb) {
    let s = setup(&db).await;
    let count = || async { export_json(&s).await["events"].as_array().unwrap().len() };
    let line = |kind: &str, email: &str, when: &str| {
        json!({"event": kind, "email": email, "purposes": ["newsletter"], "occurred_at": when,
               "received_by": {"role": "commissioning_party", "name": "Legacy CRM K.K."}})
        .to_string()
    };
    let good = [
        line("opt_in", "old1@example.jp", "2019-04-01T09:00:00Z"),
        line("opt_in", "old2@example.jp", "2020-05-01T09:00:00Z"),
        line("opt_out", "old2@example.jp", "2021-06-01T09:00:00Z"),
    ]
    .join("\n");
    let a = raw(
        &s,
        "POST",
        "/v1/events:import?format=jsonl",
        "application/x-ndjson",
        &good,
        &[("Idempotency-Key", "imp-1")],
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(a.json()["imported"], 3);
    let replay = raw(
        &s,
        "POST",
        "/v1/events:import?format=jsonl",
        "application/x-ndjson",
        &good,
        &[("Idempotency-Key", "imp-1")],
    )
    .await;
    assert_eq!((replay.status, replay.json()), (201, a.json()));
    assert_eq!(
        decide(&s, "old1@example.jp", "newsletter").await["may_send"],
        true
    );
    assert_eq!(
        decide(&s, "old2@example.jp", "newsletter").await["may_send"],
        false
    );
    let history = s
        .app
        .call(
            "GET",
            "/v1/subjects/events?email=old1@example.jp",
            Some(&s.sender),
            None,
            &[],
        )
        .await
        .json();
    assert_eq!(
        (
            history["events"][0]["method"].clone(),
            history["events"][0]["occurred_at"].clone()
        ),
        (json!("import"), json!("2019-04-01T09:00:00Z"))
    );

    // One bad line and nothing is written; every bad line is named by its number.
    let before = count().await;
    let bad = [
        line("opt_in", "new1@example.jp", "2019-01-01T00:00:00Z"),
        line("opt_in", "broken", "2019-01-01T00:00:00Z"),
        String::new(),
        "{not json".into(),
        line("opt_in", "new2@example.jp", "2019-01-01T00:00:00Z"),
    ]
    .join("\n");
    let a = raw(
        &s,
        "POST",
        "/v1/events:import?format=jsonl",
        "application/x-ndjson",
        &bad,
        &[],
    )
    .await;
    assert_eq!(a.status, 422, "{}", a.text());
    let lines: Vec<u64> = a.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 4]);
    assert_eq!(count().await, before, "nothing half-written");

    // CSV, with quoting.
    let csv = "event,email,purposes,basis,method,occurred_at,received_by_role,received_by_name,transaction_reference,transaction_date\n\
               opt_in,csv1@example.jp,newsletter;offers,business_relationship,paper,2018-01-01T00:00:00Z,sender,\"Example, K.K.\",契約 12,2017-12-01\n\
               opt_out,csv1@example.jp,all,,,2018-02-01T00:00:00Z,sender,Example,,\n";
    let a = raw(
        &s,
        "POST",
        "/v1/events:import?format=csv",
        "text/csv",
        csv,
        &[],
    )
    .await;
    assert_eq!(
        (a.status, a.json()["imported"].clone()),
        (201, json!(2)),
        "{}",
        a.text()
    );
    assert_eq!(
        decide(&s, "csv1@example.jp", "offers").await["may_send"],
        false
    );
    let csv_history = s
        .app
        .call(
            "GET",
            "/v1/subjects/events?email=csv1@example.jp",
            Some(&s.sender),
            None,
            &[],
        )
        .await
        .json();
    assert_eq!(
        csv_history["events"][0]["method"], "paper",
        "the CSV's method is kept"
    );
    let missing = raw(
        &s,
        "POST",
        "/v1/events:import?format=csv",
        "text/csv",
        "event,email\nopt_in,a@example.jp\n",
        &[],
    )
    .await;
    assert_eq!(missing.status, 422);
    assert!(missing.json()["detail"]
        .as_str()
        .unwrap()
        .contains("purposes"));
    assert_eq!(
        raw(
            &s,
            "POST",
            "/v1/events:import?format=xml",
            "text/xml",
            "<a/>",
            &[]
        )
        .await
        .status,
        400
    );

    // The CSV export carries every record, with its leaf.
    let export = s
        .app
        .call(
            "GET",
            "/v1/events/export?format=csv",
            Some(&s.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(export.header("content-type"), "text/csv; charset=utf-8");
    let text = export.text();
    assert!(text.starts_with("\"event_id\",\"email\",\"event\",\"purposes\","));
    assert_eq!(text.lines().count(), 1 + count().await);
    assert!(
        text.contains("\"Example, K.K.\""),
        "quoted on the way out too"
    );
    s.app.stop().await;
}

async fn csv_exports_start_no_spreadsheet_formula(db: TestDb) {
    let s = setup(&db).await;
    let mut body = event("opt_in", "=1+2@example.jp", json!(["newsletter"]));
    body["received_by"]["name"] = json!("=HYPERLINK(\"http://evil.example\",\"click\")");
    post_event(&s, &body).await;
    let mut body = event("opt_in", "-1+1@example.jp", json!(["newsletter"]));
    body["received_by"]["name"] = json!("@SUM(1+1)");
    post_event(&s, &body).await;
    let mut body = event("opt_in", "semi@example.jp", json!(["newsletter"]));
    body["received_by"]["name"] = json!("Shop;=HYPERLINK(\"http://evil.example\")");
    post_event(&s, &body).await;

    let csv = s
        .app
        .call(
            "GET",
            "/v1/events/export?format=csv",
            Some(&s.sender),
            None,
            &[],
        )
        .await
        .text();
    // Every cell is quoted: one holding `;=…` stays one cell where `;` separates.
    assert!(
        csv.contains("\"Shop;=HYPERLINK(\"\"http://evil.example\"\")\""),
        "{csv}"
    );
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let cells: Vec<String> = reader
        .records()
        .flat_map(|r| r.unwrap().iter().map(str::to_string).collect::<Vec<_>>())
        .collect();
    for cell in &cells {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "a live formula in the export: {cell:?}"
        );
    }
    for neutral in [
        "'=1+2@example.jp",
        "'=HYPERLINK(\"http://evil.example\",\"click\")",
        "'-1+1@example.jp",
        "'@SUM(1+1)",
    ] {
        assert!(cells.iter().any(|c| c == neutral), "{neutral} in {cells:?}");
    }
    let json = export_json(&s).await;
    let emails: Vec<&str> = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["email"].as_str().unwrap())
        .collect();
    assert!(
        emails.contains(&"=1+2@example.jp"),
        "JSON is unchanged: {emails:?}"
    );
    s.app.stop().await;
}
