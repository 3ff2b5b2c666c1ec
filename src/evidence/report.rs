//! The printable report of an evidence bundle: one self-contained HTML page (Japanese or
//! English, laid out for A4) that an inspector reads unaided. First the verdict; then, in plain
//! words, what was proven, by whom and as of when; the send decision (only for a bundle that
//! verified); each event — what happened, when (claimed, recorded, witnessed no later than), how
//! (the evidence), on which screen, on which article of the Act, and whether it had effect; the
//! screens as the person saw them (HTML in a sandboxed frame with scripts off, images and PDFs
//! as such); and, in an appendix, every technical check. Made by `consent-ledger verify evidence
//! … --report FILE` from the bundle and its verification, so the verdict is the verifier's own.
//!
//! Rust prepares values (codes, times, data URLs); the words, Japanese and English, are in
//! `templates/report.html`. Pure: no database, no network.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use minijinja::value::Serde;
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::{format_description::BorrowedFormatItem, macros::format_description, UtcOffset};

use super::outcomes::{outcomes, EventOutcome, Outcome};
use super::verify::Report;
use super::{Bundle, ProvenLeaf};
use crate::templates;
use consent_ledger_sdk::consent::{self, EventKind};

/// Report language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Japanese: times in Japan Standard Time.
    Ja,
    /// English: times in UTC.
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

/// A time as the report prints it: in the reader's zone, and the exact UTC instant.
#[derive(Serialize, Default)]
struct When {
    /// E.g. `2026年12月3日 06:53:13` (JST) or `2026-12-02 21:53:13 UTC`.
    local: String,
    /// The RFC 3339 UTC instant, exactly as recorded.
    utc: String,
}

const JA_FORMAT: &[BorrowedFormatItem<'static>] = format_description!(
    "[year]年[month padding:none]月[day padding:none]日 [hour]:[minute]:[second]"
);
const EN_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");

/// `millis` (Unix ms) as the reader reads it.
fn when_millis(lang: Lang, millis: i64) -> When {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
    else {
        return When::default();
    };
    let utc = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let local = match lang {
        Lang::Ja => at
            .to_offset(UtcOffset::from_hms(9, 0, 0).expect("+09:00 is an offset"))
            .format(JA_FORMAT),
        Lang::En => at.format(EN_FORMAT),
    };
    When {
        local: local.unwrap_or_default(),
        utc,
    }
}

/// An RFC 3339 time as the reader reads it (kept as given when it is not one).
fn when(lang: Lang, rfc3339: &str) -> When {
    match consent::millis(rfc3339) {
        Some(ms) => When {
            utc: rfc3339.to_string(),
            ..when_millis(lang, ms)
        },
        None => When {
            local: rfc3339.to_string(),
            utc: rfc3339.to_string(),
        },
    }
}

/// One piece of an event's evidence: its key (the template names it) and value.
#[derive(Serialize)]
struct Fact {
    key: String,
    value: String,
}

/// Whether an event had effect, as the consent rules replayed over the bundle's events say.
#[derive(Serialize)]
struct Effect {
    /// `effective`, `pending` (awaiting its confirmation), `bound` (a refusal in force binds
    /// it: nothing changed), `partly_bound`, `no_change` (e.g. a confirmation with nothing
    /// pending), or `none` for a leaf that is not a consent event.
    code: &'static str,
    /// The purposes a refusal bound, by their labels.
    bound: String,
}

/// One event of the bundle, as printed.
#[derive(Serialize)]
struct EventView {
    /// Its place in the address's history, from 1.
    n: usize,
    /// `opt_in`, `pending_opt_in`, `opt_out`, `confirm`, `erasure` or `relabel`.
    kind: String,
    /// The basis of an opt-in (`consent`, `address_notified`, …).
    basis: Option<String>,
    /// The item of Art. 3(1) the basis rests on; for a refusal the template cites Art. 3(3).
    article_item: Option<u8>,
    purposes: String,
    all_purposes: bool,
    method: String,
    receiver_role: String,
    receiver_name: String,
    claimed: When,
    recorded: When,
    imported: bool,
    /// The witnesses' bound, when they gave one: recorded no later than this.
    witnessed_by: Option<When>,
    witness: Option<String>,
    evidence: Vec<Fact>,
    /// The evidence was recorded but an erasure leaf of the chain says it was erased.
    evidence_erased: bool,
    /// The evidence was recorded, and the bundle does not carry it, though nothing says it was
    /// erased.
    evidence_withheld: bool,
    /// The screen (collection point) it was given on: its index in `screens`, from 1.
    screen: Option<usize>,
    screen_id: Option<String>,
    effect: Effect,
    leaf: u64,
}

