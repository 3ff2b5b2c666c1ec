//! The printable report of an evidence bundle: one HTML page (Japanese or English, prints on
//! A4) with the verdict, the address's consent timeline, the screens consent was given on, the
//! legal bases, and every verification item — what an officer reads instead of JSON. Made by
//! `consent-ledger verify evidence … --report FILE` from the bundle and its verification, so the
//! verdict on the page is the verifier's own. Pure: no database, no network.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde_json::Value;

use super::verify::Report;
use super::Bundle;
use crate::escape_html as esc;

/// Report language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Japanese.
    Ja,
    /// English.
    En,
}

fn t(lang: Lang, ja: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Ja => ja,
        Lang::En => en,
    }
}

fn label(lang: Lang, value: &str) -> String {
    let ja = match value {
        "opt_in" => "同意（オプトイン）",
        "opt_out" => "拒否（オプトアウト）",
        "confirm" => "確認（ダブルオプトイン）",
        "erasure" => "個人データの消去（拒否の効力は存続）",
        "relabel" => "識別子の移行（以前の記録を引き継ぎ）",
        "consent" => "同意",
        "address_notified" => "アドレス通知",
        "business_relationship" => "取引関係",
        "address_published" => "アドレス公表",
        "web_form" => "ウェブフォーム",
        "email" => "電子メール",
        "paper" => "書面",
        "phone" => "電話",
        "in_person" => "対面",
        "import" => "移行データ",
        "one_click" => "ワンクリック（RFC 8058）",
        "granted" => "同意あり",
        "pending" => "確認待ち",
        "withdrawn" => "拒否",
        "none" => "記録なし",
        "sender" => "送信者",
        "commissioning_party" => "送信委託者",
        other => return other.to_string(),
    };
    match lang {
        Lang::Ja => ja.to_string(),
        Lang::En => value.replace('_', " "),
    }
}

fn purposes(value: &Value, lang: Lang) -> String {
    match value {
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        _ => t(lang, "すべて", "all").to_string(),
    }
}

/// How an event was given, as its evidence says: `IP … · UA … · Message-ID … · note`, or that
/// it was erased.
fn evidence_of(bundle: &Bundle, leaf_index: u64, committed: bool, lang: Lang) -> String {
    let given = bundle
        .subject
        .evidence
        .iter()
        .find(|e| e.leaf_index == leaf_index);
    let Some(given) = given else {
        return match committed {
            true => t(lang, "（消去済み）", "(erased)").to_string(),
            false => String::new(),
        };
    };
    [
        ("ip", "IP"),
        ("user_agent", "UA"),
        ("confirmation_message_id", "Message-ID"),
        ("note", ""),
    ]
    .iter()
    .filter_map(|(key, name)| {
        let value = given.evidence[*key].as_str()?;
        Some(if name.is_empty() {
            value.to_string()
        } else {
            format!("{name} {value}")
        })
    })
    .collect::<Vec<_>>()
    .join(" · ")
}

