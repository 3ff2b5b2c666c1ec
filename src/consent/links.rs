//! Signed links for recipients (double opt-in confirmation, unsubscribe): a token is
//! `base64url(JCS(payload)) "." base64url(HMAC-SHA256(key, that text))`. Unforgeable without the
//! key, no plaintext address inside, deterministic (the same event always gets the same link).
//! HMAC-SHA256 is `log::hash::hmac_sha256`.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64URL, Engine};
use serde_json::Value;

use crate::log::hash::hmac_sha256;
use crate::log::jcs::canonicalize;

/// Why a link token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkError {
    /// Malformed, tampered with, or signed by another key.
    #[error("this link is not valid")]
    Invalid,
    /// Past its expiry.
    #[error("this link has expired")]
    Expired,
}

/// Signs and checks link tokens.
#[derive(Clone)]
pub struct LinkSigner {
    key: [u8; 32],
}

impl LinkSigner {
    /// A signer with a 32-byte key.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// The token for `payload` (a JSON object of strings and integers).
    pub fn sign(&self, payload: &Value) -> String {
        let text =
            B64URL.encode(canonicalize(payload).expect("link payloads hold strings and integers"));
        let tag = hmac_sha256(&self.key, text.as_bytes());
        format!("{text}.{}", B64URL.encode(tag))
    }

    /// The payload of a valid token; its `"x"` member, if any, is the expiry (Unix seconds).
    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Value, LinkError> {
        let (text, tag) = token.split_once('.').ok_or(LinkError::Invalid)?;
        let tag = B64URL.decode(tag).map_err(|_| LinkError::Invalid)?;
        let expected = hmac_sha256(&self.key, text.as_bytes());
        // Constant time: every byte is compared whatever the first difference.
        if tag.len() != expected.len()
            || tag
                .iter()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0
        {
            return Err(LinkError::Invalid);
        }
        let payload: Value = B64URL
            .decode(text)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(LinkError::Invalid)?;
        if payload["x"]
            .as_i64()
            .is_some_and(|expiry| expiry < now_secs)
        {
            return Err(LinkError::Expired);
        }
        Ok(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_verify_and_tampering_fails() {
        let signer = LinkSigner::new([1; 32]);
        let token = signer.sign(&json!({"e": "event", "t": "tenant", "x": 100}));
        assert_eq!(signer.verify(&token, 50).unwrap()["e"], "event");
        assert_eq!(signer.verify(&token, 101), Err(LinkError::Expired));
        assert_eq!(
            LinkSigner::new([2; 32]).verify(&token, 50),
            Err(LinkError::Invalid)
        );
        let mut forged = token.clone();
        forged.replace_range(0..1, if token.starts_with('e') { "f" } else { "e" });
        assert_eq!(signer.verify(&forged, 50), Err(LinkError::Invalid));
        for garbage in ["", ".", "a.b", "no-dot", &format!("{token}x")] {
            assert!(signer.verify(garbage, 50).is_err(), "{garbage}");
        }
    }
}

#[cfg(test)]
mod unsubscribe_tests {
    use super::*;

    #[test]
    fn unsubscribe_tokens_round_trip_and_are_not_confirmations() {
        let links = Links::new([7; 32], "https://ledger.example.jp/");
        let target = UnsubscribeToken {
            tenant_id: "t1".into(),
            subject_id: "s1".into(),
            purpose: Some("news".into()),
            label: Some([9; 32]),
        };
        let (url, mailto) = links.unsubscribe(&target, None);
        let token = url.strip_prefix("https://ledger.example.jp/u/").unwrap();
        assert_eq!(
            mailto,
            format!("mailto:unsubscribe@ledger.example.jp?subject=unsubscribe%20{token}")
        );
        assert_eq!(links.unsubscribe_token(token, 0).unwrap(), target);
        assert_eq!(links.confirmation(token, 0), Err(LinkError::Invalid));
        let (expiring, _) = links.unsubscribe(&target, Some(10));
        let expiring = expiring.rsplit('/').next().unwrap();
        assert_eq!(
            links.unsubscribe_token(expiring, 11),
            Err(LinkError::Expired)
        );
        assert!(!url.contains('@'), "no address in the link");
        let (_, other) = Links::new([7; 32], "https://ledger.example.jp")
            .with_mailbox("optout@mail.example.jp")
            .unsubscribe(&target, None);
        assert!(other.starts_with("mailto:optout@mail.example.jp?subject=unsubscribe%20"));
    }
}

/// How long a double opt-in confirmation link works.
pub const CONFIRMATION_VALID_SECS: i64 = 14 * 86_400;

/// What an unsubscribe token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeToken {
    /// The tenant (sender).
    pub tenant_id: String,
    /// The recipient, as a subject id (never the address).
    pub subject_id: String,
    /// The purpose the mail was sent for; `None`: all mail of the tenant.
    pub purpose: Option<String>,
    /// The recipient's label, computed from the address when the link was made: the opt-out
    /// is recorded under it, whatever the subject's row says by then (`None` in older links).
    pub label: Option<[u8; 32]>,
}

/// The links the service hands out: where they point and how they are signed.
#[derive(Clone)]
pub struct Links {
    signer: LinkSigner,
    public_url: String,
    mailbox: String,
}

impl Links {
    /// Links under `public_url` (e.g. `https://ledger.example.jp`), signed with `key`; mailto
    /// unsubscribes go to `unsubscribe@<public_url's host>` unless [`Links::with_mailbox`].
    pub fn new(key: [u8; 32], public_url: &str) -> Self {
        let public_url = public_url.trim_end_matches('/').to_string();
        let host = url::Url::parse(&public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "localhost".into());
        Self {
            signer: LinkSigner::new(key),
            public_url,
            mailbox: format!("unsubscribe@{host}"),
        }
    }