/// How a screen's content is shown.
#[derive(Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
enum Shown {
    /// HTML, in a sandboxed frame (`srcdoc`, scripts off).
    Html(String),
    /// Plain text.
    Text(String),
    /// An image or a PDF, as a `data:` URL.
    Image(String),
    Pdf(String),
    /// Anything else: only its size.
    Other,
}

/// One screen or text consent was given on.
#[derive(Serialize)]
struct Screen {
    n: usize,
    id: String,
    name: String,
    channel: String,
    sender_name_shown: String,
    prechecked: bool,
    language: String,
    content_type: String,
    bytes: usize,
    /// SHA-256 of the content, hex (the leaf commits to it).
    sha256: String,
    shown: Shown,
    /// Its period of use: from its registration, to its retirement (`None`: in use at the
    /// bundle's checkpoint).
    from: When,
    to: Option<When>,
    /// Whether the bundle proves the end of its period (the map's word on its retirement key).
    period_proven: bool,
}

/// One legal hold put on or lifted.
#[derive(Serialize)]
struct HoldRow {
    recorded: When,
    on: bool,
    order_date: String,
    order_reference: String,
    leaf: u64,
}

/// One statement of the plain-words summary, and how the checks behind it came out.
#[derive(Serialize)]
struct Finding {
    /// `signed`, `complete`, `address`, `lawful`, `witnessed`, `anchored`, `decision`: the
    /// template words each.
    topic: &'static str,
    /// `ok` (every check behind it held), `fail` (one failed), `warn` (they held, but the
    /// verifier noted what they could not show) or `none` (no check of it ran).
    state: &'static str,
    /// The failed checks behind it (their technical names), if any.
    failed: Vec<String>,
    /// The verifier's notes on it, if any.
    warnings: Vec<String>,
}

/// The topic a verifier item belongs to, by the fixed part of its name (a purpose key, which
/// the bundle chooses, appears only in decision items: those are classified first).
fn topic(what: &str) -> &'static str {
    let has = |words: &[&str]| words.iter().any(|w| what.contains(w));
    if what.starts_with("decision")
        || what.starts_with("the decision")
        || what.starts_with("campaign")
    {
        "decision"
    } else if has(&["trusted checkpoint", "as recent as"]) {
        "anchored"
    } else if has(&["time:", "quorum", "policy", "extends the bundle", "witness"]) {
        "witnessed"
    } else if has(&[
        "subject label",
        "address asked",
        "salted commitment is this",
    ]) {
        "address"
    } else if has(&[
        "complete",
        ": chain",
        "subject map",
        "last leaf",
        "relabelling",
        "older history",
        "commitment is closed",
    ]) {
        "complete"
    } else if has(&[
        "law allowed",
        "evidence",
        "collection point",
        "period of use",
        "retention",
        "retirement",
    ]) {
        "lawful"
    } else {
        "signed"
    }
}

/// The topic a verifier's note warns about, if it weakens one: what the checks could not show.
fn note_topic(note: &str) -> Option<&'static str> {
    let has = |words: &[&str]| words.iter().any(|w| note.contains(w));
    if has(&[
        "does not prove its period of use",
        "whose evidence does not show",
        "the bundle does not carry",
        "back-dated",
    ]) {
        Some("lawful")
    } else if has(&[
        "not bounded from below",
        "cosigned by no witness of the policy",
    ]) {
        Some("witnessed")
    } else {
        None
    }
}

