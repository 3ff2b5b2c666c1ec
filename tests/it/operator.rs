//! A dishonest operator, with write access to its own database, tries to hide an opt-out by
//! making the address's chain skip it (`docs/threat-model.md`): the sequencer takes `prev` from
//! the log, not from the edited row, so the bundle fails; a server started on the edited rows
//! refuses to run; and a log that does write a skipping `prev` (as a patched server would) is
//! caught by the auditor. On SQLite and PostgreSQL.

use consent_ledger::evidence::verify::verify;
use serde_json::{json, Value};

use crate::common::{audit_map, tamper, wait_for_checkpoint, TestApp, TestDb};
use crate::evidence::evidence;
use crate::on_both_backends;
use crate::unsubscribe::{shop, Shop};

on_both_backends!(
    a_chain_skip_edited_into_the_rows_does_not_hide_the_opt_out,
    a_server_refuses_to_start_on_rows_the_log_contradicts,
    a_server_refuses_to_start_on_a_map_leaf_edited_to_match,
    the_audit_catches_an_event_whose_prev_skips_an_opt_out,
    a_server_refuses_to_start_on_a_subject_moved_to_another_tenant,
    the_audit_catches_a_misstated_tenants_root,
    the_audit_catches_a_map_leaf_that_drops_the_tenants_root,
    a_deleted_subject_row_is_not_made_anew_by_the_writer
);

