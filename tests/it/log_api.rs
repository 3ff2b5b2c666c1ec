//! The log's read API, end to end: a third party with only the verifier key and the RFCs checks
//! the checkpoint, recomputes the root from the tiles, and verifies inclusion and consistency.

use base64::{engine::general_purpose::STANDARD as B64, Engine};

use crate::common::reference::{self as r, Hash};
use crate::common::{append_leaves, tree_covering, TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(
    third_party_verifies_everything_over_http,
    bad_requests_are_problems_and_change_nothing,
    restart_resumes_the_same_tree,
    origin_is_fixed_for_a_log,
    a_new_log_is_named_after_its_public_url_and_keeps_its_name,
    a_new_log_listening_beyond_loopback_without_a_name_is_refused,
    entry_bundles_are_gzipped_when_asked_and_checkpoints_are_not_frozen
);

fn b64_hashes(v: &serde_json::Value) -> Vec<Hash> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| B64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect()
}

fn tile_index(n: u64) -> String {
    // Written here from the C2SP text, independently of the crate.
    let mut s = format!("{:03}", n % 1000);
    let mut n = n / 1000;
    while n > 0 {
        s = format!("x{:03}/{s}", n % 1000);
        n /= 1000;
    }
    s
}

async fn third_party_verifies_everything_over_http(db: TestDb) {
    let app = TestApp::start(&db).await;
    // Three waves so there are several checkpoints to be consistent with each other.
    let mut appended = Vec::new();
    for (wave, n) in [(0, 300), (1, 1), (2, 66_000 - 301)] {
        appended.extend(append_leaves(&app.log, &format!("w{wave}"), n, 97).await);
        tree_covering(&app.log, 0, &appended).await;
    }
    // The tree: our leaves at their acknowledged indexes, a subject map ending each checkpoint.
    let (_, leaves) = tree_covering(&app.log, 0, &appended).await;
    let n = leaves.len() as u64;
    let hashes: Vec<Hash> = leaves.iter().map(|l| r::leaf_hash(l)).collect();

    let vkey = app.get("/v1/log/verifier-key").await.text();
    let cp = app.get("/checkpoint").await;
    assert_eq!(cp.status, 200);
    assert_eq!(cp.header("content-type"), "text/plain; charset=utf-8");
    let checkpoint =
        r::verify_checkpoint(&cp.text(), &vkey).expect("checkpoint signature verifies");
    assert_eq!(checkpoint.origin, "test.example/log");
    assert_eq!(checkpoint.size, n);
    assert_eq!(checkpoint.root, r::mth(&hashes));

    // Recompute the root from the entry tiles alone, and check the hash tiles against them.
    let mut from_tiles = Vec::new();
    for t in 0..n.div_ceil(256) {
        let width = (n - t * 256).min(256);
        let suffix = if width < 256 {
            format!(".p/{width}")
        } else {
            String::new()
        };
        let bundle = app
            .get(&format!("/tile/entries/{}{suffix}", tile_index(t)))
            .await;
        assert_eq!(bundle.status, 200, "entries tile {t}");
        from_tiles.extend(r::entries(&bundle.body).iter().map(|e| r::leaf_hash(e)));
        let level0 = app.get(&format!("/tile/0/{}{suffix}", tile_index(t))).await;
        assert_eq!(
            level0.body,
            hashes[(t * 256) as usize..(t * 256 + width) as usize].concat()
        );
        if width == 256 {
            assert!(level0.header("cache-control").contains("immutable"));
        }
    }
    assert_eq!(r::mth(&from_tiles), checkpoint.root);
    // Level 1 holds the roots of full level-0 tiles; level 2 the roots of 65,536 leaves.
    let level1 = app.get("/tile/1/000").await;
    assert_eq!(level1.status, 200);
    for (i, h) in level1.body.chunks(32).enumerate() {
        assert_eq!(h, r::mth(&hashes[i * 256..(i + 1) * 256]));
    }
    let level2 = app.get("/tile/2/000.p/1").await;
    assert_eq!(level2.body, r::mth(&hashes[..65_536]));
    assert_eq!(app.get("/tile/2/000.p/2").await.status, 404);
    assert_eq!(
        app.get(&format!("/tile/0/{}", tile_index(n / 256)))
            .await
            .status,
        404,
        "partial tile asked as full"
    );

    // Inclusion proofs for arbitrary (index, size), by index and by hash.
    let picks = [
        (0, 1),
        (0, n),
        (n - 1, n),
        (255, 256),
        (256, 257),
        (300, 301),
        (65_535, 65_536),
        (12_345, 54_321),
        (n / 2, n - 7),
    ];
    for (index, size) in picks {
        let a = app
            .get(&format!(
                "/v1/log/proof/inclusion?index={index}&size={size}"
            ))
            .await;
        assert_eq!(a.status, 200, "{}", a.text());
        let body = a.json();
        assert_eq!(
            (body["leaf_index"].as_u64(), body["tree_size"].as_u64()),
            (Some(index), Some(size))
        );
        let path = b64_hashes(&body["path"]);
        assert_eq!(path, r::path(index as usize, &hashes[..size as usize]));
        assert_eq!(
            r::root_from_inclusion(hashes[index as usize], index, size, &path),
            Some(r::mth(&hashes[..size as usize]))
        );
    }
    let by_hash = app
        .get(&format!(
            "/v1/log/proof/inclusion?hash={}&size={n}",
            url_escape(&B64.encode(hashes[4242]))
        ))
        .await
        .json();
    assert_eq!(by_hash["leaf_index"], 4242);
    assert_eq!(
        r::root_from_inclusion(hashes[4242], 4242, n, &b64_hashes(&by_hash["path"])),
        Some(checkpoint.root)
    );

    // The history, paged, is a chain of signed, mutually consistent checkpoints.
    let mut history = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app
            .get(&format!("/v1/log/checkpoints?limit=2{cursor}"))
            .await
            .json();
        for c in page["checkpoints"].as_array().unwrap() {
            let v = r::verify_checkpoint(c["checkpoint"].as_str().unwrap(), &vkey).unwrap();
            assert_eq!(c["tree_size"].as_u64(), Some(v.size));
            history.push(v);
        }
        match page["next_after"].as_u64() {
            Some(next) => cursor = format!("&after={next}"),
            None => break,
        }
    }
    assert!(history.len() >= 4, "size 0 and three waves: {history:?}");
    // A cursor past any tree, up to the largest a database stores, is an empty last page; one
    // beyond that (2^63) a 400: no tree is that large.
    let beyond = app
        .get("/v1/log/checkpoints?after=9223372036854775807")
        .await;
    assert_eq!(beyond.status, 200, "{}", beyond.text());
    assert_eq!(beyond.json()["checkpoints"], serde_json::json!([]));
    let too_large = app
        .get("/v1/log/checkpoints?after=9223372036854775808")
        .await;
    assert_eq!(too_large.status, 400, "{}", too_large.text());
    assert_eq!(history[0].size, 0);
    assert!(
        history.windows(2).all(|w| w[0].size < w[1].size),
        "sizes strictly grow"
    );
    assert_eq!(history.last().unwrap(), &checkpoint);
    // Each checkpoint with the next, and with the latest: a chain with no fork.
    let last = history.last().unwrap().clone();
    for pair in history.windows(2).filter(|w| w[0].size > 0) {
        for (old, new) in [(&pair[0], &pair[1]), (&pair[0], &last)] {
            let p = app
                .get(&format!(
                    "/v1/log/proof/consistency?from={}&to={}",
                    old.size, new.size
                ))
                .await
                .json();
            assert!(
                r::consistent(
                    old.size,
                    new.size,
                    &old.root,
                    &new.root,
                    &b64_hashes(&p["path"])
                ),
                "{} -> {}",
                old.size,
                new.size
            );
        }
    }
    // And for sizes that were never checkpointed, against the reference roots.
    for (from, to) in [(1, 2), (3, 7), (256, 65_537), (1000, n), (n - 1, n)] {
        let p = app
            .get(&format!("/v1/log/proof/consistency?from={from}&to={to}"))
            .await
            .json();
        let (r1, r2) = (
            r::mth(&hashes[..from as usize]),
            r::mth(&hashes[..to as usize]),
        );
        assert!(r::consistent(from, to, &r1, &r2, &b64_hashes(&p["path"])));
    }
    let single = app.get(&format!("/v1/log/checkpoints/{n}")).await.json();
    assert_eq!(single["tree_size"].as_u64(), Some(n));

    assert_eq!(app.get("/healthz").await.status, 200);
    // Interactive docs, served from the binary itself.
    let docs = app.get("/docs/").await;
    assert_eq!(docs.status, 200);
    assert!(docs.header("content-type").starts_with("text/html"));
    assert!(!docs.text().contains("https://"), "no external assets");
    let doc = app.get("/docs/openapi.json").await.json();
    assert!(doc["paths"]["/v1/events"].is_object());
    assert_eq!(app.get("/readyz").await.json()["status"], "ready");
    let id = app.get("/healthz").await.header("x-request-id");
    assert_eq!(id.len(), 16);
    app.stop().await;
}