    /// The same links, with mailto unsubscribes going to `mailbox`.
    pub fn with_mailbox(mut self, mailbox: &str) -> Self {
        self.mailbox = mailbox.to_string();
        self
    }

    /// The unsubscribe link for a recipient: the https URL (its page, and RFC 8058 one-click
    /// POST), the mailto URL (token in the subject), and the token. `expires` (Unix seconds):
    /// none by default.
    pub fn unsubscribe(&self, target: &UnsubscribeToken, expires: Option<i64>) -> (String, String) {
        let mut payload = serde_json::json!({
            "k": "unsub", "t": target.tenant_id, "s": target.subject_id,
        });
        if let Some(purpose) = &target.purpose {
            payload["p"] = purpose.as_str().into();
        }
        if let Some(label) = &target.label {
            payload["l"] = crate::hex(label).into();
        }
        if let Some(expires) = expires {
            payload["x"] = expires.into();
        }
        let token = self.signer.sign(&payload);
        (
            format!("{}/u/{token}", self.public_url),
            format!("mailto:{}?subject=unsubscribe%20{token}", self.mailbox),
        )
    }

    /// What a valid unsubscribe token names.
    pub fn unsubscribe_token(
        &self,
        token: &str,
        now_secs: i64,
    ) -> Result<UnsubscribeToken, LinkError> {
        let payload = self.signer.verify(token, now_secs)?;
        match (
            payload["k"].as_str(),
            payload["t"].as_str(),
            payload["s"].as_str(),
        ) {
            (Some("unsub"), Some(tenant), Some(subject)) => Ok(UnsubscribeToken {
                tenant_id: tenant.into(),
                subject_id: subject.into(),
                purpose: payload["p"].as_str().map(str::to_string),
                label: payload["l"].as_str().and_then(consent_ledger_sdk::unhex32),
            }),
            _ => Err(LinkError::Invalid),
        }
    }

    /// A keyed fingerprint of `data` (HMAC-SHA256 with a key of its own), for storing that a
    /// request was seen without storing anything that could be guessed back.
    pub fn fingerprint(&self, data: &[u8]) -> [u8; 32] {
        hmac_sha256(&hmac_sha256(&self.signer.key, b"fingerprint"), data)
    }

    /// The confirmation link of a pending opt-in leaf document, if it is one.
    pub fn confirmation_url(&self, leaf: &Value) -> Option<String> {
        if leaf["event"] != "opt_in" || leaf["confirmation_required"] != true {
            return None;
        }
        let recorded = time::OffsetDateTime::parse(
            leaf["recorded_at"].as_str()?,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()?;
        let token = self.signer.sign(&serde_json::json!({
            "k": "confirm",
            "t": leaf["tenant"],
            "e": leaf["event_id"],
            "x": recorded.unix_timestamp() + CONFIRMATION_VALID_SECS,
        }));
        Some(format!("{}/confirm/{token}", self.public_url))
    }

    /// The (tenant, event id) a confirmation token names.
    pub fn confirmation(&self, token: &str, now_secs: i64) -> Result<(String, String), LinkError> {
        let payload = self.signer.verify(token, now_secs)?;
        match (
            payload["k"].as_str(),
            payload["t"].as_str(),
            payload["e"].as_str(),
        ) {
            (Some("confirm"), Some(tenant), Some(event)) => {
                Ok((tenant.to_string(), event.to_string()))
            }
            _ => Err(LinkError::Invalid),
        }
    }
}