/// Renders the report.
pub fn render(bundle: &Bundle, report: &Report, lang: Lang) -> String {
    let passed = report.passed();
    let verdict = if passed {
        t(
            lang,
            "検証成功：すべての項目を確認しました",
            "VALID: every item verified",
        )
    } else {
        t(
            lang,
            "検証失敗：確認できない項目があります",
            "INVALID: some items failed",
        )
    };
    let failed = report.items.iter().filter(|i| !i.ok).count();
    let mut timeline = String::new();
    for event in &bundle.events {
        let doc = event.document();
        let s = |k: &str| doc[k].as_str().unwrap_or("").to_string();
        // An erasure or relabel leaf is part of the chain: it names no event, purposes or basis.
        let erasure = doc["type"] == "erasure" || doc["type"] == "relabel";
        let kind = if erasure { s("type") } else { s("event") };
        let purposes = match erasure {
            true => String::new(),
            false => purposes(&doc["purposes"], lang),
        };
        timeline.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td><strong>{}</strong></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=mono>{}</td></tr>",
            esc(&s("recorded_at")),
            esc(&s("occurred_at")),
            esc(&label(lang, &kind)),
            esc(&purposes),
            esc(&label(lang, &s("basis"))),
            esc(&label(lang, &s("method"))),
            esc(&match erasure {
                true => String::new(),
                false => format!("{} ({})", doc["received_by"]["name"].as_str().unwrap_or(""), label(lang, doc["received_by"]["role"].as_str().unwrap_or(""))),
            }),
            esc(&s("collection_point").chars().take(12).collect::<String>()),
            esc(&evidence_of(bundle, event.leaf_index, !doc["evidence_sha256"].is_null(), lang)),
            event.leaf_index,
        ));
    }
    // The tenant's legal holds (保全命令), as the bundle proves them complete.
    let holds: String = bundle
        .holds
        .iter()
        .flat_map(|h| &h.leaves)
        .map(|leaf| {
            let doc = leaf.document();
            let s = |k: &str| doc[k].as_str().unwrap_or("").to_string();
            format!(
                "<tr><td>{}</td><td><strong>{}</strong></td><td>{}</td><td>{}</td><td class=mono>{}</td></tr>",
                esc(&s("recorded_at")),
                match doc["on"] == true {
                    true => t(lang, "保存期間1年（措置命令）", "kept one year (measures order)"),
                    false => t(lang, "解除", "lifted"),
                },
                esc(&s("order_date")),
                esc(&s("order_reference")),
                leaf.leaf_index,
            )
        })
        .collect();
    let holds = match holds.is_empty() {
        true => format!("<p>{}</p>", t(lang, "なし", "none")),
        false => format!(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{holds}</table>",
            t(lang, "記録日時", "Recorded"),
            t(lang, "内容", "Hold"),
            t(lang, "命令の日付", "Order date"),
            t(lang, "命令の番号等", "Order reference"),
            t(lang, "リーフ", "Leaf"),
        ),
    };
    let mut screens = String::new();
    for template in &bundle.collection_points {
        let doc = template.proof.document();
        let content = B64.decode(&template.content).unwrap_or_default();
        let shown = if template.content_type.starts_with("text/") {
            format!("<pre>{}</pre>", esc(&String::from_utf8_lossy(&content)))
        } else {
            format!(
                "<p>{} bytes, {}</p>",
                content.len(),
                esc(&template.content_type)
            )
        };
        screens.push_str(&format!(
            "<section class=screen><h3 class=mono>{}</h3><p>{}: {} · {}: {} · {}: {} · {}: {}</p>{shown}</section>",
            esc(&template.id),
            t(lang, "名称", "Name"),
            esc(doc["name"].as_str().unwrap_or("")),
            t(lang, "表示された送信者名", "Sender name shown"),
            esc(doc["sender_name_shown"].as_str().unwrap_or("")),
            t(lang, "チェックボックスの初期状態", "Box pre-checked"),
            if doc["prechecked"] == true { t(lang, "チェック済み", "yes") } else { t(lang, "未チェック", "no") },
            t(lang, "言語", "Language"),
            esc(doc["language"].as_str().unwrap_or("")),
        ));
    }
    let decisions: String = bundle
        .decisions
        .iter()
        .map(|d| {
            format!(
                "<tr><td>{}</td><td><strong>{}</strong></td><td>{}</td></tr>",
                esc(&d.purpose),
                if d.may_send {
                    t(lang, "送信可", "may send")
                } else {
                    t(lang, "送信不可", "may not send")
                },
                esc(&label(lang, &d.status)),
            )
        })
        .collect();
    let items: String = report
        .items
        .iter()
        .map(|i| {
            format!(
                "<li class={}>{} {}{}</li>",
                if i.ok { "ok" } else { "fail" },
                if i.ok { "✓" } else { "✗" },
                esc(&i.what),
                if i.detail.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", esc(&i.detail))
                }
            )
        })
        .collect();
    let size = bundle.checkpoint.lines().nth(1).unwrap_or("?");
    let l_decisions = match lang {
        Lang::Ja => format!("送信可否（ツリーサイズ {size} 時点）"),
        Lang::En => format!("Send decision as of tree size {size}"),
    };
    let sender = format!(
        "{} {}",
        esc(&bundle.tenant.legal_name),
        t(lang, "（名称は未検証）", "(name not verified)")
    );
    let notes: String = report
        .notes
        .iter()
        .map(|n| format!("<li>{}</li>", esc(n)))
        .collect();
    let checkpoint_head: String = bundle
        .checkpoint
        .lines()
        .take(3)
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        r#"<!doctype html>
<html lang="{html_lang}"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,"Hiragino Sans","Noto Sans CJK JP",sans-serif;margin:2rem;color:#111;line-height:1.5}}
h1{{font-size:1.5rem;margin:0 0 .5rem}}h2{{font-size:1.15rem;border-bottom:1px solid #999;margin-top:1.6rem}}
table{{border-collapse:collapse;width:100%;font-size:.85rem}}th,td{{border:1px solid #bbb;padding:.25rem .4rem;text-align:left;vertical-align:top}}
.verdict{{font-size:1.2rem;font-weight:bold;padding:.6rem;border:2px solid}}.valid{{color:#065f46;border-color:#065f46}}.invalid{{color:#991b1b;border-color:#991b1b}}
.mono{{font-family:ui-monospace,monospace;font-size:.8rem;word-break:break-all}}pre{{white-space:pre-wrap;border:1px solid #ccc;padding:.5rem;font-size:.8rem}}
li.fail{{color:#991b1b;font-weight:bold}}li{{font-size:.85rem}}
@media print{{body{{margin:0}}@page{{size:A4;margin:15mm}}section.screen,tr{{break-inside:avoid}}}}
</style></head><body>
<h1>{title}</h1>
<p class="verdict {verdict_class}">{verdict}{failed_note}</p>
<table>
<tr><th>{l_sender}</th><td>{sender} <span class=mono>({tenant})</span></td></tr>
<tr><th>{l_address}</th><td>{email}</td></tr>
<tr><th>{l_commitment}</th><td class=mono>{commitment}</td></tr>
<tr><th>{l_log}</th><td class=mono>{checkpoint}</td></tr>
<tr><th>{l_generated}</th><td>{generated}</td></tr>
</table>
<h2>{l_decisions}</h2>
<table><tr><th>{l_purpose}</th><th>{l_decision}</th><th>{l_status}</th></tr>{decisions}</table>
<h2>{l_timeline}</h2>
<table><tr><th>{l_recorded}</th><th>{l_occurred}</th><th>{l_event}</th><th>{l_purposes}</th><th>{l_basis}</th><th>{l_method}</th><th>{l_received}</th><th>{l_screen}</th><th>{l_evidence}</th><th>{l_leaf}</th></tr>{timeline}</table>
<h2>{l_holds}</h2>{holds}
<h2>{l_screens}</h2>{screens}
<h2>{l_checks}</h2><ul>{items}</ul><ul class=notes>{notes}</ul>
</body></html>
"#,
        html_lang = t(lang, "ja", "en"),
        title = t(
            lang,
            "同意記録の検証報告書",
            "Consent evidence verification report"
        ),
        verdict_class = if passed { "valid" } else { "invalid" },
        failed_note = if passed {
            String::new()
        } else {
            format!(" ({failed})")
        },
        l_sender = t(lang, "送信者", "Sender"),
        sender = sender,
        tenant = esc(&bundle.tenant.id),
        l_address = t(lang, "メールアドレス", "E-mail address"),
        email = esc(&bundle.subject.email),
        l_commitment = match bundle.subject.vrf_proof {
            Some(_) => t(lang, "ラベル（VRF）", "Label (VRF)"),
            None => t(lang, "コミットメント", "Commitment"),
        },
        commitment = esc(&bundle.subject.commitment),
        l_log = t(lang, "ログのチェックポイント", "Log checkpoint"),
        checkpoint = esc(&checkpoint_head).replace('\n', "<br>"),
        l_generated = t(lang, "作成日時", "Generated"),
        generated = esc(&bundle.generated_at),
        l_decisions = l_decisions,
        l_purpose = t(lang, "目的", "Purpose"),
        l_decision = t(lang, "判定", "Decision"),
        l_status = t(lang, "状態", "Status"),
        l_timeline = t(lang, "経過", "Timeline"),
        l_holds = t(
            lang,
            "記録の保存（措置命令による1年保存）",
            "Legal holds (records kept a year under a measures order)"
        ),
        l_recorded = t(lang, "記録日時", "Recorded"),
        l_occurred = t(lang, "発生日時（申告）", "Occurred (claimed)"),
        l_event = t(lang, "種別", "Event"),
        l_purposes = t(lang, "目的", "Purposes"),
        l_basis = t(lang, "根拠", "Legal basis"),
        l_method = t(lang, "方法", "Method"),
        l_received = t(lang, "受領者", "Received by"),
        l_screen = t(lang, "画面", "Screen"),
        l_evidence = t(lang, "証跡", "Evidence"),
        l_leaf = t(lang, "リーフ", "Leaf"),
        l_screens = t(
            lang,
            "同意を取得した画面・文面",
            "Screens and texts consent was given on"
        ),
        l_checks = t(lang, "検証項目", "Verification items"),
    )
}