fn url_escape(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

async fn bad_requests_are_problems_and_change_nothing(db: TestDb) {
    let app = TestApp::start(&db).await;
    let appended = append_leaves(&app.log, "x", 10, 10).await;
    // The parameters leaf and its map, ten leaves and the subject map.
    let n = tree_covering(&app.log, 0, &appended).await.0.size;
    assert_eq!(n, 13);
    let before = app.get("/checkpoint").await.text();
    let unknown = url_escape(&B64.encode([7u8; 32]));
    let cases: &[(&str, &str, u16)] = &[
        ("GET", "/v1/log/proof/inclusion?index=5&size=0", 400),
        ("GET", "/v1/log/proof/inclusion?index=abc&size=1", 400),
        (
            "GET",
            "/v1/log/proof/inclusion?index=99999999999999999999999&size=1",
            400,
        ),
        ("GET", "/v1/log/proof/inclusion?index=-1&size=1", 400),
        ("GET", "/v1/log/proof/inclusion?size=1", 400),
        ("GET", "/v1/log/proof/inclusion?index=13&size=13", 400),
        ("GET", "/v1/log/proof/inclusion?index=0&size=14", 400),
        (
            "GET",
            "/v1/log/proof/inclusion?index=0&size=18446744073709551615",
            400,
        ),
        ("GET", "/v1/log/proof/inclusion?hash=not-base64&size=1", 400),
        ("GET", "/v1/log/proof/inclusion?hash=AAAA&size=1", 400),
        (
            "GET",
            &format!("/v1/log/proof/inclusion?hash={unknown}&size=13"),
            404,
        ),
        (
            "GET",
            &format!("/v1/log/proof/inclusion?hash={unknown}&index=1&size=13"),
            400,
        ),
        ("GET", "/v1/log/proof/consistency?from=0&to=1", 400),
        ("GET", "/v1/log/proof/consistency?from=3&to=2", 400),
        ("GET", "/v1/log/proof/consistency?from=1&to=14", 400),
        ("GET", "/v1/log/proof/consistency?from=1", 400),
        (
            "GET",
            "/v1/log/proof/consistency?from=1&to=9223372036854775808",
            400,
        ),
        ("GET", "/tile/0/../../etc/passwd", 400),
        ("GET", "/tile/64/000", 400),
        ("GET", "/tile/0/x999/x999/x999/x999/x999/x999/999", 400),
        ("GET", "/tile/0/x000/001", 400),
        ("GET", "/tile/0/001", 404),
        ("GET", "/tile/0/000", 404),
        ("GET", "/tile/0/000.p/14", 404),
        ("GET", "/tile/63/x018/x014/x398/x509/x481/x984/000", 404),
        ("GET", "/tile/entries/000.p/0", 400),
        ("GET", "/tile/0/000.p/256", 400),
        ("GET", "/tile/", 400),
        ("GET", "/v1/log/checkpoints?limit=0", 400),
        ("GET", "/v1/log/checkpoints?limit=5000", 400),
        ("GET", "/v1/log/checkpoints?after=-5", 400),
        ("GET", "/v1/log/checkpoints/999999", 404),
        ("GET", "/v1/log/checkpoints/abc", 400),
        ("GET", "/nothing/here", 404),
        ("POST", "/checkpoint", 405),
        ("DELETE", "/tile/0/000.p/1", 405),
        ("PUT", "/v1/log/checkpoints/5", 405),
        ("POST", "/no/such/thing", 404),
    ];
    for (method, path, status) in cases {
        let a = app.request(method, path).await;
        assert_eq!(a.status, *status, "{method} {path}: {}", a.text());
        assert_eq!(
            a.header("content-type"),
            "application/problem+json",
            "{method} {path}"
        );
        let p = a.json();
        assert_eq!(
            p["status"].as_u64(),
            Some(u64::from(*status)),
            "{method} {path}"
        );
        assert!(p["type"].as_str().unwrap().starts_with("/problems/"));
        assert!(!p["detail"].as_str().unwrap().is_empty());
        if *status == 405 {
            assert_eq!(a.header("allow"), "GET, HEAD", "{method} {path}");
        }
    }
    // A good partial tile of a small tree still works, and the log did not move.
    assert_eq!(app.get("/tile/0/000.p/13").await.body.len(), 13 * 32);
    assert_eq!(app.get("/checkpoint").await.text(), before);
    app.stop().await;
}

async fn restart_resumes_the_same_tree(db: TestDb) {
    let app = TestApp::start(&db).await;
    let mut appended = append_leaves(&app.log, "a", 1000, 33).await;
    let vkey = app.log.verifier_key();
    app.stop().await;

    let app = TestApp::start(&db).await;
    assert_eq!(app.log.verifier_key(), vkey, "the signing key persists");
    appended.extend(append_leaves(&app.log, "b", 517, 100).await);
    let (cp, leaves) = tree_covering(&app.log, 0, &appended).await;
    let hashes: Vec<Hash> = leaves.iter().map(|l| r::leaf_hash(l)).collect();
    assert_eq!(cp.root, r::mth(&hashes));
    app.stop().await;
}

async fn origin_is_fixed_for_a_log(db: TestDb) {
    let app = TestApp::start(&db).await;
    app.stop().await;
    let mut config = db.config();
    config.origin = Some("other.example/log".into());
    let err = consent_ledger::api::AppState::open(&config)
        .err()
        .expect("a different origin is refused");
    assert!(err.to_string().contains("test.example/log"), "{err}");
}

/// C2SP tlog-tiles: "Entry bundles SHOULD be compressed at the HTTP layer. Logs MAY use
/// `Content-Encoding: gzip` with no negotiation, or any compression algorithm requested by the
/// client with `Accept-Encoding`." An entry bundle is gzipped for a client that accepts gzip (the
/// same bytes once decompressed, `Vary: Accept-Encoding`, still immutable), not for one that does
/// not; and a checkpoint by size, which gains witnesses' cosignature lines later, is not cached as
/// immutable.
async fn entry_bundles_are_gzipped_when_asked_and_checkpoints_are_not_frozen(db: TestDb) {
    use std::io::Read;
    let app = TestApp::start(&db).await;
    let appended = append_leaves(&app.log, "gz", 40, 40).await;
    let (cp, _) = tree_covering(&app.log, 0, &appended).await;
    let path = format!("/tile/entries/000.p/{}", cp.size.min(255));
    let plain = app.call("GET", &path, None, None, &[]).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), "");
    assert_eq!(plain.header("vary"), "Accept-Encoding");
    let gzipped = app
        .call(
            "GET",
            &path,
            None,
            None,
            &[("Accept-Encoding", "gzip, identity")],
        )
        .await;
    assert_eq!(gzipped.header("content-encoding"), "gzip");
    assert!(gzipped.header("cache-control").contains("immutable"));
    assert!(gzipped.body.len() < plain.body.len());
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(gzipped.body.as_slice())
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain.body);
    // RFC 9110 §12.5.3: a weight of 0 refuses a coding, `*` stands for those not listed.
    for (accept, gzipped) in [
        ("gzip;q=0", false),
        ("gzip;Q=0, *", false),
        ("identity", false),
        ("*", true),
        ("x-gzip", true),
        ("br, gzip;q=0.5", true),
    ] {
        let answer = app
            .call("GET", &path, None, None, &[("Accept-Encoding", accept)])
            .await;
        let encoding = if gzipped { "gzip" } else { "" };
        assert_eq!(answer.header("content-encoding"), encoding, "{accept}");
    }
    let by_size = app.get(&format!("/v1/log/checkpoints/{}", cp.size)).await;
    assert_eq!(by_size.status, 200);
    assert_eq!(by_size.header("cache-control"), "public, no-cache");
    app.stop().await;
}

