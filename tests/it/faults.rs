//! Faults: a process that dies with requests in flight leaves its `Idempotency-Key`s to be taken
//! over at once by a live process (its owner lock is gone), while a live process's in-flight keys
//! stay its own; SQLite on a full disk answers writes 503 (and `/readyz` 503) while it serves
//! reads, loses no acknowledged event, and publishes the overdue checkpoint when space returns.

use std::time::Duration;

use consent_ledger::api::AppState;
use consent_ledger::auth::Role;
use serde_json::json;

use crate::common::{tamper, ServeProcess, TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(
    an_in_flight_key_of_a_killed_process_is_taken_over_at_once,
    a_request_whose_key_was_taken_over_records_nothing
);

/// A tmpfs of `megabytes` at a new directory, unmounted when dropped. Needs root, as CI has:
/// the test is ignored by plain `cargo test` and, run with `--include-ignored`, fails if it
/// cannot mount.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            mounted,
            "mounting a tmpfs for the full-disk test needs root"
        );
        Self { dir }
    }

    /// Fills the file system to the last byte with a file of its own; returns the file.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        while file.write_all(&[0]).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-l"])
            .arg(self.dir.path())
            .status();
    }
}

async fn record(app: &TestApp, sender: &str, email: &str) -> crate::common::Answer {
    app.call(
        "POST",
        "/v1/events",
        Some(sender),
        Some(&opt_in(email)),
        &[],
    )
    .await
}

#[actix_web::test]
#[ignore = "needs root to mount a small file system: run with --include-ignored, as CI does"]
async fn a_full_disk_answers_writes_503_and_recovers_when_space_returns() {
    let disk = SmallDisk::mount(24);
    let db = TestDb::sqlite_in(disk.dir.path());
    let app = TestApp::start(&db).await;
    let sender = tenant_and_sender(&db, &app).await;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let res = record(&app, &sender, &format!("before{i}@example.jp")).await;
        assert_eq!(res.status, 201, "{}", res.text());
        acknowledged.push(res.json()["leaf_index"].as_u64().unwrap());
    }

    let filler = disk.fill();
    // Writes fail now; each answer is a 201 (it fitted) or a 503 with Retry-After, never a 500.
    let mut refused = 0;
    for i in 0.. {
        let res = record(&app, &sender, &format!("full{i}@example.jp")).await;
        match res.status {
            201 => acknowledged.push(res.json()["leaf_index"].as_u64().unwrap()),
            503 => {
                assert!(
                    !res.header("retry-after").is_empty(),
                    "503 without Retry-After"
                );
                assert_eq!(res.header("content-type"), "application/problem+json");
                assert!(
                    !res.text().contains("disk is full"),
                    "the driver's message: {}",
                    res.text()
                );
                refused += 1;
                if refused == 5 {
                    break;
                }
            }
            other => panic!("{other} on a full disk: {}", res.text()),
        }
        assert!(i < 10_000, "the disk never filled");
    }
    let keyed = app
        .call(
            "POST",
            "/v1/events",
            Some(&sender),
            Some(&opt_in("keyed@example.jp")),
            &[("Idempotency-Key", "while-full")],
        )
        .await;
    assert_eq!(
        keyed.status,
        503,
        "a keyed request on a full disk: {}",
        keyed.text()
    );
    let ready = app.get("/readyz").await;
    assert_eq!(
        ready.status,
        503,
        "/readyz while writes fail: {}",
        ready.text()
    );
    // A restart on the full disk serves reads.
    app.stop().await;
    let app = TestApp::start(&db).await;
    let read = app
        .call(
            "GET",
            "/v1/consent?email=before0@example.jp&purpose=newsletter",
            Some(&sender),
            None,
            &[],
        )
        .await;
    assert_eq!(read.status, 200, "reads are served: {}", read.text());

    // Space returns: the next write succeeds, and a checkpoint covers every acknowledged event.
    std::fs::remove_file(filler).unwrap();
    // Readiness returns by itself, without traffic (the sequencer tries a write).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app.get("/readyz").await.status != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "/readyz stayed 503 after space returned"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let mut after = None;
    for i in 0..10_000 {
        let res = record(&app, &sender, &format!("after{i}@example.jp")).await;
        if res.status == 201 {
            after = res.json()["leaf_index"].as_u64();
            break;
        }
        assert_eq!(res.status, 503, "{}", res.text());
    }
    let last = after.expect("writes never succeeded again");
    let checkpoint = crate::common::wait_for_checkpoint(&app.log, last + 1).await;
    assert!(checkpoint.size > *acknowledged.iter().max().unwrap());
    assert_eq!(app.get("/readyz").await.status, 200);
    for index in acknowledged {
        let path = format!(
            "/v1/log/proof/inclusion?index={index}&size={}",
            checkpoint.size
        );
        let res = app.get(&path).await;
        assert_eq!(
            res.status,
            200,
            "acknowledged leaf {index} lost: {}",
            res.text()
        );
    }
    app.stop().await;
}

/// A new tenant created through `app`, and a sender token for it.
async fn tenant_and_sender(db: &TestDb, app: &TestApp) -> String {
    tenant_with_sender(db, app).await.1
}

/// A new tenant created through `app`: its id, and a sender token for it.
async fn tenant_with_sender(db: &TestDb, app: &TestApp) -> (String, String) {
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
    (tenant, sender)
}

fn opt_in(email: &str) -> serde_json::Value {
    json!({"event": "opt_in", "email": email, "purposes": ["newsletter"], "method": "web_form",
           "received_by": {"role": "sender", "name": "Example K.K."}})
}

