//! The printable report an inspector reads unaided (`verify evidence --report`): plain Japanese
//! (and English) with times in JST, the tenant's purpose labels, 配信停止 for a refusal, the
//! article of the Act each event rests on, whether it had effect, the screens as the person saw
//! them (sandboxed HTML, images as images), the technical checks in an appendix; an INVALID
//! bundle says so first and shows no decision. Printed by headless Chromium to an A4 PDF and a
//! PNG, kept in `target/test-artifacts/` to look at.

use std::path::{Path, PathBuf};

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde_json::{json, Value};

use consent_ledger::evidence::report::{render, Lang};
use consent_ledger::evidence::{verify, Bundle};

use crate::common::{date, TestApp, TestDb};
use crate::evidence::evidence;
use crate::on_both_backends;
use crate::unsubscribe::shop;

on_both_backends!(a_history_reads_as_plain_japanese_with_times_in_jst);

/// A 1×1 PNG: a paper form, scanned.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let res = app.call("POST", path, Some(token), Some(&body), &[]).await;
    assert!(res.status < 300, "{path}: {}", res.text());
    res.json()
}

/// A history with every kind of row the report prints: a double opt-in on a web screen with
/// its IP and browser, a business card, a refusal, an exception opt-in the refusal binds, and
/// fresh consent on a scanned paper form; the tenant has every contact. The bundle, its
/// verifier key, the shop.
pub async fn history(db: &TestDb) -> (TestApp, Value, String, crate::unsubscribe::Shop) {
    let app = TestApp::start(db).await;
    let shop = shop(db, true);
    let res = app
        .call(
            "PATCH",
            &format!("/v1/tenants/{}", shop.tenant),
            Some(&shop.admin),
            Some(&json!({"phone": "03-1234-5678", "privacy_policy_url": "https://shop.example.jp/privacy",
                         "responsible_party": "さくら配信株式会社", "optout_contact": "https://shop.example.jp/unsubscribe"})),
            &[],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let screen = post(&app, &shop.sender, "/v1/collection-points", json!({
        "name": "会員登録フォーム", "channel": "web_form", "content_type": "text/html; charset=utf-8",
        "content": "<h1>メールマガジン登録</h1><label><input type=checkbox> 受け取る</label><script>document.body.innerHTML='SCRIPT RAN'</script>",
        "sender_name_shown": "さくら商店", "prechecked": false, "language": "ja"})).await;
    let paper = post(&app, &shop.sender, "/v1/collection-points", json!({
        "name": "店頭申込書", "channel": "paper", "content_type": "image/png", "content_base64": PNG,
        "sender_name_shown": "さくら商店", "prechecked": false, "language": "ja"})).await;
    let email = "hanako@example.jp";
    let base = |event: &str, purposes: Value, method: &str| {
        json!({"event": event, "email": email, "purposes": purposes, "method": method,
               "received_by": {"role": "sender", "name": "さくら商店"}})
    };
    let mut pending = base("opt_in", json!(["newsletter"]), "web_form");
    pending["collection_point"] = screen["id"].clone();
    pending["confirmation_required"] = json!(true);
    pending["evidence"] = json!({"ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (iPhone)"});
    post(&app, &shop.sender, "/v1/events", pending).await;
    post(
        &app,
        &shop.sender,
        "/v1/events",
        base("confirm", json!("all"), "email"),
    )
    .await;
    let mut card = base("opt_in", json!(["offers"]), "in_person");
    card["basis"] = json!("address_notified");
    card["evidence"] = json!({"notified_by": "business_card", "notified_on": date(-2), "note": "展示会で名刺を受領"});
    post(&app, &shop.sender, "/v1/events", card).await;
    post(
        &app,
        &shop.sender,
        "/v1/events",
        base("opt_out", json!("all"), "one_click"),
    )
    .await;
    let mut business = base("opt_in", json!(["offers"]), "phone");
    business["basis"] = json!("business_relationship");
    business["evidence"] =
        json!({"transaction_reference": "受注番号 A-1024", "transaction_date": date(-1)});
    post(&app, &shop.sender, "/v1/events", business).await;
    let mut fresh = base("opt_in", json!(["newsletter"]), "paper");
    fresh["collection_point"] = paper["id"].clone();
    post(&app, &shop.sender, "/v1/events", fresh).await;
    let bundle = evidence(&app, &shop.sender, email).await;
    let vkey = app.log.verifier_key();
    (app, bundle, vkey, shop)
}

/// The report of `bundle` as `verify evidence` (with `--policy`) makes it.
pub fn report_of(
    bundle: &Value,
    vkey: &str,
    policy: Option<&consent_ledger::log::policy::Policy>,
    lang: Lang,
) -> String {
    let bytes = serde_json::to_vec(bundle).unwrap();
    let report = verify::verify(&bytes, vkey, None, policy);
    let parsed: Bundle = serde_json::from_value(bundle.clone()).unwrap();
    render(
        &parsed,
        &report,
        lang,
        consent_ledger::evidence::report::Anchor::None,
    )
}

/// The n-th event's recorded time in JST, as the Japanese report prints it.
fn jst(bundle: &Value, n: usize) -> String {
    let leaf = B64
        .decode(bundle["events"][n]["leaf"].as_str().unwrap())
        .unwrap();
    let doc: Value = serde_json::from_slice(&leaf).unwrap();
    let utc = time::OffsetDateTime::parse(
        doc["recorded_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let at = utc.to_offset(time::UtcOffset::from_hms(9, 0, 0).unwrap());
    format!(
        "{}年{}月{}日 {:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn a_history_reads_as_plain_japanese_with_times_in_jst(db: TestDb) {
    let (app, bundle, vkey, _) = history(&db).await;
    let html = report_of(&bundle, &vkey, None, Lang::Ja);
    let backend = db.url.split(':').next().unwrap().to_string();
    std::fs::write(artifacts().join(format!("report-ja-{backend}.html")), &html).unwrap();
    for shown in [
        "検証の結果：有効です",
        "このアドレスの記録はこれですべてです",
        // Times in JST, the UTC instant kept beside them.
        &jst(&bundle, 0),
        bundle["generated_at"].as_str().unwrap(),
        // The tenant's purposes by their labels, 配信停止, the article of each event.
        "Monthly newsletter",
        "配信停止（送信拒否の通知）",
        "特定電子メール法 第3条第1項第1号",
        "書面によるアドレスの通知を受けた（名刺など）",
        "特定電子メール法 第3条第1項第2号",
        "特定電子メール法 第3条第1項第3号",
        "特定電子メール法 第3条第3項",
        // How: the evidence in words.
        "IPアドレス: 203.0.113.7",
        "通知の方法: 名刺",
        "展示会で名刺を受領",
        // The exception opt-in after the refusal had no effect.
        "効力なし（先の配信停止が優先）",
        "メールソフトのワンクリック配信停止（RFC 8058）",
        // The screens as seen: HTML sandboxed with scripts off, the paper form as an image.
        "<iframe class=screen sandbox srcdoc=",
        "&lt;h1&gt;メールマガジン登録",
        "<img class=screen src=\"data:image/png;base64,",
        "付録：技術的な確認項目",
    ] {
        assert!(html.contains(shown), "the report lacks {shown}");
    }
    for jargon in ["リーフ", "ツリーサイズ", ">newsletter<"] {
        assert!(!html.contains(jargon), "the report says {jargon}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn an_english_report_reads_in_plain_english() {
    let db = TestDb::sqlite();
    let (app, bundle, vkey, _) = history(&db).await;
    let html = report_of(&bundle, &vkey, None, Lang::En);
    for shown in [
        "VALID: every check holds.",
        "Unsubscribed (refusal)",
        "Act on Specified Electronic Mail, Art. 3(1)(ii)",
        "Act on Specified Electronic Mail, Art. 3(3)",
        "no effect (an earlier refusal binds)",
        "UTC",
    ] {
        assert!(html.contains(shown), "the report lacks {shown}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn an_invalid_bundle_s_report_says_so_first_and_shows_no_decision() {
    let db = TestDb::sqlite();
    let (app, mut bundle, vkey, _) = history(&db).await;
    // The operator hides the refusal: the event list no longer matches the subject map.
    bundle["events"].as_array_mut().unwrap().remove(3);
    let html = report_of(&bundle, &vkey, None, Lang::Ja);
    let verdict = html.find("検証の結果：無効です").expect("the verdict");
    let first_event = html.find("記録の経過").unwrap();
    assert!(verdict < first_event, "the verdict comes first");
    for hidden in [
        "送信してよいか",
        "<strong>送信できます</strong>",
        "<strong>送信できません</strong>",
    ] {
        assert!(!html.contains(hidden), "an invalid report shows {hidden}");
    }
    assert!(html.contains("記録に欠けがないことを確認できませんでした"));
    app.stop().await;
}

/// Prints `html` with headless Chromium to an A4 PDF and a PNG: their paths.
fn print_with_chromium(html: &str, name: &str) -> (PathBuf, PathBuf) {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "chromium is missing: apt-get install chromium"
    );
    let dir = artifacts();
    let page = dir.join(format!("{name}.html"));
    std::fs::write(&page, html).unwrap();
    let (pdf, png) = (
        dir.join(format!("{name}.pdf")),
        dir.join(format!("{name}.png")),
    );
    let profile = tempfile::tempdir().unwrap();
    for out in [
        format!("--print-to-pdf={}", pdf.display()),
        format!("--screenshot={}", png.display()),
    ] {
        let status = std::process::Command::new("/usr/bin/chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-pdf-header-footer",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--window-size=900,2400")
            .arg(out)
            .arg(format!("file://{}", page.display()))
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    (pdf, png)
}

#[actix_web::test]
#[ignore = "needs chromium: run with --include-ignored, as CI does"]
async fn the_report_prints_on_a4_pages_in_chromium() {
    let db = TestDb::sqlite();
    let (app, bundle, vkey, _) = history(&db).await;
    for (lang, name) in [(Lang::Ja, "report-ja"), (Lang::En, "report-en")] {
        let (pdf, png) = print_with_chromium(&report_of(&bundle, &vkey, None, lang), name);
        let pdf = std::fs::read(pdf).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        // A4 is 595 × 842 points.
        assert!(
            text.contains("/MediaBox [0 0 594.9") && text.contains(" 841.9"),
            "not A4"
        );
        let pages = text.matches("/Type /Page\n").count()
            + text.matches("/Type /Page ").count()
            + text.matches("/Type /Page>").count();
        assert!((1..=8).contains(&pages), "{pages} pages");
        let png = std::fs::read(png).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 20_000,
            "{}",
            png.len()
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_purpose_s_label_is_shown_with_its_key_as_the_operator_s_word() {
    let db = TestDb::sqlite();
    let (app, mut bundle, vkey, _) = history(&db).await;
    // No check rests on labels: the operator swaps them, and the bundle still verifies.
    let purposes = bundle["tenant"]["purposes"].as_array_mut().unwrap();
    let first = purposes[0]["label_ja"].clone();
    purposes[0]["label_ja"] = purposes[1]["label_ja"].clone();
    purposes[1]["label_ja"] = first;
    let html = report_of(&bundle, &vkey, None, Lang::Ja);
    assert!(html.contains("検証の結果：有効です"));
    // The decision is printed by the key the log records, whatever the label.
    assert!(
        html.contains("<td>Special offers (newsletter)</td><td><strong>送信できます</strong>"),
        "{html}"
    );
    assert!(html.contains("目的の名前は運営者の申告で、検証の対象外です"));
    app.stop().await;
}

#[actix_web::test]
async fn evidence_left_out_is_not_called_erased() {
    let db = TestDb::sqlite();
    let (app, mut bundle, vkey, _) = history(&db).await;
    let business = bundle["events"][4]["leaf_index"].clone();
    bundle["subject"]["evidence"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["leaf_index"] != business);
    let html = report_of(&bundle, &vkey, None, Lang::Ja);
    assert!(
        html.contains("このバンドルには含まれていません（消去の記録はありません）"),
        "{html}"
    );
    assert!(!html.contains("消去済み"));
    // The verifier noted it: the lawful finding is a warning, not a tick.
    assert!(html.contains("<li class=\"warn\">⚠"), "{html}");
    app.stop().await;
}

#[actix_web::test]
async fn a_report_of_a_bundle_that_fails_shows_no_tick() {
    let db = TestDb::sqlite();
    let (app, mut bundle, vkey, _) = history(&db).await;
    // A forged signature: the verifier stops before most checks run.
    let checkpoint = bundle["checkpoint"]
        .as_str()
        .unwrap()
        .replace("— test.example/log ", "— test.example/log AAAA");
    bundle["checkpoint"] = json!(checkpoint);
    let html = report_of(&bundle, &vkey, None, Lang::Ja);
    let findings = &html[html
        .find("確認できなかったこと")
        .expect("the failures' heading")
        ..html.find("記録の経過").unwrap()];
    assert!(!findings.contains('✓'), "{findings}");
    assert!(findings.contains('✗'), "{findings}");
    app.stop().await;
}

#[actix_web::test]
async fn a_screen_whose_end_is_not_proven_is_not_called_in_use() {
    let db = TestDb::sqlite();
    let (app, mut bundle, vkey, _) = history(&db).await;
    for template in bundle["collection_points"].as_array_mut().unwrap() {
        template.as_object_mut().unwrap().remove("retirement");
    }
    let html = report_of(&bundle, &vkey, None, Lang::Ja);
    assert!(html.contains("終わりは証明されていません"), "{html}");
    assert!(!html.contains("現在も使用中"));
    app.stop().await;
}