/// The plain-words summary: each topic, in reading order, with what failed or was noted. A
/// report of a bundle that failed lists only what failed.
fn findings(report: &Report) -> Vec<Finding> {
    let all = [
        "signed",
        "complete",
        "address",
        "lawful",
        "witnessed",
        "anchored",
        "decision",
    ];
    all.into_iter()
        .filter_map(|t| {
            let items: Vec<_> = report
                .items
                .iter()
                .filter(|i| topic(&i.what) == t)
                .collect();
            let failed: Vec<String> = items
                .iter()
                .filter(|i| !i.ok)
                .map(|i| i.what.clone())
                .collect();
            let warnings: Vec<String> = report
                .notes
                .iter()
                .filter(|n| note_topic(n) == Some(t))
                .cloned()
                .collect();
            // The optional topics appear only when their checks ran.
            let optional = matches!(t, "witnessed" | "anchored" | "decision");
            if items.is_empty() && optional {
                return None;
            }
            let state = match (items.is_empty(), failed.is_empty(), warnings.is_empty()) {
                (true, ..) => "none",
                (_, false, _) => "fail",
                (_, true, false) => "warn",
                (_, true, true) => "ok",
            };
            Some(Finding {
                topic: t,
                state,
                failed,
                warnings,
            })
        })
        .filter(|f| report.passed() || f.state == "fail")
        .collect()
}

fn purposes_text(bundle: &Bundle, list: &[String], lang: Lang) -> String {
    let sep = match lang {
        Lang::Ja => "、",
        Lang::En => ", ",
    };
    list.iter()
        .map(|p| labelled(bundle, p, lang))
        .collect::<Vec<_>>()
        .join(sep)
}

/// A purpose as printed: its label (the operator's word) with its key (what the log commits
/// to), or the key alone.
fn labelled(bundle: &Bundle, purpose: &str, lang: Lang) -> String {
    match bundle.tenant.purpose_label(purpose, lang.code()) {
        label if label == purpose => purpose.to_string(),
        label => format!("{label} ({purpose})"),
    }
}

/// The evidence recorded for the event at `leaf_index`, piece by piece.
fn evidence_of(bundle: &Bundle, leaf_index: u64) -> Option<Vec<Fact>> {
    let given = bundle
        .subject
        .evidence
        .iter()
        .find(|e| e.leaf_index == leaf_index)?;
    let object = given.evidence.as_object()?;
    Some(
        object
            .iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(key, value)| Fact {
                key: key.clone(),
                value: match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            })
            .collect(),
    )
}

/// An event's outcome as printed.
fn effect(bundle: &Bundle, outcome: &Outcome, lang: Lang) -> Effect {
    let (code, bound) = match outcome {
        Outcome::Effective => ("effective", String::new()),
        Outcome::Pending => ("pending", String::new()),
        Outcome::NoChange => ("no_change", String::new()),
        Outcome::Bound { purposes, all } => (
            if *all { "bound" } else { "partly_bound" },
            purposes_text(bundle, purposes, lang),
        ),
    };
    Effect { code, bound }
}

