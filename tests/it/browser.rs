//! A real browser unsubscribes: headless Chromium (Debian's `chromium`, driven through
//! `chromedriver` over the W3C WebDriver protocol, plain HTTP) opens an unsubscribe page served
//! by the test server, picks "all mail", clicks the button, and the send decision turns false.
//! The page is kept as a screenshot: `target/test-artifacts/unsubscribe-*.png`.
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
    let session = driver
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
                             "--disable-component-update", "--disable-sync", "--window-size=800,700", "--accept-lang=ja",
                             format!("--user-data-dir={}", profile.path().display())],
                },
            }}})),
        )
        .await;
    let id = session["sessionId"].as_str().unwrap().to_string();
    let s = format!("/session/{id}");
    driver
        .call("POST", &format!("{s}/url"), Some(json!({"url": page})))
        .await;
    let title = driver.call("GET", &format!("{s}/title"), None).await;
    assert_eq!(title, "配信停止");
    // Opening the page changed nothing.
    assert!(may_send(&app, &shop, "browser@example.jp", "newsletter").await);
    screenshot(&driver, &s, "unsubscribe-page").await;

    let find = |css: &'static str| {
        let (driver, s) = (&driver, s.clone());
        async move {
            driver
                .call(
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
    };
    let all = find("input[value=all]").await;
    driver
        .call("POST", &format!("{s}/element/{all}/click"), Some(json!({})))
        .await;
    let button = find("button[type=submit]").await;
    driver
        .call(
            "POST",
            &format!("{s}/element/{button}/click"),
            Some(json!({})),
        )
        .await;

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let source = driver.call("GET", &format!("{s}/source"), None).await;
        if source.as_str().unwrap().contains("配信を停止しました") {
            break;
        }
        assert!(Instant::now() < deadline, "no confirmation page: {source}");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    screenshot(&driver, &s, "unsubscribe-done").await;
    driver.call("DELETE", &s, None).await;

    assert!(!may_send(&app, &shop, "browser@example.jp", "newsletter").await);
    assert!(!may_send(&app, &shop, "browser@example.jp", "offers").await);
    app.stop().await;
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