async fn record(app: &TestApp, shop: &Shop, event: &str, email: &str) -> Value {
    let res = app
        .call(
            "POST",
            "/v1/events",
            Some(&shop.sender),
            Some(&json!({"event": event, "email": email, "purposes": ["newsletter"],
                         "method": "web_form", "received_by": {"role": "sender", "name": "Sakura Shop"}})),
            &[],
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()
}

/// An opt-in then an opt-out of `email`, both checkpointed; (opt-in, opt-out) answers.
async fn opt_in_then_out(app: &TestApp, shop: &Shop, email: &str) -> (Value, Value) {
    let first = record(app, shop, "opt_in", email).await;
    let second = record(app, shop, "opt_out", email).await;
    wait_for_checkpoint(&app.log, second["leaf_index"].as_u64().unwrap() + 2).await;
    (first, second)
}

/// The SQL that hides an opt-out from the rows: the subject's head set back to the opt-in, the
/// opt-out's event and state rows deleted.
fn hide(opt_in: &Value, opt_out: &Value) -> String {
    format!(
        "UPDATE subjects SET last_leaf_index = {} WHERE id = (SELECT subject_id FROM events WHERE id = '{id}');
         DELETE FROM consent_state WHERE event_id = '{id}';
         DELETE FROM webhook_deliveries WHERE event_id = '{id}';
         DELETE FROM events WHERE id = '{id}';",
        opt_in["leaf_index"],
        id = opt_out["event_id"].as_str().unwrap()
    )
}

/// Tried through SQL while the server runs, then one more event recorded: it still names the
/// opt-out as its `prev` (the log's head, not the row's), and the bundle follows the chain as
/// the log links it, not the rows, so it still shows the opt-out, complete and valid.
async fn a_chain_skip_edited_into_the_rows_does_not_hide_the_opt_out(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let email = "skip@example.jp";
    let (opt_in, opt_out) = opt_in_then_out(&app, &shop, email).await;
    tamper(&db, &hide(&opt_in, &opt_out));
    let next = record(&app, &shop, "opt_in", email).await;
    assert_eq!(next["prev_leaf_index"], opt_out["leaf_index"], "{next}");
    wait_for_checkpoint(&app.log, next["leaf_index"].as_u64().unwrap() + 2).await;

    let bundle = evidence(&app, &shop.sender, email).await;
    assert_eq!(
        crate::evidence::leaf_indexes(&bundle),
        [
            opt_in["leaf_index"].clone(),
            opt_out["leaf_index"].clone(),
            next["leaf_index"].clone()
        ],
        "{bundle}"
    );
    let report = verify(
        &serde_json::to_vec(&bundle).unwrap(),
        &app.log.verifier_key(),
        None,
        None,
    );
    assert!(report.passed(), "{:?}", report.items);
    app.stop().await;
}

/// Tried while the server is stopped: at start the rows' heads must hash to the signed subject
/// map, and they do not, so the server refuses to run and says why.
async fn a_server_refuses_to_start_on_rows_the_log_contradicts(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let (opt_in, opt_out) = opt_in_then_out(&app, &shop, "stopped@example.jp").await;
    app.stop().await;
    tamper(&db, &hide(&opt_in, &opt_out));
    let err = match consent_ledger::api::AppState::open(&db.config()) {
        Ok(_) => panic!("the server opened on rows the log contradicts"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("does not match the map leaf"),
        "the refusal should say why: {err}"
    );
}

/// The stopped operator goes further and also rewrites the stored map leaf, so that the rows'
/// heads would hash to it: the map leaf is checked against the signed checkpoint first (its
/// inclusion through the tiles in the signed root), so the server still refuses.
async fn a_server_refuses_to_start_on_a_map_leaf_edited_to_match(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let (opt_in, opt_out) = opt_in_then_out(&app, &shop, "maptoo@example.jp").await;
    let size = app.log.latest_checkpoint().unwrap().size;
    app.stop().await;
    let forged =
        consent_ledger::log::map::map_leaf_document(size - 1, &[7; 32], 1, &[0; 32]).to_string();
    tamper(
        &db,
        &format!(
            "{} UPDATE leaves SET data = '{forged}' WHERE leaf_index = {};",
            hide(&opt_in, &opt_out),
            size - 1
        ),
    );
    let err = match consent_ledger::api::AppState::open(&db.config()) {
        Ok(_) => panic!("the server opened on an edited map leaf"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&format!(
            "the stored leaf {} is not the one the checkpoint of size {size} signs",
            size - 1
        )),
        "{err}"
    );
}

/// What a patched server would write: an event of the address whose `prev` is the opt-in, not
/// the opt-out after it. Bundles built on it would pass; `monitor --audit-map` replays the chain
/// rule over every leaf, alarms naming the leaf, and exits 2.
async fn the_audit_catches_an_event_whose_prev_skips_an_opt_out(db: TestDb) {
    let shop = shop(&db, true);
    let app = TestApp::start(&db).await;
    let email = "patched@example.jp";
    let (opt_in, _) = opt_in_then_out(&app, &shop, email).await;
    let bundle = evidence(&app, &shop.sender, email).await;
    let subject = bundle["subject"]["commitment"].as_str().unwrap();
    let forged = consent_ledger::log::Leaf::from_json(&json!({
        "type": "consent_event", "v": 1, "tenant": shop.tenant, "event_id": "forged",
        "subject": subject, "event": "opt_in", "purposes": ["newsletter"], "basis": "consent",
        "method": "web_form", "collection_point": null,
        "received_by": {"role": "sender", "name": "Sakura Shop"},
        "occurred_at": "2026-12-01T00:00:00Z", "recorded_at": "2026-12-01T00:00:00Z",
        "prev": opt_in["leaf_index"], "confirmation_required": false, "evidence_sha256": null,
        "confirms": null
    }))
    .unwrap();
    let index = app.log.append(vec![forged]).await.unwrap().start;
    wait_for_checkpoint(&app.log, index + 2).await;

    let state = tempfile::tempdir().unwrap();
    let out = audit_map(&app.base, &app.log.verifier_key(), state.path()).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "leaf {index} names leaf {} as its subject's previous event",
            opt_in["leaf_index"]
        )),
        "{text}"
    );
    app.stop().await;
}