async fn an_in_flight_key_of_a_killed_process_is_taken_over_at_once(db: TestDb) {
    let app = TestApp::start(&db).await;
    let sender = tenant_and_sender(&db, &app).await;

    // Another server process on the same database records one keyed request, and is killed.
    let dir = tempfile::tempdir().unwrap();
    let mut child = ServeProcess::start(
        dir.path(),
        &["--database-url", &db.url, "--origin", "test.example/log"],
    );
    let base = child.addr.clone();
    let res = awc::Client::default()
        .post(format!("http://{base}/v1/events"))
        .insert_header(("Authorization", format!("Bearer {sender}")))
        .insert_header(("Idempotency-Key", "done-by-the-child"))
        .send_json(&opt_in("child@example.jp"))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    child.child.kill().unwrap(); // SIGKILL
    child.child.wait().unwrap();

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

/// Runs SQL on the cluster's `postgres` database, beside the test's (which may refuse us).
fn on_cluster(db: &TestDb, sql: &str) {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let (cluster, _) = db.url.rsplit_once('/').unwrap();
    diesel::PgConnection::establish(&format!("{cluster}/postgres"))
        .unwrap()
        .batch_execute(sql)
        .unwrap();
}

/// PostgreSQL goes away (the database refuses connections, and those open are cut): every
/// route that needs it answers 503 with `Retry-After` and a message of ours, never a 500 and
/// never the driver's words; when it returns, writes succeed again.
#[actix_web::test]
#[ignore = "needs PostgreSQL (initdb, pg_ctl): run with --include-ignored, as CI does"]
async fn a_postgresql_outage_answers_503_on_every_route() {
    let db = TestDb::postgres();
    let app = TestApp::start(&db).await;
    let sender = tenant_and_sender(&db, &app).await;
    assert_eq!(record(&app, &sender, "before@example.jp").await.status, 201);
    let name = db.url.rsplit_once('/').unwrap().1.to_string();
    on_cluster(
        &db,
        &format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
        ),
    );
    let consent = "/v1/consent?email=before@example.jp&purpose=newsletter";
    let answers = [
        (
            "GET /v1/consent",
            app.call("GET", consent, Some(&sender), None, &[]).await,
        ),
        (
            "POST /v1/events",
            record(&app, &sender, "during@example.jp").await,
        ),
        (
            "POST /v1/events with an Idempotency-Key",
            app.call(
                "POST",
                "/v1/events",
                Some(&sender),
                Some(&opt_in("keyed@example.jp")),
                &[("Idempotency-Key", "during-the-outage")],
            )
            .await,
        ),
        ("GET /readyz", app.get("/readyz").await),
    ];
    for (what, res) in &answers {
        assert_eq!(res.status, 503, "{what}: {}", res.text());
        assert!(
            !res.header("retry-after").is_empty(),
            "{what}: no Retry-After"
        );
        assert_eq!(
            res.header("content-type"),
            "application/problem+json",
            "{what}"
        );
        let detail = res.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            !detail.contains(&name) && !detail.contains("FATAL") && !detail.contains("connection"),
            "{what}: the driver's message reached the client: {detail}"
        );
    }
    on_cluster(
        &db,
        &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true;"),
    );
    let mut recovered = false;
    for i in 0..100 {
        let res = record(&app, &sender, &format!("after{i}@example.jp")).await;
        if res.status == 201 {
            recovered = true;
            break;
        }
        assert_eq!(res.status, 503, "{}", res.text());
    }
    assert!(
        recovered,
        "writes never succeeded after the database came back"
    );
    app.stop().await;
}

/// A request whose key another process took over while it ran (its owner looked gone, or it
/// ran past the timeout) records nothing: the retry that took the key records the events, once.
async fn a_request_whose_key_was_taken_over_records_nothing(db: TestDb) {
    use consent_ledger::idempotency::{self, AnswerShape, IdempotencyKey};
    let app = TestApp::start(&db).await;
    let (tenant, sender) = tenant_with_sender(&db, &app).await;
    let state = AppState::open(&db.config()).unwrap();
    let event = serde_json::from_value(opt_in("taken@example.jp")).unwrap();
    let (store, url, tenant_id) = (state.store.clone(), db.url.clone(), tenant.clone());
    let outcome = idempotency::record_once(
        &state.store,
        &state.log,
        &state.links,
        &tenant,
        Some(IdempotencyKey::parse("api:", b"taken-over").unwrap()),
        b"the request",
        AnswerShape::Event,
        move || {
            // While this request is validated, a retry elsewhere takes its key over.
            crate::common::tamper_url(
                &url,
                "UPDATE idempotency_keys SET created_at = created_at + 1 \
                 WHERE key = 'api:taken-over'",
            );
            Ok::<_, consent_ledger::error::DomainError>(vec![
                consent_ledger::consent::prepare_event(&store, &tenant_id, event)?,
            ])
        },
    )
    .await;
    assert!(
        outcome.is_err(),
        "a request whose key was taken over recorded its event"
    );
    let history = app
        .call(
            "GET",
            "/v1/consent?email=taken@example.jp&purpose=newsletter",
            Some(&sender),
            None,
            &[],
        )
        .await;
    assert_eq!(history.json()["may_send"], false, "{}", history.text());
    // And the retry's reservation is still there, unreleased.
    let claimed = state
        .store
        .read(|r| {
            Ok::<_, consent_ledger::store::StoreError>(
                r.idempotent_answer(&tenant, "api:taken-over")?,
            )
        })
        .unwrap();
    assert!(claimed.is_some_and(|row| row.body.is_none()));
    state.log.shutdown();
    app.stop().await;
}
