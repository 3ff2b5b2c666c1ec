//! The evidence in the consent-record standards (`GET /v1/evidence?format=dpv|kantara`):
//! ISO/IEC TS 27560 records in DPV 2.x JSON-LD, one per event, with its status, legal basis and
//! notice; a Kantara Consent Receipt v1.1 of the consent in force, refused for a tenant without
//! the contacts it requires. `sdk/vectors/receipts.json` keeps a bundle with both renderings:
//! the TypeScript suite expands the DPV with a JSON-LD processor (every term a DPV 2.3 term) and
//! validates the Kantara receipt against the Kantara schema; here we check that they are what
//! the exports give (`CONSENT_LEDGER_WRITE_VECTORS=1` writes them anew).

use serde_json::{json, Value};

use consent_ledger::evidence::{receipt, Bundle};

use crate::common::{TestApp, TestDb};
use crate::on_both_backends;
use crate::report::history;
use crate::unsubscribe::shop;

on_both_backends!(the_history_in_dpv_and_kantara);

async fn get(app: &TestApp, token: &str, path: &str) -> crate::common::Answer {
    app.call("GET", path, Some(token), None, &[]).await
}

/// The type of each record, and the type of its consent status (or `-`).
fn shapes(dpv: &Value) -> Vec<(String, String)> {
    dpv["@graph"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["@type"].as_str().unwrap().to_string(),
                r["dpv:hasConsentStatus"]["@type"]
                    .as_str()
                    .unwrap_or("-")
                    .to_string(),
            )
        })
        .collect()
}

async fn the_history_in_dpv_and_kantara(db: TestDb) {
    let (app, bundle, _, shop) = history(&db).await;
    let token = shop.sender.clone();
    let email = bundle["subject"]["email"].as_str().unwrap();
    let dpv = get(
        &app,
        &token,
        &format!("/v1/evidence?email={email}&format=dpv"),
    )
    .await;
    assert_eq!(dpv.status, 200, "{}", dpv.text());
    let dpv = dpv.json();
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        shapes(&dpv),
        vec![
            s("dpv:ConsentRecord", "dpv:ConsentRequested"),
            s("dpv:ConsentRecord", "dpv:ConsentGiven"),
            // A business card is no consent: a record on the article it rests on.
            s("dpv:DataProcessingRecord", "-"),
            s("dpv:ConsentRecord", "dpv:ConsentWithdrawn"),
            // The opt-in the refusal binds is not consent given.
            s(
                "dpv:DataProcessingRecord",
                "dpv:ConsentStatusInvalidForProcessing"
            ),
            s("dpv:ConsentRecord", "dpv:ConsentGiven"),
        ]
    );
    let records = dpv["@graph"].as_array().unwrap();
    assert_eq!(
        records[2]["dpv:hasLegalBasis"]["@id"],
        "urn:consent-ledger:law:jp:act-2002-26:art-3-1-ii"
    );
    // `all` is not a purpose: the refusal lists the tenant's.
    let refused: Vec<&Value> = records[3]["dpv:hasPurpose"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["dpv:hasIdentifier"])
        .collect();
    assert_eq!(refused, vec!["newsletter", "offers"]);
    assert!(records[0]["dpv:hasNotice"]["@id"]
        .as_str()
        .unwrap()
        .starts_with("ni:///sha-256;"));
    assert_eq!(
        records[0]["dpv:hasResponsibleEntity"]["dpv:hasName"],
        "さくら配信株式会社"
    );

    let kantara = get(
        &app,
        &token,
        &format!("/v1/evidence?email={email}&format=kantara"),
    )
    .await;
    assert_eq!(kantara.status, 200, "{}", kantara.text());
    let kantara = kantara.json();
    let purposes = kantara["services"][0]["purposes"].as_array().unwrap();
    // Only the consent in force: the newsletter, from the paper form (offers were refused).
    assert_eq!(purposes.len(), 1, "{kantara}");
    assert_eq!(purposes[0]["consentType"], "EXPLICIT");
    assert_eq!(kantara["collectionMethod"], "paper");
    assert_eq!(kantara["piiControllers"][0]["phone"], "03-1234-5678");
    assert_eq!(kantara["policyUrl"], "https://shop.example.jp/privacy");
    app.stop().await;

    if db.url.starts_with("sqlite")
        && std::env::var("CONSENT_LEDGER_WRITE_VECTORS").as_deref() == Ok("1")
    {
        let file =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk/vectors/receipts.json");
        let vectors = json!({
            "about": "An evidence bundle and its renderings as ISO/IEC TS 27560 records in DPV 2.x JSON-LD and as a Kantara Consent Receipt v1.1 (GET /v1/evidence?format=dpv|kantara); written by tests/it/receipts.rs",
            "bundle": bundle, "dpv": dpv, "kantara": kantara,
        });
        std::fs::write(file, serde_json::to_string_pretty(&vectors).unwrap() + "\n").unwrap();
    }
}

#[test]
fn the_receipt_vectors_are_what_the_exports_give() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk/vectors/receipts.json");
    let vectors: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let bundle: Bundle = serde_json::from_value(vectors["bundle"].clone()).unwrap();
    assert_eq!(receipt::dpv(&bundle).unwrap(), vectors["dpv"]);
    assert_eq!(receipt::kantara(&bundle).unwrap(), vectors["kantara"]);
}

#[actix_web::test]
async fn a_kantara_receipt_is_refused_without_the_controller_s_contacts() {
    let db = TestDb::sqlite();
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    let email = "taro@example.jp";
    crate::unsubscribe::opt_in(&app, &shop, email).await;
    let res = get(
        &app,
        &shop.sender,
        &format!("/v1/evidence?email={email}&format=kantara"),
    )
    .await;
    assert_eq!(res.status, 409, "{}", res.text());
    let detail = res.json()["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("phone, privacy_policy_url"), "{detail}");
    assert!(detail.contains("PATCH /v1/tenants/"), "{detail}");
    app.stop().await;
}
