//! Real browsers: headless Chromium (Debian's `chromium`, driven through `chromedriver` over the
//! W3C WebDriver protocol, plain HTTP). A person opens an unsubscribe page served by the test
//! server, picks "all mail", clicks the button, and the send decision turns false. An inspector
//! drops bundles on the verifier page — served at `/verify`, and written by `verify page` and
//! opened from disk — and sees VALID or INVALID; in the browser the page's verifier gives the
//! Rust verifier's verdict on every golden bundle. The pages are kept as screenshots:
//! `target/test-artifacts/{unsubscribe,verify}-*.png`.
//!
//! It needs chromium and chromedriver, so it is `#[ignore]`d and runs with `--include-ignored`, as
//! CI does (which installs them); then missing ones are a failure.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::common::{TestApp, TestDb};
use crate::unsubscribe::{links, may_send, opt_in, path_of, shop};

/// chromedriver on a free port; killed when dropped.
struct Driver {
    child: Child,
    base: String,
    client: awc::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        let found = |p: &str| std::path::Path::new(p).exists();
        assert!(
            found("/usr/bin/chromium") && found("/usr/bin/chromedriver"),
            "chromium/chromedriver are missing: apt-get install chromium chromium-driver"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: awc::Client::builder()
                .timeout(Duration::from_secs(60))
                .finish(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut res) = driver
                .client
                .get(format!("{}/status", driver.base))
                .send()
                .await
            {
                let status: Value = res.json().await.unwrap_or_default();
                if status["value"]["ready"] == true {
                    return driver;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless session (a Japanese reader, a window of `size` `W,H`): its path,
    /// `/session/{id}`.
    async fn session(&self, profile: &std::path::Path, size: &str) -> String {
        let session = self
            .call(
                "POST",
                "/session",
                Some(json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": "/usr/bin/chromium",
                        // A Japanese reader: the page follows Accept-Language.
                        "prefs": {"intl.accept_languages": "ja"},
                        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                 "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                                 "--disable-component-update", "--disable-sync", format!("--window-size={size}"), "--accept-lang=ja",
                                 "--allow-file-access-from-files",
                                 format!("--user-data-dir={}", profile.display())],
                    },
                }}})),
            )
            .await;
        format!("/session/{}", session["sessionId"].as_str().unwrap())
    }

    /// The element `css` selects in session `s`: its WebDriver id.
    async fn find(&self, s: &str, css: &str) -> String {
        self.call(
            "POST",
            &format!("{s}/element"),
            Some(json!({"using": "css selector", "value": css})),
        )
        .await
        // An element reference: one member, the W3C element key, whose value is the id.
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no element {css}"))
        .to_string()
    }

    /// Waits until the page's source in session `s` contains `text`.
    async fn wait_for(&self, s: &str, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let source = self.call("GET", &format!("{s}/source"), None).await;
            let source = source.as_str().unwrap().to_string();
            if source.contains(text) {
                return source;
            }
            assert!(
                Instant::now() < deadline,
                "the page never said {text}: {source}"
            );
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let req = self.client.request(method, format!("{}{path}", self.base));
        let mut res = match body {
            Some(b) => req.send_json(&b).await,
            None => req.send().await,
        }
        .unwrap_or_else(|e| panic!("webdriver {path}: {e}"));
        let value: Value = res.json().limit(64 << 20).await.unwrap();
        assert!(res.status().is_success(), "webdriver {path}: {value}");
        value["value"].clone()
    }
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: run with --include-ignored, as CI does"]
async fn a_person_unsubscribes_in_a_real_browser() {
    let driver = Driver::start().await;
    let db = TestDb::sqlite();
    let app = TestApp::start(&db).await;
    let shop = shop(&db, true);
    opt_in(&app, &shop, "browser@example.jp").await;
    let url = links(&app, &shop, &["browser@example.jp"], Some("newsletter")).await[0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let page = format!("{}{}", app.base, path_of(&url));

    let profile = tempfile::tempdir().unwrap();
    let s = driver.session(profile.path(), "800,700").await;
    driver
        .call("POST", &format!("{s}/url"), Some(json!({"url": page})))
        .await;
    let title = driver.call("GET", &format!("{s}/title"), None).await;
    assert_eq!(title, "配信停止");
    // Opening the page changed nothing.
    assert!(may_send(&app, &shop, "browser@example.jp", "newsletter").await);
    screenshot(&driver, &s, "unsubscribe-page").await;

    let all = driver.find(&s, "input[value=all]").await;
    driver
        .call("POST", &format!("{s}/element/{all}/click"), Some(json!({})))
        .await;
    let button = driver.find(&s, "button[type=submit]").await;
    driver
        .call(
            "POST",
            &format!("{s}/element/{button}/click"),
            Some(json!({})),
        )
        .await;

    driver.wait_for(&s, "配信を停止しました").await;
    screenshot(&driver, &s, "unsubscribe-done").await;
    driver.call("DELETE", &s, None).await;

    assert!(!may_send(&app, &shop, "browser@example.jp", "newsletter").await);
    assert!(!may_send(&app, &shop, "browser@example.jp", "offers").await);
    app.stop().await;
}

/// Drops `file` on the verifier page open in session `s` (its file input) and waits for the
/// verdict to say `verdict`: the page's source then.
async fn drop_bundle(driver: &Driver, s: &str, file: &std::path::Path, verdict: &str) -> String {
    let input = driver.find(s, "#bundle").await;
    driver
        .call(
            "POST",
            &format!("{s}/element/{input}/value"),
            Some(json!({"text": file.display().to_string()})),
        )
        .await;
    driver.wait_for(s, verdict).await
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: run with --include-ignored, as CI does"]
async fn an_inspector_verifies_bundles_in_the_browser_page() {
    let driver = Driver::start().await;
    let db = TestDb::sqlite();
    let (app, bundle, vkey, _) = crate::report::history(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let valid = dir.path().join("valid.json");
    std::fs::write(&valid, serde_json::to_vec(&bundle).unwrap()).unwrap();
    // The operator hides the refusal.
    let mut hidden = bundle.clone();
    hidden["events"].as_array_mut().unwrap().remove(3);
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, serde_json::to_vec(&hidden).unwrap()).unwrap();

    let profile = tempfile::tempdir().unwrap();
    let s = driver.session(profile.path(), "1000,1800").await;
    driver
        .call(
            "POST",
            &format!("{s}/url"),
            Some(json!({"url": format!("{}/verify", app.base)})),
        )
        .await;
    // The service fills in its own key.
    let page = driver.call("GET", &format!("{s}/source"), None).await;
    assert!(page.as_str().unwrap().contains(&vkey));
    let shown = drop_bundle(&driver, &s, &valid, "検証の結果：有効です").await;
    for part in [
        "id=\"decisions\"",
        "配信停止（送信拒否の通知）",
        "<iframe sandbox=\"\"",
    ] {
        assert!(shown.contains(part), "the page lacks {part}");
    }
    // The screen as the person saw it, its script not run.
    let element = driver
        .call(
            "POST",
            &format!("{s}/element"),
            Some(json!({"using": "css selector", "value": "iframe.screen"})),
        )
        .await;
    driver
        .call("POST", &format!("{s}/frame"), Some(json!({"id": element})))
        .await;
    let body = driver.find(&s, "body").await;
    let text = driver
        .call("GET", &format!("{s}/element/{body}/text"), None)
        .await;
    assert!(
        text.as_str().unwrap().contains("メールマガジン登録"),
        "{text}"
    );
    assert!(
        !text.as_str().unwrap().contains("SCRIPT RAN"),
        "a screen's script ran"
    );
    driver
        .call("POST", &format!("{s}/frame/parent"), Some(json!({})))
        .await;
    screenshot(&driver, &s, "verify-valid").await;
    let shown = drop_bundle(&driver, &s, &tampered, "検証の結果：無効です").await;
    assert!(
        !shown.contains("id=\"decisions\""),
        "an invalid bundle shows a decision"
    );
    screenshot(&driver, &s, "verify-tampered").await;

    // The same page as one file, opened from disk with no server.
    app.stop().await;
    let out = crate::common::bin()
        .args(["verify", "page", "--vkey", &vkey])
        .output()
        .unwrap();
    assert!(out.status.success());
    let file = dir.path().join("verify.html");
    std::fs::write(&file, &out.stdout).unwrap();
    driver
        .call(
            "POST",
            &format!("{s}/url"),
            Some(json!({"url": format!("file://{}", file.display())})),
        )
        .await;
    drop_bundle(&driver, &s, &valid, "検証の結果：有効です").await;
    drop_bundle(&driver, &s, &tampered, "検証の結果：無効です").await;
    screenshot(&driver, &s, "verify-offline").await;
    // With no key, the bundle is checked against the key it names itself: no verdict.
    let key = driver.find(&s, "#vkey").await;
    driver
        .call("POST", &format!("{s}/element/{key}/clear"), Some(json!({})))
        .await;
    drop_bundle(
        &driver,
        &s,
        &valid,
        "未検証：公表された検証鍵で確認していません",
    )
    .await;

    // In the browser, the page's verifier agrees with the Rust verifier on every golden bundle.
    let vectors: Value = serde_json::from_slice(
        &std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sdk/vectors/bundles.json"))
            .unwrap(),
    )
    .unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    let verdicts = driver
        .call(
            "POST",
            &format!("{s}/execute/async"),
            Some(json!({
                "script": "const [cases, vkey, done] = arguments; (async () => { const out = []; \
                           for (const c of cases) { const { report } = await globalThis.consentLedger.verifyText(JSON.stringify(c.bundle), vkey); \
                           out.push({ passed: report.passed, failed: report.items.filter((i) => !i.ok).map((i) => i.what) }); } \
                           done(out); })();",
                "args": [cases, vectors["vkey"]],
            })),
        )
        .await;
    for (case, got) in cases.iter().zip(verdicts.as_array().unwrap()) {
        assert_eq!(got["passed"], case["verdict"]["passed"], "{}", case["name"]);
        assert_eq!(got["failed"], case["verdict"]["failed"], "{}", case["name"]);
    }
    assert_eq!(verdicts.as_array().unwrap().len(), cases.len());
    driver.call("DELETE", &s, None).await;
}

/// Saves the browser's view as `target/test-artifacts/NAME.png`.
async fn screenshot(driver: &Driver, session: &str, name: &str) {
    let png = driver
        .call("GET", &format!("{session}/screenshot"), None)
        .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap())
        .unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
}
