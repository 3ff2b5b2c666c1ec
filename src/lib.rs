//! consent-ledger: e-mail marketing consent events in an append-only, verifiable Merkle log.
//!
//! The crate is a library with a thin binary (`src/main.rs`). Modules, one per domain concept:
//! - [`auth`]: bearer tokens (JWT, EdDSA) and roles;
//! - [`consent`]: tenants, collection points, consent events and the send decision;
//! - [`evidence`]: evidence bundles for regulators and their offline verification;
//! - [`unsubscribe`]: unsubscribe links and headers, one-click / page / mail opt-outs, the
//!   display notice, opt-out webhooks;
//! - [`log`]: the Merkle log (RFC 9162 hashing, tiles, proofs), the sequencer and signed checkpoints;
//! - [`store`]: the database (SQLite or PostgreSQL, chosen by URL), migrations and every query;
//! - [`api`]: the HTTP layer (actix-web), problem+json errors and the OpenAPI document;
//! - [`cli`]: the command line (`serve`, `migrate`, tenants, tokens, `verify evidence`, `monitor`, …);
//! - [`config`]: the one configuration struct (file, environment, flags);
//! - [`idempotency`]: Idempotency-Key claims, replays and purges, with the one entry point
//!   handlers record through;
//! - [`workers`]: the background workers `serve` starts (webhooks, housekeeping, cosigning).
//!
//! The domain modules (`log`, `consent`, `unsubscribe`, `store`) know nothing of actix; `api` translates.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod consent;
pub mod error;
pub mod evidence;
pub mod idempotency;
pub mod log;
pub mod metrics;
pub mod store;
pub mod templates;
pub mod unsubscribe;
pub mod workers;

/// Most items on one page of a list.
pub const MAX_PAGE: i64 = 1000;

/// A list's page size: `limit`, 1–[`MAX_PAGE`], 100 if not given; or why not.
pub fn page_limit(limit: Option<i64>) -> Result<i64, String> {
    let limit = limit.unwrap_or(100);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(format!("limit is 1–{MAX_PAGE}"))
    }
}

/// A string cursor as given (`after`), checked to be one of ours; or why not.
pub fn checked_cursor(after: Option<&str>) -> Result<&str, String> {
    match after {
        None => Ok(""),
        Some(a) if consent::plain_id(a) => Ok(a),
        Some(_) => Err("after: pass the next_after of the previous page".into()),
    }
}

/// The cursor of the page after `rows` (fetched with `limit`): the last row's key when the page
/// is full, since more may follow; none on a shorter, last page.
pub fn next_cursor<T>(rows: &[T], limit: i64, key: impl Fn(&T) -> String) -> Option<String> {
    (rows.len() as i64 == limit)
        .then(|| rows.last().map(key))
        .flatten()
}

/// Milliseconds since the Unix epoch, the one clock the crate stores.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds as RFC 3339 UTC.
pub fn rfc3339(millis: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub use consent_ledger_sdk::{hex, unhex32};

/// Replaces the file at `path` with `bytes` so that a crash leaves the old or the new content,
/// never a mix: written beside it, synced, renamed over it, the directory synced.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let temp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Text escaped for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
