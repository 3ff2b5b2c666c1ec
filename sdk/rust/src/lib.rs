//! consent-ledger's Rust SDK: everything needed to check the ledger's proofs offline, with
//! nothing but the log's published verifier key — and a small typed client for its HTTP API.
//!
//! The consent rules, once: [`address`] (how an address is validated and normalised),
//! [`consent`] (the vocabulary, the `consent_event` leaf, and the pure
//! function that applies an event to a subject's state).
//!
//! Verification (no network, no clock): [`hash`] (RFC 9162 hashing), [`jcs`] (canonical leaf
//! JSON), [`note`] (C2SP signed notes, checkpoints), [`proof`] (inclusion and consistency proofs),
//! [`tiles`] (C2SP tile addressing), [`label`] (subject labels: the log's VRF), [`map`] (the subject map that makes bundles complete),
//! [`cosign`] and [`policy`] (witness cosignatures, tlog-policy quorums), and [`evidence`]
//! (bundle types and [`evidence::verify::verify`]). The server uses this crate for all of them:
//! there is one verifier. [`client`] (feature `client`, on by default) speaks the HTTP API.

pub mod address;
#[cfg(feature = "client")]
pub mod campaign;
pub mod client;
pub mod consent;
pub mod cosign;
pub mod evidence;
pub mod hash;
pub mod jcs;
pub mod label;
pub mod map;
pub mod note;
pub mod policy;
pub mod proof;
pub mod tenants;
pub mod tiles;

pub use label::commitment;

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 lower-case hex digits as 32 bytes (`None` for anything else).
pub fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(bytes)
}

/// A plain decimal `u64` as the C2SP formats write them: digits only, no leading zeroes.
pub fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text.len() == 1 || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}
