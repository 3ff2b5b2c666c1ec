//! Witnesses (C2SP tlog-witness / tlog-cosignature / tlog-policy), end to end: two witnesses run
//! as `consent-ledger witness serve` processes, the log asks them to cosign its checkpoints and
//! serves the cosignatures, an evidence bundle carries a cosigned checkpoint, and `verify
//! evidence --policy` holds a bundle to a k-of-n quorum. On SQLite and PostgreSQL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use consent_ledger::api::AppState;
use serde_json::json;

use crate::common::{bin, reference, TestApp, TestDb};
use crate::evidence::{evidence, verify_cli};
use crate::on_both_backends;
use crate::unsubscribe::{opt_in, shop};

on_both_backends!(witnesses_cosign_and_verify_holds_bundles_to_a_quorum);

/// A witness process, killed when dropped.
struct WitnessProcess {
    child: Child,
    url: String,
    vkey: String,
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn new_key(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let key = dir.join(format!("{name}.key"));
    let out = bin()
        .args([
            "witness",
            "new-key",
            "--name",
            &format!("{name}.example.jp/witness"),
        ])
        .arg("--out")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        key,
        String::from_utf8(out.stdout).unwrap().trim().to_string(),
    )
}

fn start_witness(dir: &Path, name: &str, log_vkey: &str) -> WitnessProcess {
    let (key, vkey) = new_key(dir, name);
    let mut child = bin()
        .args(["witness", "serve", "--key"])
        .arg(&key)
        .args(["--log", log_vkey, "--listen", "127.0.0.1:0", "--state"])
        .arg(dir.join(format!("{name}-state")))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("the witness starts").unwrap();
        if let Some(url) = line.strip_prefix("witness listening on ") {
            break url.to_string();
        }
    };
    // Keep reading: a closed pipe would fail the witness's next line of output.
    std::thread::spawn(move || lines.for_each(drop));
    WitnessProcess { child, url, vkey }
}

async fn witnesses_cosign_and_verify_holds_bundles_to_a_quorum(db: TestDb) {
    let shop = shop(&db, true);
    let state = AppState::open(&db.config()).unwrap();
    let log_vkey = state.log.verifier_key();
    state.log.shutdown();
    let dir = tempfile::tempdir().unwrap();
    let w1 = start_witness(dir.path(), "w1", &log_vkey);
    let w2 = start_witness(dir.path(), "w2", &log_vkey);
    let (_, absent) = new_key(dir.path(), "w3");

    let mut config = db.config();
    config.witnesses = vec![
        format!("{} {}", w1.vkey, w1.url).parse().unwrap(),
        format!("{} {}", w2.vkey, w2.url).parse().unwrap(),
    ];
    let app = TestApp::start_with(config).await;
    let email = "yuki@example.jp";
    opt_in(&app, &shop, email).await;

    // The log serves its checkpoint with both witnesses' cosignatures.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let cp = app.get("/checkpoint").await.text();
        if cp.matches('\u{2014}').count() == 3 {
            assert!(cp.contains("w1.example.jp/witness") && cp.contains("w2.example.jp/witness"));
            break;
        }
        assert!(Instant::now() < deadline, "not cosigned in time: {cp}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }

    let bundle = evidence(&app, &shop.sender, email).await;
    let witnessed = bundle["witnessed"]["checkpoint"].as_str().unwrap();
    // The history serves the cosignatures too.
    let size = consent_ledger_sdk::note::Checkpoint::parse(witnessed.split("\n\n").next().unwrap())
        .unwrap()
        .size;
    let page = app.get("/v1/log/checkpoints?limit=1000").await.json();
    let listed = page["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["tree_size"] == size)
        .unwrap()["checkpoint"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(listed.contains("w1.example.jp/witness") && listed.contains("w2.example.jp/witness"));
    // Both cosignatures check out with the independent reference written from the C2SP text.
    for w in [&w1, &w2] {
        let time = reference::cosigned_at(witnessed, &w.vkey).expect("a valid cosignature");
        assert!(time > 1_700_000_000);
    }
    reference::verify_checkpoint(witnessed, &log_vkey).expect("still the log's checkpoint");

    let policy = |name: &str, text: String| {
        let path = dir.path().join(format!("{name}.policy"));
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let head = format!(
        "log {log_vkey}\nwitness A {}\nwitness B {} {}\nwitness C {absent}\n",
        w1.vkey, w2.vkey, w2.url
    );
    let both = policy("both", format!("{head}group both all A B\nquorum both\n"));
    let two_of_three = policy(
        "two",
        format!("# regulators\n{head}group g 2 A B C\nquorum g\n"),
    );
    let all_three = policy(
        "all",
        format!("{head}group everyone all A B C\nquorum everyone\n"),
    );
    for (path, passes) in [(&both, true), (&two_of_three, true), (&all_three, false)] {
        let (ok, out) = verify_cli(&bundle, &log_vkey, &["--policy", path]);
        assert_eq!(ok, passes, "{path}\n{out}");
        if !passes {
            assert!(
                out.lines()
                    .any(|l| l.starts_with("FAIL") && l.contains("quorum")),
                "{out}"
            );
        }
    }
    // Without its cosignatures, or with a consistency proof that does not hold: refused.
    let mut stripped = bundle.clone();
    let log_only: String = witnessed
        .lines()
        .filter(|l| !l.contains("example.jp/witness"))
        .map(|l| format!("{l}\n"))
        .collect();
    stripped["witnessed"]["checkpoint"] = json!(log_only);
    let (ok, out) = verify_cli(&stripped, &log_vkey, &["--policy", &both]);
    assert!(
        !ok && out.contains("cosigned by no witness of the policy"),
        "{out}"
    );
    // A consistency proof that does not hold: the first hash flipped, or one where none belongs.
    let mut bad = bundle.clone();
    let proof = bad["witnessed"]["consistency"].as_array_mut().unwrap();
    match proof.first_mut() {
        Some(first) => {
            let mut hash = B64.decode(first.as_str().unwrap()).unwrap();
            hash[0] ^= 1;
            *first = json!(B64.encode(hash));
        }
        None => proof.push(json!(B64.encode([7u8; 32]))),
    }
    let (ok, out) = verify_cli(&bad, &log_vkey, &["--policy", &both]);
    assert!(
        !ok && out.contains("extends the bundle's checkpoint"),
        "{out}"
    );
    // A policy for another log is refused.
    let stranger = consent_ledger::log::note::NoteSigner::new("other.example/log", &[9; 32])
        .unwrap()
        .verifier_key();
    let other = policy("other", format!("log {stranger}\nquorum none\n"));
    let (ok, out) = verify_cli(&bundle, &log_vkey, &["--policy", &other]);
    assert!(
        !ok && out.contains("FAIL  the log is one the policy accepts"),
        "{out}"
    );

    // The witness protocol itself: a stale old size learns the held size as text/x.tlog.size.
    let cp = app.get("/checkpoint").await.text();
    let res = awc::Client::new()
        .post(format!("{}/add-checkpoint", w1.url))
        .send_body(format!("old 0\n\n{cp}"))
        .await;
    let mut res = res.unwrap();
    assert_eq!(res.status().as_u16(), 409);
    assert_eq!(
        res.headers().get("content-type").unwrap().to_str().unwrap(),
        "text/x.tlog.size"
    );
    let held: u64 = String::from_utf8(res.body().await.unwrap().to_vec())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(held > 0);
    let unknown = awc::Client::new()
        .post(format!("{}/add-checkpoint", w1.url))
        .send_body("old 0\n\nother.example/log\n1\nAAAA\n\n\u{2014} x AAAA\n")
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    app.stop().await;
}