/// C2SP tlog-checkpoint: "The first line is the origin, a unique identifier for the log identity
/// which issued the checkpoint." Without a configured origin, a new log takes its URL prefix
/// (`public_url` without scheme and trailing slash, as tlog-tiles suggests), not a name every
/// install would share; an existing log keeps its own, whatever `public_url` says later.
async fn a_new_log_is_named_after_its_public_url_and_keeps_its_name(db: TestDb) {
    let config = consent_ledger::config::Config {
        origin: None,
        public_url: "https://ledger.example.jp/consent/".into(),
        ..db.config()
    };
    let state = consent_ledger::api::AppState::open(&config).unwrap();
    assert_eq!(state.log.origin(), "ledger.example.jp/consent");
    assert!(state
        .log
        .verifier_key()
        .starts_with("ledger.example.jp/consent+"));
    state.log.shutdown();
    drop(state);
    let moved = consent_ledger::config::Config {
        public_url: "https://elsewhere.example.jp".into(),
        ..config
    };
    let state = consent_ledger::api::AppState::open(&moved).unwrap();
    assert_eq!(state.log.origin(), "ledger.example.jp/consent");
    state.log.shutdown();
}

/// A new log for a service that listens beyond this machine, with no origin and a public URL
/// naming only this machine, would share its name with every such install: refused, saying
/// what to set, and nothing is created; with `public_url` set it starts, named after it.
async fn a_new_log_listening_beyond_loopback_without_a_name_is_refused(db: TestDb) {
    let exposed = consent_ledger::config::Config {
        origin: None,
        bind: "0.0.0.0:8080".into(),
        public_url: "http://127.0.0.1:8080".into(),
        ..db.config()
    };
    let err = match consent_ledger::api::AppState::open(&exposed) {
        Ok(_) => panic!("a new log without a unique name was created"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("set public_url"), "{err}");
    let named = consent_ledger::config::Config {
        public_url: "https://ledger.example.jp".into(),
        ..exposed
    };
    let state = consent_ledger::api::AppState::open(&named).unwrap();
    assert_eq!(state.log.origin(), "ledger.example.jp");
    state.log.shutdown();
}