fn event_view(
    bundle: &Bundle,
    report: &Report,
    erased: &std::collections::HashSet<u64>,
    n: usize,
    (event, outcome): (&ProvenLeaf, &EventOutcome),
    lang: Lang,
) -> EventView {
    let doc = event.document();
    let s = |k: &str| doc[k].as_str().unwrap_or("").to_string();
    let bound = report.bounds.get(&event.leaf_index);
    let witnessed = bound.and_then(|b| b.no_later_than.as_ref());
    let screen_id = doc["collection_point"].as_str().map(str::to_string);
    let mut view = EventView {
        n,
        kind: s("type"),
        basis: None,
        article_item: None,
        purposes: String::new(),
        all_purposes: false,
        method: String::new(),
        receiver_role: String::new(),
        receiver_name: String::new(),
        claimed: when(lang, &s("occurred_at")),
        recorded: when(lang, &s("recorded_at")),
        imported: false,
        witnessed_by: witnessed.map(|(ms, _)| when_millis(lang, *ms)),
        witness: witnessed.map(|(_, name)| name.clone()),
        evidence: Vec::new(),
        evidence_erased: false,
        evidence_withheld: false,
        screen: screen_id.as_ref().and_then(|id| {
            bundle
                .collection_points
                .iter()
                .position(|c| &c.id == id)
                .map(|i| i + 1)
        }),
        screen_id,
        effect: Effect {
            code: "none",
            bound: String::new(),
        },
        leaf: event.leaf_index,
    };
    let Some((leaf, outcome)) = &outcome.event else {
        // An erasure or a relabelling: part of the chain, naming no event.
        return view;
    };
    view.kind = match (leaf.event, leaf.confirmation_required) {
        (EventKind::OptIn, true) => "pending_opt_in",
        (EventKind::OptIn, false) => "opt_in",
        (EventKind::OptOut, _) => "opt_out",
        (EventKind::Confirm, _) => "confirm",
    }
    .to_string();
    view.basis = leaf.basis.map(|b| b.as_str().to_string());
    view.article_item = leaf.basis.map(|b| b.article_item());
    match leaf.purposes.list() {
        Some(list) => view.purposes = purposes_text(bundle, list, lang),
        None => view.all_purposes = true,
    }
    view.method = serde_json::to_value(leaf.method)
        .ok()
        .and_then(|m| m.as_str().map(str::to_string))
        .unwrap_or_default();
    view.receiver_role = doc["received_by"]["role"].as_str().unwrap_or("").into();
    view.receiver_name = leaf.received_by.name.clone();
    view.imported = leaf.imported;
    match evidence_of(bundle, event.leaf_index) {
        Some(facts) => view.evidence = facts,
        None if leaf.evidence_sha256.is_some() => {
            view.evidence_erased = erased.contains(&event.leaf_index);
            view.evidence_withheld = !view.evidence_erased;
        }
        None => {}
    }
    view.effect = effect(bundle, outcome, lang);
    view
}

/// The content types shown as images (scripts in SVG do not run in `<img>`).
const IMAGES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/svg+xml",
];

fn screen(n: usize, template: &super::ProvenTemplate, lang: Lang) -> Screen {
    let doc = template.proof.document();
    let s = |k: &str| doc[k].as_str().unwrap_or("").to_string();
    let content = B64.decode(&template.content).unwrap_or_default();
    let media = template
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let data_url = || format!("data:{media};base64,{}", template.content);
    let text = || String::from_utf8_lossy(&content).into_owned();
    let shown = match media.as_str() {
        "text/html" => Shown::Html(text()),
        m if m.starts_with("text/") => Shown::Text(text()),
        "application/pdf" => Shown::Pdf(data_url()),
        m if IMAGES.contains(&m) => Shown::Image(data_url()),
        _ => Shown::Other,
    };
    Screen {
        n,
        id: template.id.clone(),
        name: s("name"),
        channel: s("channel"),
        sender_name_shown: s("sender_name_shown"),
        prechecked: doc["prechecked"] == true,
        language: s("language"),
        content_type: template.content_type.clone(),
        bytes: content.len(),
        sha256: consent_ledger_sdk::hex(&Sha256::digest(&content)),
        shown,
        from: when(lang, &s("registered_at")),
        to: template
            .retired
            .as_ref()
            .and_then(|r| r.document()["retired_at"].as_str().map(|t| when(lang, t))),
        period_proven: template.retirement.is_some(),
    }
}

/// What the verification anchored the bundle to, besides its own checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// Nothing: the bundle's checkpoint alone.
    None,
    /// A checkpoint the reader saved earlier (`--trusted-checkpoint`).
    Trusted,
    /// The log's latest checkpoint, fetched from the operator now (`--url`).
    Latest,
}

impl Anchor {
    fn code(self) -> &'static str {
        match self {
            Anchor::None => "none",
            Anchor::Trusted => "trusted",
            Anchor::Latest => "latest",
        }
    }
}