/// The stopped operator moves a subject's row to another tenant (so that a whole-tenant export
/// would leave it out): the tenants' maps rebuilt from the rows no longer hash to the directory
/// root the signed map leaf states, and the server refuses to start.
async fn a_server_refuses_to_start_on_a_subject_moved_to_another_tenant(db: TestDb) {
    let shop = shop(&db, true);
    let other = crate::unsubscribe::shop(&db, true);
    let app = TestApp::start(&db).await;
    record(&app, &shop, "opt_in", "moved@example.jp").await;
    record(&app, &shop, "opt_out", "moved@example.jp").await;
    app.stop().await;
    tamper(
        &db,
        &format!(
            "UPDATE subjects SET tenant_id = '{}' WHERE tenant_id = '{}';",
            other.tenant, shop.tenant
        ),
    );
    let err = match consent_ledger::api::AppState::open(&db.config()) {
        Ok(_) => panic!("the server opened on a subject moved to another tenant"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("the tenants' maps rebuilt from the database do not match the map leaf"),
        "{err}"
    );
}

/// A map leaf right about the subjects but wrong about the tenants' directory (what a log
/// hiding a tenant's subject from a whole-tenant proof would write): the map audit alarms.
async fn the_audit_catches_a_misstated_tenants_root(db: TestDb) {
    audit_a_next_map_leaf(&db, |doc| doc["tenants"] = json!("00".repeat(32))).await;
}

/// Leaving the directory out, once map leaves state it, alarms the same way.
async fn the_audit_catches_a_map_leaf_that_drops_the_tenants_root(db: TestDb) {
    audit_a_next_map_leaf(&db, |doc| {
        doc.as_object_mut().unwrap().remove("tenants");
    })
    .await;
}

/// Audits an honest log, appends its latest map leaf restated for the next position and
/// changed by `forge`, and expects the map audit to alarm on it.
async fn audit_a_next_map_leaf(db: &TestDb, forge: impl FnOnce(&mut Value)) {
    let shop = shop(db, true);
    let app = TestApp::start(db).await;
    let email = "whole@example.jp";
    record(&app, &shop, "opt_in", email).await;
    let bundle = evidence(&app, &shop.sender, email).await;
    let state = tempfile::tempdir().unwrap();
    let out = audit_map(&app.base, &app.log.verifier_key(), state.path()).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let map_leaf = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        bundle["completeness"]["map_leaf"]["leaf"].as_str().unwrap(),
    )
    .unwrap();
    let mut doc: Value = serde_json::from_slice(&map_leaf).unwrap();
    let size = app.log.latest_checkpoint().unwrap().size;
    doc["covers"] = json!(size);
    forge(&mut doc);
    let forged = consent_ledger::log::Leaf::from_json(&doc).unwrap();
    let index = app.log.append(vec![forged]).await.unwrap().start;
    assert_eq!(index, size, "the forged leaf sits where it says");
    wait_for_checkpoint(&app.log, index + 2).await;
    let out = audit_map(&app.base, &app.log.verifier_key(), state.path()).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!("subject map leaf at {index} does not match")),
        "{text}"
    );
    app.stop().await;
}

/// The writer records a known subject's new head by updating its row: a row that is gone (an
/// operator deleted it under a running batch) fails the batch, and is never made anew from the
/// batch's copy of it.
async fn a_deleted_subject_row_is_not_made_anew_by_the_writer(db: TestDb) {
    use consent_ledger::store::{LeafIndex, Store, StoreError};
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    record(&app, &shop, "opt_in", "kept@example.jp").await;
    let store = Store::connect(&db.url, 1).unwrap();
    let heads = [("deleted-subject".to_string(), LeafIndex(99))];
    let written = store.write(|r| Ok::<_, StoreError>(r.set_last_leaves(&heads)?));
    assert!(
        written.is_err(),
        "a head for a row that is gone is an error"
    );
    let made = store
        .read(|r| Ok::<_, StoreError>(r.subject("deleted-subject")?))
        .unwrap();
    assert!(made.is_none(), "and the row is not made anew");
    app.stop().await;
}
