//! The golden vectors both SDKs read (`sdk/vectors/`): real leaves recorded by this server, with
//! the decisions it gave for them, and real bundles (valid, tampered, and with leaves that are
//! not canonical JSON) with the Rust verifier's verdict. On every run, on both databases, the
//! server's own answers must equal the one set of rules replayed over its own leaves; with
//! `CONSENT_LEDGER_WRITE_VECTORS=1` (on SQLite) the files are written anew, and then the Rust
//! SDK's unit tests and the TypeScript suite check their rules and verifiers against them
//! without a server.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use consent_ledger::evidence::verify::{
    decisions_from_leaves, tlog_proof, verify, verify_campaign, verify_decision,
};
use consent_ledger_sdk::consent::ConsentLeaf;
use serde_json::{json, Value};

use crate::campaigns::{record_check, served_proof};
use crate::common::{tamper, wait_for_checkpoint, TestApp, TestDb};
use crate::evidence::evidence;
use crate::on_both_backends;
use crate::unsubscribe::{shop, Shop};

on_both_backends!(the_golden_vectors_are_the_servers_own_answers);

const PURPOSES: [&str; 2] = ["newsletter", "offers"];

/// A step: an event request body (address filled in), or a click on the confirmation link of
/// the n-th step's answer.
enum Step {
    Event(Value),
    ConfirmLinkOf(usize),
    /// The address erased (`DELETE /v1/subjects`).
    Erase,
}