/// Renders the report (`templates/report.html`), of a bundle verified with `anchor`.
pub fn render(bundle: &Bundle, report: &Report, lang: Lang, anchor: Anchor) -> String {
    let passed = report.passed();
    let outcomes = outcomes(bundle);
    // The events whose evidence an erasure leaf of the chain says it erased.
    let erased: std::collections::HashSet<u64> = bundle
        .events
        .iter()
        .filter_map(|e| {
            let bytes = B64.decode(&e.leaf).ok()?;
            consent_ledger_sdk::consent::ErasureLeaf::parse(&bytes).ok()
        })
        .flat_map(|e| e.evidence_erased)
        .collect();
    let events: Vec<EventView> = bundle
        .events
        .iter()
        .zip(&outcomes)
        .enumerate()
        .map(|(i, event)| event_view(bundle, report, &erased, i + 1, event, lang))
        .collect();
    let holds: Vec<HoldRow> = bundle
        .holds
        .iter()
        .flat_map(|h| &h.leaves)
        .map(|leaf| {
            let doc = leaf.document();
            let s = |k: &str| doc[k].as_str().unwrap_or("").to_string();
            HoldRow {
                recorded: when(lang, &s("recorded_at")),
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
        .enumerate()
        .map(|(i, t)| screen(i + 1, t, lang))
        .collect();
    // A bundle that did not verify proves nothing: no decision is printed for it.
    let decisions: Vec<serde_json::Value> = match passed {
        true => bundle
            .decisions
            .iter()
            .map(|d| {
                serde_json::json!({
                    "purpose": labelled(bundle, &d.purpose, lang),
                    "may_send": d.may_send,
                    "status": d.status,
                })
            })
            .collect(),
        false => Vec::new(),
    };
    let witnesses: Vec<String> = {
        let mut names: Vec<String> = report
            .bounds
            .values()
            .filter_map(|b| b.no_later_than.as_ref().map(|(_, n)| n.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    };
    let latest_witnessed = report
        .bounds
        .values()
        .filter_map(|b| b.no_later_than.as_ref().map(|(ms, _)| *ms))
        .max()
        .map(|ms| when_millis(lang, ms));
    let mut lines = bundle.checkpoint.lines();
    let origin = lines.next().unwrap_or("").to_string();
    let size = lines.next().unwrap_or("?").to_string();
    templates::render(
        "report.html",
        minijinja::context! {
            lang => lang.code(),
            passed,
            failed => report.items.iter().filter(|i| !i.ok).count(),
            findings => Serde(findings(report)),
            anchor => anchor.code(),
            witnessed_checked => report.items.iter().any(|i| topic(&i.what) == "witnessed"),
            sender => bundle.tenant.legal_name.as_str(),
            tenant => bundle.tenant.id.as_str(),
            responsible => bundle.tenant.contacts.responsible_party.as_deref(),
            email => bundle.subject.email.as_str(),
            vrf => bundle.subject.vrf_proof.is_some(),
            commitment => bundle.subject.commitment.as_str(),
            origin,
            size,
            verifier_key => bundle.log.verifier_key.as_str(),
            checkpoint => Serde(bundle.checkpoint.lines().collect::<Vec<_>>()),
            generated => Serde(when(lang, &bundle.generated_at)),
            witnesses => Serde(&witnesses),
            latest_witnessed => Serde(latest_witnessed),
            decisions => Serde(&decisions),
            events => Serde(&events),
            holds => Serde(&holds),
            screens => Serde(&screens),
            items => Serde(report.items.iter().map(|i| serde_json::json!({"ok": i.ok, "what": i.what, "detail": i.detail})).collect::<Vec<_>>()),
            notes => Serde(&report.notes),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_times_are_in_japan_standard_time() {
        let at = when(Lang::Ja, "2026-12-02T21:53:13.427Z");
        assert_eq!(at.local, "2026年12月3日 06:53:13");
        assert_eq!(at.utc, "2026-12-02T21:53:13.427Z");
    }

    #[test]
    fn english_times_are_in_utc() {
        assert_eq!(
            when(Lang::En, "2026-12-02T21:53:13.427Z").local,
            "2026-12-02 21:53:13 UTC"
        );
    }

    #[test]
    fn a_verifier_item_belongs_to_one_plain_topic() {
        assert_eq!(topic("event 0 (leaf 3): inclusion"), "signed");
        assert_eq!(
            topic("complete: no event of this address is missing"),
            "complete"
        );
        assert_eq!(topic("event 1: the law allowed it"), "lawful");
        assert_eq!(
            topic("time: no event claims a time after the witnesses saw it"),
            "witnessed"
        );
        assert_eq!(topic("consistent with the trusted checkpoint"), "anchored");
        assert_eq!(topic("subject label"), "address");
    }
}
