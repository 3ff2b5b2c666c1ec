//! The printable report of an evidence bundle: one HTML page (Japanese or English, prints on
//! A4) with the verdict, the address's consent timeline, the screens consent was given on, the
//! legal bases, and every verification item — what an officer reads instead of JSON. Made by
//! `consent-ledger verify evidence … --report FILE` from the bundle and its verification, so the
//! verdict on the page is the verifier's own. Pure: no database, no network.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use minijinja::value::Serde;
use serde::Serialize;
use serde_json::json;

use super::verify::Report;
use super::Bundle;
use crate::templates;

/// Report language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Japanese.
    Ja,
    /// English.
    En,
}

impl Lang {
    /// `ja` or `en`.
    fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
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

/// An event's purposes by their labels in the bundle (`all` as such).
fn purposes(bundle: &Bundle, value: &serde_json::Value, lang: Lang) -> String {
    match value {
        serde_json::Value::Array(list) => list
            .iter()
            .filter_map(serde_json::Value::as_str)
            .map(|p| bundle.tenant.purpose_label(p, lang.code()))
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

/// One row of the timeline, as printed.
#[derive(Serialize)]
struct TimelineRow {
    recorded_at: String,
    occurred_at: String,
    kind: String,
    purposes: String,
    basis: String,
    method: String,
    received_by: String,
    screen: String,
    evidence: String,
    leaf: u64,
}

/// One legal hold put on or lifted.
#[derive(Serialize)]
struct HoldRow {
    recorded_at: String,
    on: bool,
    order_date: String,
    order_reference: String,
    leaf: u64,
}

/// One screen or text consent was given on: its text when it is text, else its size.
#[derive(Serialize)]
struct Screen {
    id: String,
    name: String,
    sender_name_shown: String,
    prechecked: bool,
    language: String,
    text: Option<String>,
    bytes: usize,
    content_type: String,
    /// Its period of use: from its registration, to its retirement (`None`: still in use at
    /// the bundle's checkpoint), as the bundle's leaves state them.
    from: String,
    to: Option<String>,
}

fn timeline_row(bundle: &Bundle, event: &super::ProvenLeaf, lang: Lang) -> TimelineRow {
    let doc = event.document();
    let s = |k: &str| doc[k].as_str().unwrap_or("").to_string();
    // An erasure or relabel leaf is part of the chain: it names no event, purposes or basis.
    let erasure = doc["type"] == "erasure" || doc["type"] == "relabel";
    let kind = if erasure { s("type") } else { s("event") };
    TimelineRow {
        recorded_at: s("recorded_at"),
        occurred_at: s("occurred_at"),
        kind: label(lang, &kind),
        purposes: match erasure {
            true => String::new(),
            false => purposes(bundle, &doc["purposes"], lang),
        },
        basis: label(lang, &s("basis")),
        method: label(lang, &s("method")),
        received_by: match erasure {
            true => String::new(),
            false => format!(
                "{} ({})",
                doc["received_by"]["name"].as_str().unwrap_or(""),
                label(lang, doc["received_by"]["role"].as_str().unwrap_or(""))
            ),
        },
        screen: s("collection_point").chars().take(12).collect(),
        evidence: evidence_of(
            bundle,
            event.leaf_index,
            !doc["evidence_sha256"].is_null(),
            lang,
        ),
        leaf: event.leaf_index,
    }
}

/// Renders the report (`templates/report.html`).
pub fn render(bundle: &Bundle, report: &Report, lang: Lang) -> String {
    let timeline: Vec<TimelineRow> = bundle
        .events
        .iter()
        .map(|event| timeline_row(bundle, event, lang))
        .collect();
    // The tenant's legal holds (保全命令), as the bundle proves them complete.
    let holds: Vec<HoldRow> = bundle
        .holds
        .iter()
        .flat_map(|h| &h.leaves)
        .map(|leaf| {
            let doc = leaf.document();
            let s = |k: &str| doc[k].as_str().unwrap_or("").to_string();
            HoldRow {
                recorded_at: s("recorded_at"),
                on: doc["on"] == true,
                order_date: s("order_date"),
                order_reference: s("order_reference"),
                leaf: leaf.leaf_index,
            }
        })
        .collect();
    let screens: Vec<Screen> = bundle
        .collection_points
        .iter()
        .map(|template| {
            let doc = template.proof.document();
            let s = |k: &str| doc[k].as_str().unwrap_or("").to_string();
            let content = B64.decode(&template.content).unwrap_or_default();
            Screen {
                id: template.id.clone(),
                name: s("name"),
                sender_name_shown: s("sender_name_shown"),
                prechecked: doc["prechecked"] == true,
                language: s("language"),
                text: template
                    .content_type
                    .starts_with("text/")
                    .then(|| String::from_utf8_lossy(&content).into_owned()),
                bytes: content.len(),
                content_type: template.content_type.clone(),
                from: s("registered_at"),
                to: template
                    .retired
                    .as_ref()
                    .and_then(|r| r.document()["retired_at"].as_str().map(str::to_string)),
            }
        })
        .collect();
    let decisions: Vec<serde_json::Value> = bundle
        .decisions
        .iter()
        .map(|d| json!({"purpose": bundle.tenant.purpose_label(&d.purpose, lang.code()), "may_send": d.may_send, "status": label(lang, &d.status)}))
        .collect();
    let items: Vec<serde_json::Value> = report
        .items
        .iter()
        .map(|i| json!({"ok": i.ok, "what": i.what, "detail": i.detail}))
        .collect();
    templates::render(
        "report.html",
        minijinja::context! {
            lang => t(lang, "ja", "en"),
            passed => report.passed(),
            failed => report.items.iter().filter(|i| !i.ok).count(),
            sender => bundle.tenant.legal_name.as_str(),
            tenant => bundle.tenant.id.as_str(),
            email => bundle.subject.email.as_str(),
            vrf => bundle.subject.vrf_proof.is_some(),
            commitment => bundle.subject.commitment.as_str(),
            checkpoint => Serde(bundle.checkpoint.lines().take(3).collect::<Vec<_>>()),
            generated => bundle.generated_at.as_str(),
            size => bundle.checkpoint.lines().nth(1).unwrap_or("?"),
            decisions => Serde(&decisions),
            timeline => Serde(&timeline),
            holds => Serde(&holds),
            screens => Serde(&screens),
            items => Serde(&items),
            notes => Serde(&report.notes),
        },
    )
}