fn ev(event: &str, purposes: Value, extra: Value) -> Step {
    let mut body = json!({"event": event, "purposes": purposes, "method": "web_form",
                          "received_by": {"role": "sender", "name": "Sakura Shop"}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    Step::Event(body)
}

/// Every rule, one case each.
fn cases() -> Vec<(&'static str, Vec<Step>)> {
    let both = || json!(["newsletter", "offers"]);
    let news = || json!(["newsletter"]);
    let none = || json!({});
    vec![
        ("an opt-in grants", vec![ev("opt_in", both(), none())]),
        (
            "an opt-out of all withdraws every purpose",
            vec![
                ev("opt_in", both(), none()),
                ev("opt_out", json!("all"), none()),
            ],
        ),
        (
            "an opt-out of one purpose leaves the others",
            vec![ev("opt_in", both(), none()), ev("opt_out", news(), none())],
        ),
        (
            "an exception basis does not lift a refusal",
            vec![
                ev("opt_out", json!("all"), none()),
                ev(
                    "opt_in",
                    news(),
                    json!({"basis": "business_relationship", "evidence": {"transaction_reference": "order 1234", "transaction_date": "2017-12-01"}}),
                ),
            ],
        ),
        (
            "fresh consent claimed after a refusal lifts it",
            vec![
                ev(
                    "opt_out",
                    json!("all"),
                    json!({"occurred_at": "2026-01-01T00:00:00Z"}),
                ),
                ev(
                    "opt_in",
                    news(),
                    json!({"occurred_at": "2026-02-01T00:00:00.250Z"}),
                ),
            ],
        ),
        (
            "consent claimed before a refusal does not lift it",
            vec![
                ev(
                    "opt_out",
                    news(),
                    json!({"occurred_at": "2026-03-01T00:00:00Z"}),
                ),
                ev(
                    "opt_in",
                    news(),
                    json!({"occurred_at": "2026-02-01T00:00:00Z"}),
                ),
            ],
        ),
        (
            "a double opt-in is pending until confirmed",
            vec![ev("opt_in", both(), json!({"confirmation_required": true}))],
        ),
        (
            "a confirmation grants what is pending",
            vec![
                ev("opt_in", both(), json!({"confirmation_required": true})),
                ev("confirm", json!("all"), none()),
            ],
        ),
        (
            "an unconfirmed opt-in does not take back a grant",
            vec![
                ev("opt_in", news(), none()),
                ev("opt_in", both(), json!({"confirmation_required": true})),
            ],
        ),
        (
            "a confirmation link confirms its own opt-in only",
            vec![
                ev("opt_in", news(), json!({"confirmation_required": true})),
                ev(
                    "opt_in",
                    json!(["offers"]),
                    json!({"confirmation_required": true}),
                ),
                Step::ConfirmLinkOf(0),
            ],
        ),
        (
            "after a refusal of all, fresh consent grants its purposes only",
            vec![
                ev("opt_in", both(), none()),
                ev("opt_out", json!("all"), none()),
                ev("opt_in", news(), none()),
            ],
        ),
    ]
}

async fn run(app: &TestApp, shop: &Shop, email: &str, steps: &[Step]) {
    let mut answers: Vec<Value> = Vec::new();
    for step in steps {
        let answer = match step {
            Step::Event(body) => {
                let mut body = body.clone();
                body["email"] = json!(email);
                let res = app
                    .call("POST", "/v1/events", Some(&shop.sender), Some(&body), &[])
                    .await;
                assert_eq!(res.status, 201, "{}", res.text());
                res.json()
            }
            Step::Erase => {
                let path = format!("/v1/subjects?email={email}");
                let res = app
                    .call("DELETE", &path, Some(&shop.sender), None, &[])
                    .await;
                assert_eq!(res.status, 200, "{}", res.text());
                res.json()
            }
            Step::ConfirmLinkOf(n) => {
                let url = answers[*n]["confirmation_url"].as_str().unwrap();
                let path = &url[url.find("/confirm/").unwrap()..];
                let res = app.call("POST", path, None, None, &[]).await;
                assert_eq!(res.status, 200, "{}", res.text());
                Value::Null
            }
        };
        answers.push(answer);
    }
}

/// The bundle's event leaves, parsed.
fn leaves(bundle: &Value) -> Vec<(u64, ConsentLeaf)> {
    bundle["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let bytes = B64.decode(e["leaf"].as_str().unwrap()).unwrap();
            (
                e["leaf_index"].as_u64().unwrap(),
                ConsentLeaf::parse(&bytes).unwrap(),
            )
        })
        .collect()
}

fn verdict(bundle: &Value, vkey: &str) -> Value {
    let report = verify(&serde_json::to_vec(bundle).unwrap(), vkey, None, None);
    json!({"passed": report.passed(), "failed": report.failed()})
}

/// A change made to a copy of a served document.
type Tamper = fn(&mut Value);

/// One copy of `doc` per named change.
fn copies<const N: usize>(
    doc: &Value,
    changes: [(&'static str, Tamper); N],
) -> Vec<(&'static str, Value)> {
    changes
        .into_iter()
        .map(|(name, change)| {
            let mut copy = doc.clone();
            change(&mut copy);
            (name, copy)
        })
        .collect()
}

/// Copies of a proven decision: as served, and with its answer or its proof altered.
fn decision_cases(answer: &Value) -> Vec<(&'static str, Value)> {
    let cases: [(&str, Tamper); 6] = [
        ("as served", |_| {}),
        ("the answer says may_send true", |d| {
            d["decision"]["may_send"] = json!(true);
            d["decision"]["status"] = json!("granted");
        }),
        ("the answer names another deciding event", |d| {
            d["decision"]["event_id"] = json!("evt_another")
        }),
        (
            "the answer is for a purpose the proof does not decide",
            |d| d["decision"]["purpose"] = json!("surveys"),
        ),
        ("the proof's event altered", |d| {
            let leaf = d["proof"]["events"][0]["leaf"]
                .as_str()
                .unwrap()
                .to_string();
            d["proof"]["events"][0]["leaf"] = json!(flip(&leaf));
        }),
        ("another format", |d| {
            d["format"] = json!("consent-ledger/evidence/v1")
        }),
    ];
    copies(answer, cases)
}

/// Copies of a campaign entry's proof: as served, and with each part altered.
fn campaign_cases(proof: &Value) -> Vec<(&'static str, Value)> {
    let cases: [(&str, Tamper); 10] = [
        ("as served", |_| {}),
        ("a negative entry index", |d| {
            d["entry"]["index"] = json!(-4)
        }),
        ("the campaign's leaf index as a string", |d| {
            d["campaign"]["leaf_index"] = json!(d["campaign"]["leaf_index"].to_string())
        }),
        ("the campaign's leaf index with a fraction", |d| {
            d["campaign"]["leaf_index"] = json!(0.5)
        }),
        ("a bundle without its tenant", |d| {
            d["proof"].as_object_mut().unwrap().remove("tenant");
        }),
        ("the entry's status altered", |d| {
            let mut entry = B64.decode(d["entry"]["entry"].as_str().unwrap()).unwrap();
            entry[32] = 2;
            d["entry"]["entry"] = json!(B64.encode(entry));
        }),
        ("the entry's position altered", |d| {
            d["entry"]["index"] = json!(d["entry"]["index"].as_u64().unwrap() ^ 1)
        }),
        ("the campaign leaf altered", |d| {
            let leaf = d["campaign"]["leaf"].as_str().unwrap().to_string();
            d["campaign"]["leaf"] = json!(flip(&leaf));
        }),
        ("the bundle's event altered", |d| {
            let leaf = d["proof"]["events"][0]["leaf"]
                .as_str()
                .unwrap()
                .to_string();
            d["proof"]["events"][0]["leaf"] = json!(flip(&leaf));
        }),
        ("another format", |d| {
            d["format"] = json!("consent-ledger/decision/v1")
        }),
    ];
    copies(proof, cases)
}

/// A campaign check of `emails` (recorded) and the proof of `email`'s entry in it.
async fn campaign_proof(app: &TestApp, shop: &Shop, emails: &[&str], email: &str) -> Value {
    let answer = record_check(app, &shop.sender, "offers", emails).await;
    let id = answer["campaign_check"]["id"].as_str().unwrap();
    served_proof(app, &shop.sender, id, email).await
}

/// The golden cases of `documents` (the first as served, passing; the others failing), each
/// under `member` with `verifier`'s verdict.
fn verdicts(
    documents: Vec<(&'static str, Value)>,
    member: &str,
    verifier: impl Fn(&[u8]) -> consent_ledger::evidence::verify::Report,
) -> Vec<Value> {
    let cases: Vec<Value> = documents
        .into_iter()
        .map(|(name, d)| {
            let report = verifier(&serde_json::to_vec(&d).unwrap());
            let verdict = json!({"passed": report.passed(), "failed": report.failed()});
            json!({"name": name, member: d, "verdict": verdict})
        })
        .collect();
    assert_eq!(cases[0]["verdict"]["passed"], json!(true), "{}", cases[0]);
    for case in &cases[1..] {
        assert_eq!(case["verdict"]["passed"], json!(false), "{}", case["name"]);
    }
    cases
}

fn flip(b64: &str) -> String {
    let mut bytes = B64.decode(b64).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    B64.encode(bytes)
}

/// Tampered copies of a valid bundle, one per kind of tampering.
fn tampered(bundle: &Value) -> Vec<(&'static str, Value)> {
    let kinds: [(&str, Tamper); 20] = [
        ("the template's retirement left out", |b| {
            b["collection_points"][0]
                .as_object_mut()
                .unwrap()
                .remove("retired");
        }),
        // 2^53: beyond what every JSON reader reads exactly (RFC 7493), yet printed alike.
        ("a leaf index beyond 2^53 − 1", |b| {
            b["events"][1]["leaf_index"] = json!(1u64 << 53)
        }),
        ("a leaf byte", |b| {
            b["events"][1]["leaf"] = json!(flip(b["events"][1]["leaf"].as_str().unwrap()))
        }),
        ("a proof step", |b| {
            let step = b["events"][0]["inclusion_proof"][0]
                .as_str()
                .unwrap()
                .to_string();
            b["events"][0]["inclusion_proof"][0] = json!(flip(&step))
        }),
        ("the VRF proof", |b| {
            b["subject"]["vrf_proof"] = json!(flip(b["subject"]["vrf_proof"].as_str().unwrap()))
        }),
        ("the address", |b| {
            b["subject"]["email"] = json!("other@example.jp")
        }),
        ("the template", |b| {
            let c = b["collection_points"][0]["content"]
                .as_str()
                .unwrap()
                .to_string();
            b["collection_points"][0]["content"] = json!(flip(&c))
        }),
        ("the template left out", |b| {
            b["collection_points"] = json!([])
        }),
        ("a decision", |b| {
            for d in b["decisions"].as_array_mut().unwrap() {
                d["may_send"] = json!(!d["may_send"].as_bool().unwrap());
            }
        }),
        ("a middle event hidden", |b| {
            b["events"].as_array_mut().unwrap().remove(1);
        }),
        ("the newest event hidden", |b| {
            b["events"].as_array_mut().unwrap().pop();
        }),
        ("the map bucket", |b| {
            let e = b["completeness"]["bucket_entries"]
                .as_str()
                .unwrap()
                .to_string();
            b["completeness"]["bucket_entries"] = json!(flip(&e))
        }),
        ("the map leaf", |b| {
            let l = b["completeness"]["map_leaf"]["leaf"]
                .as_str()
                .unwrap()
                .to_string();
            b["completeness"]["map_leaf"]["leaf"] = json!(flip(&l))
        }),
        ("the tlog-proof text", |b| {
            b["events"][0]["tlog_proof"] = json!("c2sp.org/tlog-proof@v1\nindex 0\n\nx")
        }),
        ("the parameters left out", |b| b["parameters"] = Value::Null),
        ("the evidence", |b| {
            b["subject"]["evidence"][0]["evidence"]["ip"] = json!("198.51.100.1")
        }),
        ("the evidence given twice", |b| {
            let first = b["subject"]["evidence"][0].clone();
            b["subject"]["evidence"].as_array_mut().unwrap().push(first)
        }),
        ("the salt", |b| {
            b["subject"]["salt"] = json!(flip(b["subject"]["salt"].as_str().unwrap()))
        }),
        ("the parameters leaf left out", |b| {
            b["parameters"]["leaf"] = Value::Null
        }),
        ("the parameters bucket", |b| {
            let e = b["parameters"]["bucket_entries"]
                .as_str()
                .unwrap()
                .to_string();
            b["parameters"]["bucket_entries"] = json!(flip(&e))
        }),
    ];
    copies(bundle, kinds)
}

/// Leaves the log holds that are not canonical JSON (appended raw, as a dishonest log could),
/// each put in a bundle in place of its first event with a real proof: both verifiers must
/// refuse them alike.
async fn uncanonical(app: &TestApp, bundle: &Value) -> Vec<(&'static str, Value)> {
    let first = B64
        .decode(bundle["events"][0]["leaf"].as_str().unwrap())
        .unwrap();
    let text = String::from_utf8(first).unwrap();
    let variants: [(&str, String); 4] = [
        (
            "a duplicate member",
            text.replacen("{", "{\"event\":\"opt_out\",", 1),
        ),
        (
            "a number with a fraction",
            text.replacen("\"prev\":null", "\"prev\":1.0", 1),
        ),
        ("CRLF and spaces", text.replace(",", ",\r\n  ")),
        (
            "an unknown member",
            text.replacen("{", "{\"aa_granted\":true,", 1),
        ),
    ];
    let mut indexes = Vec::new();
    for (_, bytes) in &variants {
        let leaf = consent_ledger::log::Leaf::from_stored(bytes.as_bytes().to_vec());
        indexes.push(app.log.append(vec![leaf]).await.unwrap().start);
    }
    let cp = wait_for_checkpoint(&app.log, indexes.last().unwrap() + 2).await;
    let mut out = Vec::new();
    for ((name, bytes), index) in variants.into_iter().zip(indexes) {
        let path = app.log.inclusion_proof(index, cp.size).unwrap();
        let mut b = bundle.clone();
        b["checkpoint"] = json!(cp.note);
        b["events"][0] = json!({
            "leaf_index": index,
            "leaf": B64.encode(bytes.as_bytes()),
            "leaf_hash": B64.encode(consent_ledger::log::hash::leaf_hash(bytes.as_bytes())),
            "inclusion_proof": path.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
            "tlog_proof": tlog_proof(index, &path, &cp.note),
        });
        out.push((name, b));
    }
    out
}

async fn the_golden_vectors_are_the_servers_own_answers(db: TestDb) {
    let shop = shop(&db, true);
    // An address that opted out forty days ago (by the log's clock), was erased, and came back
    // with an exception-basis opt-in that its refusal still binds.
    let app = TestApp::start_with_clock(&db, -40).await;
    let erased = "erased@example.jp";
    let before = [
        ev(
            "opt_in",
            json!(["newsletter"]),
            json!({"evidence": {"ip": "203.0.113.9"}}),
        ),
        ev("opt_out", json!("all"), json!({})),
    ];
    run(&app, &shop, erased, &before).await;
    let app = app.restart_with_clock(&db, 0).await;
    let after = [
        Step::Erase,
        ev(
            "opt_in",
            json!(["newsletter"]),
            json!({"basis": "business_relationship", "evidence": {"transaction_reference": "order 1234", "transaction_date": "2017-12-01"}}),
        ),
    ];
    run(&app, &shop, erased, &after).await;
    let through_erasure = evidence(&app, &shop.sender, erased).await;
    let vkey = app.log.verifier_key();
    let purposes: Vec<String> = PURPOSES.iter().map(|p| p.to_string()).collect();
    let mut rules = Vec::new();
    for (n, (name, steps)) in cases().iter().enumerate() {
        let email = format!("case{n}@example.jp");
        run(&app, &shop, &email, steps).await;
        let bundle = evidence(&app, &shop.sender, &email).await;
        let leaves = leaves(&bundle);
        let mut served = Vec::new();
        for purpose in PURPOSES {
            let res = app
                .call(
                    "GET",
                    &format!("/v1/consent?email={email}&purpose={purpose}"),
                    Some(&shop.sender),
                    None,
                    &[],
                )
                .await;
            let d = res.json();
            served.push(json!({"purpose": purpose, "may_send": d["may_send"],
                               "status": d["status"], "event_id": d["event_id"]}));
        }
        // The rows the server answers from are the rules applied to its own leaves.
        let replayed = serde_json::to_value(decisions_from_leaves(&leaves, &purposes)).unwrap();
        assert_eq!(json!(served), replayed, "{name}");
        let documents: Vec<Value> = leaves
            .iter()
            .map(|(i, leaf)| json!({"leaf_index": i, "leaf": leaf}))
            .collect();
        rules.push(json!({"name": name, "events": documents, "decisions": served}));
    }

    // A bundle with a template, three events and a decision per purpose.
    let form = json!({"name": "signup", "channel": "web_form", "content_type": "text/plain; charset=utf-8",
                      "content": "Send me the newsletter", "sender_name_shown": "Sakura Shop",
                      "prechecked": false, "language": "ja"});
    let cp = app
        .call(
            "POST",
            "/v1/collection-points",
            Some(&shop.sender),
            Some(&form),
            &[],
        )
        .await;
    assert_eq!(cp.status, 201, "{}", cp.text());
    let email = "bundle@example.jp";
    let steps = [
        ev(
            "opt_in",
            json!(["newsletter", "offers"]),
            json!({"collection_point": cp.json()["id"],
                   "evidence": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "note": "店頭で受領"}}),
        ),
        ev("opt_out", json!(["offers"]), json!({})),
        ev(
            "opt_in",
            json!(["offers"]),
            json!({"basis": "business_relationship", "evidence": {"transaction_reference": "order 1234", "transaction_date": "2017-12-01"}}),
        ),
    ];
    run(&app, &shop, email, &steps).await;
    // The screen's period of use ends once its consents are given: the bundle proves its end.
    let retire = format!(
        "/v1/collection-points/{}/retire",
        cp.json()["id"].as_str().unwrap()
    );
    let retired = app
        .call("POST", &retire, Some(&shop.sender), Some(&json!({})), &[])
        .await;
    assert_eq!(retired.status, 200, "{}", retired.text());
    // A bundle is as of the latest checkpoint, which must hold the retirement (and its map).
    let retired_at = retired.json()["retired_leaf_index"].as_u64().unwrap();
    crate::common::wait_for_checkpoint(&app.log, retired_at + 2).await;
    let valid = evidence(&app, &shop.sender, email).await;
    let answer = app
        .call(
            "GET",
            &format!("/v1/consent?email={email}&purpose=offers&proof=true"),
            Some(&shop.sender),
            None,
            &[],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let decisions = verdicts(decision_cases(&answer.json()), "answer", |d| {
        verify_decision(d, &vkey, None, None)
    });
    let emails = [
        email,
        "case0@example.jp",
        "case1@example.jp",
        "nobody@example.jp",
    ];
    let mut proofs = campaign_cases(&campaign_proof(&app, &shop, &emails, email).await);
    // An operator that edited the rows a campaign was answered from (offers granted again).
    tamper(
        &db,
        "UPDATE consent_state SET status = 'granted' WHERE status = 'withdrawn'",
    );
    proofs.push((
        "answered from edited rows",
        campaign_proof(&app, &shop, &emails, "case1@example.jp").await,
    ));
    let campaigns = verdicts(proofs, "proof", |d| verify_campaign(d, &vkey, None, None));
    // An address NTT docomo issued before 2009 (two dots in a row): both verifiers must take
    // its label over exactly these dots.
    let legacy = "taro..hanako@docomo.ne.jp";
    run(
        &app,
        &shop,
        legacy,
        &[ev("opt_in", json!(["newsletter"]), json!({}))],
    )
    .await;
    let legacy = evidence(&app, &shop.sender, legacy).await;
    // Records imported from a paper file of 2018: their leaves keep the method and say
    // `imported`; the retention clock runs from their own times, so the address is erased at
    // once, and comes back.
    let imported = "imported@example.jp";
    let lines = [
        json!({"event": "opt_in", "email": imported, "purposes": ["newsletter"], "method": "paper",
               "occurred_at": "2018-01-01T00:00:00Z", "received_by": {"role": "sender", "name": "Sakura Shop"}}),
        json!({"event": "opt_out", "email": imported, "purposes": "all", "method": "phone",
               "occurred_at": "2018-02-01T00:00:00Z", "received_by": {"role": "sender", "name": "Sakura Shop"}}),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let res = app
        .call_raw_with(
            "POST",
            "/v1/events:import?format=jsonl",
            Some(&shop.sender),
            "application/x-ndjson",
            body.as_bytes(),
            &[],
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    run(
        &app,
        &shop,
        imported,
        &[Step::Erase, ev("opt_in", json!(["newsletter"]), json!({}))],
    )
    .await;
    let imported = evidence(&app, &shop.sender, imported).await;
    let mut without_erasure = through_erasure.clone();
    without_erasure["events"].as_array_mut().unwrap().remove(2);
    let mut bundles = vec![
        ("valid".to_string(), valid.clone()),
        ("valid: through an erasure".to_string(), through_erasure),
        ("valid: a docomo legacy address".to_string(), legacy),
        ("valid: imported, erased and back".to_string(), imported),
        (
            "tampered: the erasure left out".to_string(),
            without_erasure,
        ),
    ];
    bundles.extend(
        tampered(&valid)
            .into_iter()
            .map(|(n, b)| (format!("tampered: {n}"), b)),
    );
    bundles.extend(
        uncanonical(&app, &valid)
            .await
            .into_iter()
            .map(|(n, b)| (format!("not canonical: {n}"), b)),
    );
    let cases: Vec<Value> = bundles
        .iter()
        .map(|(name, b)| json!({"name": name, "bundle": b, "verdict": verdict(b, &vkey)}))
        .collect();
    assert_eq!(cases[0]["verdict"]["passed"], json!(true), "{}", cases[0]);
    assert_eq!(cases[1]["verdict"]["passed"], json!(true), "{}", cases[1]);
    assert_eq!(cases[2]["verdict"]["passed"], json!(true), "{}", cases[2]);
    assert_eq!(cases[3]["verdict"]["passed"], json!(true), "{}", cases[3]);
    for case in &cases[4..] {
        assert_eq!(case["verdict"]["passed"], json!(false), "{}", case["name"]);
    }
    app.stop().await;

    let write = std::env::var("CONSENT_LEDGER_WRITE_VECTORS").as_deref() == Ok("1");
    if write && db.url.starts_with("sqlite") {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk/vectors");
        std::fs::create_dir_all(&dir).unwrap();
        let pretty = |v: Value| serde_json::to_string_pretty(&v).unwrap() + "\n";
        std::fs::write(
            dir.join("consent-rules.json"),
            pretty(json!({"about": "Recorded consent_event leaves of one address each, in log order, and the decisions the server gave for them; written by tests/it/vectors.rs", "cases": rules})),
        )
        .unwrap();
        std::fs::write(
            dir.join("bundles.json"),
            pretty(json!({"about": "Evidence bundles from a real log, valid and tampered, with the Rust verifier's verdict (passed, and the names of the failed items); written by tests/it/vectors.rs", "vkey": vkey, "cases": cases})),
        )
        .unwrap();
        std::fs::write(
            dir.join("campaigns.json"),
            pretty(json!({"about": "Proofs of an address's entry in a recorded campaign check (GET /v1/campaign-checks/{id}/proof) from a real log, as served, altered, and answered from edited rows, with the Rust verifier's verdict; written by tests/it/vectors.rs", "vkey": vkey, "cases": campaigns})),
        )
        .unwrap();
        std::fs::write(
            dir.join("decisions.json"),
            pretty(json!({"about": "A send decision with its proof (GET /v1/consent?proof=true) from a real log, as served and altered, with the Rust verifier's verdict; written by tests/it/vectors.rs", "vkey": vkey, "cases": decisions})),
        )
        .unwrap();
    }
}
