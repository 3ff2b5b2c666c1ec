//! Whole-tenant evidence (`GET /v1/evidence:tenant`): every subject of a tenant as of one
//! checkpoint, verified offline by `consent-ledger verify tenant` — and refused when a subject is
//! left out; resumed at the same checkpoint after the map moved on.

use serde_json::{json, Value};

use crate::common::{bin, TestApp, TestDb};
use crate::on_both_backends;
use crate::unsubscribe::{opt_in, shop, Shop};

on_both_backends!(
    a_whole_tenant_export_verifies_with_every_subject,
    an_export_of_more_subjects_than_a_page_verifies,
    an_export_without_one_subject_fails_as_incomplete,
    an_export_that_hides_a_refusal_fails_as_incomplete,
    an_export_resumes_at_its_checkpoint_after_the_log_moved_on,
    an_export_of_another_tenant_than_asked_fails,
    a_subject_shown_without_its_address_fails,
    a_relabelled_history_is_exported_whole_and_a_leaf_after_it_fails,
    a_resumption_needs_the_header_s_size_and_a_key,
);

const ADDRESSES: [&str; 5] = [
    "aiko@example.jp",
    "ben@example.jp",
    "chika@example.jp",
    "daiki@example.jp",
    "emi@example.jp",
];

/// A shop with five subjects, one of whom refused everything; the leaf of the newest event.
async fn tenant_with_subjects(db: &TestDb) -> (TestApp, Shop, u64) {
    let app = TestApp::start(db).await;
    let shop = shop(db, true);
    for email in ADDRESSES {
        opt_in(&app, &shop, email).await;
    }
    let res = app
        .call(
            "POST",
            "/v1/events",
            Some(&shop.sender),
            Some(&json!({"event": "opt_out", "email": ADDRESSES[1], "purposes": "all",
                         "method": "one_click", "received_by": {"role": "sender", "name": "Sakura Shop"}})),
            &[],
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let newest = leaf_of(&res.json());
    (app, shop, newest)
}

fn leaf_of(event: &Value) -> u64 {
    event["leaf_index"]
        .as_u64()
        .unwrap_or_else(|| panic!("{event}"))
}

/// The export's lines, once its checkpoint's map holds `subjects` subjects and leaf `newest`
/// (waits for that condition, not for a time).
async fn export_of(app: &TestApp, shop: &Shop, subjects: u64, newest: u64) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no export of {subjects} subjects past leaf {newest} within 60 s"
        );
        let res = app
            .call("GET", "/v1/evidence:tenant", Some(&shop.sender), None, &[])
            .await;
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(res.header("content-type"), "application/x-ndjson");
        let lines: Vec<String> = res.text().lines().map(str::to_string).collect();
        let header: Value = serde_json::from_str(&lines[0]).unwrap();
        let size = checkpoint_size(&header);
        if header["subjects"] == subjects && size > newest {
            return lines;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn checkpoint_size(header: &Value) -> u64 {
    header["checkpoint"]
        .as_str()
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

/// `verify tenant` on `lines`: whether it passed, and what it printed; `csv` gets the subjects.
fn verify(app: &TestApp, lines: &[String], csv: Option<&std::path::Path>) -> (bool, String) {
    verify_with(app, lines, csv, &[])
}

/// The same with more arguments.
fn verify_with(
    app: &TestApp,
    lines: &[String],
    csv: Option<&std::path::Path>,
    args: &[&str],
) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenant.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let mut command = bin();
    command
        .args(["verify", "tenant"])
        .arg(&file)
        .args(["--vkey", &app.log.verifier_key()]);
    if let Some(csv) = csv {
        command.arg("--csv").arg(csv);
    }
    command.args(args);
    let out = command.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn a_whole_tenant_export_verifies_with_every_subject(db: TestDb) {
    let (app, shop, newest) = tenant_with_subjects(&db).await;
    let lines = export_of(&app, &shop, 5, newest).await;
    assert_eq!(lines.len(), 6, "a header and a line per subject");
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("subjects.csv");
    let (ok, out) = verify(&app, &lines, Some(&csv));
    assert!(ok, "{out}");
    assert!(out.contains("ok    subjects — 5 lines"), "{out}");
    assert!(
        out.contains("ok    complete: every subject of the tenant, none missing"),
        "{out}"
    );
    assert!(
        out.contains(": 5 subjects, its every one as of its checkpoint"),
        "{out}"
    );
    // The inspector's list: each address with its status per purpose, as the consent rules say.
    let table = std::fs::read_to_string(&csv).unwrap();
    assert!(
        table.starts_with("\"email\",\"key\",\"valid\",\"newsletter\",\"offers\""),
        "{table}"
    );
    for email in ADDRESSES {
        let row = table
            .lines()
            .find(|l| l.contains(email))
            .unwrap_or_else(|| panic!("{email}: {table}"));
        let refused = email == ADDRESSES[1];
        let status = if refused { "withdrawn" } else { "granted" };
        assert!(
            row.ends_with(&format!("\"true\",\"{status}\",\"{status}\"")),
            "{row}"
        );
    }
    app.stop().await;
}

async fn an_export_without_one_subject_fails_as_incomplete(db: TestDb) {
    let (app, shop, newest) = tenant_with_subjects(&db).await;
    let mut lines = export_of(&app, &shop, 5, newest).await;
    // The line of the address that refused, left out, as a dishonest operator would.
    let refused = lines
        .iter()
        .position(|l| l.contains(ADDRESSES[1]))
        .expect("the refusing subject's line");
    lines.remove(refused);
    let (ok, out) = verify(&app, &lines, None);
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAIL  complete: every subject of the tenant, none missing"),
        "{out}"
    );
    assert!(out.contains("verdict: INVALID"), "{out}");
    app.stop().await;
}

async fn an_export_that_hides_a_refusal_fails_as_incomplete(db: TestDb) {
    let (app, shop, newest) = tenant_with_subjects(&db).await;
    let mut lines = export_of(&app, &shop, 5, newest).await;
    // The refusal cut off the end of its subject's chain, the head set back to the opt-in: a
    // chain that holds on its own, and says the address may be mailed.
    let at = lines.iter().position(|l| l.contains(ADDRESSES[1])).unwrap();
    let mut line: Value = serde_json::from_str(&lines[at]).unwrap();
    let events = line["events"].as_array_mut().unwrap();
    assert_eq!(events.len(), 2, "{line}");
    events.pop();
    line["head"] = line["events"][0]["leaf_index"].clone();
    lines[at] = line.to_string();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("subjects.csv");
    let (ok, out) = verify(&app, &lines, Some(&csv));
    assert!(!ok, "{out}");
    assert!(
        out.contains("ok    subjects — 5 lines"),
        "each line holds alone: {out}"
    );
    assert!(
        out.contains("FAIL  complete: every subject of the tenant, none missing"),
        "{out}"
    );
    app.stop().await;
}

async fn an_export_resumes_at_its_checkpoint_after_the_log_moved_on(db: TestDb) {
    let (app, shop, newest) = tenant_with_subjects(&db).await;
    let whole = export_of(&app, &shop, 5, newest).await;
    let header: Value = serde_json::from_str(&whole[0]).unwrap();
    let size = checkpoint_size(&header);
    // The log moves on: a new subject, and a new event of every one.
    let mut newest = leaf_of(&opt_in(&app, &shop, "fumi@example.jp").await);
    for email in ADDRESSES {
        newest = leaf_of(&opt_in(&app, &shop, email).await);
    }
    export_of(&app, &shop, 6, newest).await;
    // Cut short after two subject lines: the rest, as of the same checkpoint.
    let after: Value = serde_json::from_str(&whole[2]).unwrap();
    let res = app
        .call(
            "GET",
            &format!(
                "/v1/evidence:tenant?size={size}&after={}",
                after["key"].as_str().unwrap()
            ),
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let rest: Vec<String> = res.text().lines().map(str::to_string).collect();
    assert_eq!(rest, whole[3..], "the same lines as the export had");
    let mut resumed = whole[..3].to_vec();
    resumed.extend(rest);
    let (ok, out) = verify(&app, &resumed, None);
    assert!(ok, "{out}");
    app.stop().await;
}

async fn a_resumption_needs_the_header_s_size_and_a_key(db: TestDb) {
    let (app, shop, _) = tenant_with_subjects(&db).await;
    let key = "00".repeat(32);
    for (query, says) in [
        (
            "size=3".to_string(),
            "size and after resume an export together",
        ),
        (
            format!("after={key}"),
            "size and after resume an export together",
        ),
        ("size=3&after=zz".to_string(), "64 hex digits"),
        (
            format!("size=1&after={key}"),
            "is not the checkpoint of an export",
        ),
        (
            format!("size=999999&after={key}"),
            "is not the checkpoint of an export",
        ),
    ] {
        let res = app
            .call(
                "GET",
                &format!("/v1/evidence:tenant?{query}"),
                Some(&shop.sender),
                None,
                &[],
            )
            .await;
        assert_eq!(res.status, 422, "{query}: {}", res.text());
        assert_eq!(res.header("content-type"), "application/problem+json");
        assert!(res.text().contains(says), "{query}: {}", res.text());
    }
    // A sender asks only for its own tenant.
    let res = app
        .call(
            "GET",
            "/v1/evidence:tenant?tenant=someone-else",
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.text());
    app.stop().await;
}

async fn an_export_of_another_tenant_than_asked_fails(db: TestDb) {
    let (app, shop, newest) = tenant_with_subjects(&db).await;
    let lines = export_of(&app, &shop, 5, newest).await;
    let (ok, out) = verify_with(&app, &lines, None, &["--tenant", &shop.tenant]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("verdict: VALID (tenant {}", shop.tenant)),
        "{out}"
    );
    let (ok, out) = verify_with(&app, &lines, None, &["--tenant", "acme-old"]);
    assert!(!ok, "{out}");
    assert!(out.contains("FAIL  tenant: the one asked about"), "{out}");
    app.stop().await;
}

async fn a_subject_shown_without_its_address_fails(db: TestDb) {
    let (app, shop, newest) = tenant_with_subjects(&db).await;
    // The operator clears the address of the one who refused, as if it had been erased.
    crate::common::tamper(
        &db,
        &format!(
            "UPDATE subjects SET address = NULL WHERE address = '{}'",
            ADDRESSES[1]
        ),
    );
    let lines = export_of(&app, &shop, 5, newest).await;
    let (ok, out) = verify(&app, &lines, None);
    assert!(!ok, "{out}");
    assert!(
        out.contains("opening — none, though the address was not erased"),
        "{out}"
    );
    app.stop().await;
}

async fn a_relabelled_history_is_exported_whole_and_a_leaf_after_it_fails(db: TestDb) {
    let email = "old@example.jp";
    let (shop, app, bundle, _) =
        crate::relabel::relabelled(&db, email, "old.other@example.jp").await;
    // Both addresses' salted commitments and labels.
    let newest = bundle["events"].as_array().unwrap().last().unwrap()["leaf_index"]
        .as_u64()
        .unwrap();
    let lines = export_of(&app, &shop, 4, newest).await;
    let (ok, out) = verify(&app, &lines, None);
    assert!(ok, "{out}");
    assert!(out.contains("2 subject(s) without an opening"), "{out}");

    // A leaf naming the salted commitment after its relabelling: a second history.
    let mut forged = crate::relabel::leaf(&bundle, 0);
    forged["event_id"] = json!("0191a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a5b");
    forged["prev"] = bundle["events"][1]["leaf_index"].clone();
    let index = app
        .log
        .append(vec![consent_ledger::log::Leaf::from_json(&forged).unwrap()])
        .await
        .unwrap()
        .start;
    let lines = export_of(&app, &shop, 4, index).await;
    let (ok, out) = verify(&app, &lines, None);
    assert!(!ok, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("FAIL")
                && l.contains("relabelling: the salted commitment is closed")),
        "{out}"
    );
    app.stop().await;
}

async fn an_export_of_more_subjects_than_a_page_verifies(db: TestDb) {
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    // More than one page of subjects (256), each page built in two halves on two threads.
    let body: String = (0..300)
        .map(|i| {
            format!(
                "{}\n",
                json!({"event": "opt_in", "email": format!("user{i}@example.jp"), "purposes": ["newsletter"],
                       "method": "paper", "received_by": {"role": "sender", "name": "Sakura Shop"},
                       "occurred_at": "2024-04-01T10:00:00+09:00"})
            )
        })
        .collect();
    let res = app
        .call_raw(
            "POST",
            "/v1/events:import?format=jsonl",
            Some(&shop.sender),
            "application/x-ndjson",
            body.as_bytes(),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let newest = res.json()["last_leaf_index"].as_u64().unwrap();
    let lines = export_of(&app, &shop, 300, newest).await;
    assert_eq!(lines.len(), 301);
    let (ok, out) = verify(&app, &lines, None);
    assert!(ok, "{out}");
    assert!(out.contains("ok    subjects — 300 lines"), "{out}");
    app.stop().await;
}
