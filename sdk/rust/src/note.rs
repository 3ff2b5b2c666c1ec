//! C2SP `signed-note` with Ed25519 signatures, and the C2SP `tlog-checkpoint` body it carries.
//!
//! A note is a UTF-8 body ending in a newline, a blank line, then signature lines
//! `— <key name> <base64(key id || signature)>`. The key id is the first four bytes of
//! `SHA-256(name || 0x0A || 0x01 || public key)`; a verifier key is written
//! `<name>+<hex key id>+<base64(0x01 || public key)>`. Witness cosignatures are in `cosign.rs`.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use super::hash::Hash;

/// The signature-algorithm byte for Ed25519 in C2SP signed-note.
const ALG_ED25519: u8 = 0x01;

/// What is wrong with a note, key or checkpoint.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    /// A key name is empty, or holds whitespace or `+`.
    #[error("invalid key name {0:?}: it must be non-empty and hold no spaces, newlines or '+'")]
    BadKeyName(String),
    /// A verifier key string does not parse.
    #[error("malformed verifier key: {0}")]
    BadVerifierKey(&'static str),
    /// The note text does not have the signed-note shape.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// No signature line by the expected key verified.
    #[error("no valid signature by {0}")]
    NotSigned(String),
    /// A signature line by the expected key (its name and key ID) does not verify.
    #[error("a signature line by {0} does not verify: the note is refused")]
    BadSignature(String),
    /// The body is not a valid checkpoint.
    #[error("malformed checkpoint: {0}")]
    BadCheckpoint(&'static str),
}

pub(super) fn check_key_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(NoteError::BadKeyName(name.to_string()));
    }
    Ok(())
}

/// `SHA-256(name || 0x0A || algorithm byte || public key)[:4]`.
pub(super) fn key_id_for(name: &str, algorithm: u8, public_key: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', algorithm]);
    h.update(public_key);
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    key_id_for(name, ALG_ED25519, public_key)
}

/// An Ed25519 note signer: the log's private key under its name (the checkpoint origin).
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    id: [u8; 4],
}

impl NoteSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn new(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        let key = SigningKey::from_bytes(seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_string(),
            key,
            id,
        })
    }

    /// A 32-byte key for another purpose, derived from this signing key:
    /// `HMAC-SHA256(seed, label)`. Stable for the life of the log.
    pub fn derive_key(&self, label: &str) -> [u8; 32] {
        super::hash::hmac_sha256(self.key.as_bytes(), label.as_bytes())
    }

    /// The key's name (for a log: its origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key, `<name>+<hex key id>+<base64(0x01 || public key)>`.
    pub fn verifier_key(&self) -> String {
        let mut material = vec![ALG_ED25519];
        material.extend_from_slice(self.key.verifying_key().as_bytes());
        format!("{}+{}+{}", self.name, hex4(&self.id), B64.encode(material))
    }

    /// The signed note for `body` (which must end in a newline).
    pub fn sign(&self, body: &str) -> Result<String, NoteError> {
        check_body(body)?;
        let signature = self.key.sign(body.as_bytes());
        let mut blob = self.id.to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{body}\n\u{2014} {} {}\n",
            self.name,
            B64.encode(blob)
        ))
    }
}

pub(super) fn hex4(id: &[u8; 4]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn check_body(body: &str) -> Result<(), NoteError> {
    if !body.ends_with('\n') {
        return Err(NoteError::Malformed("the body must end with a newline"));
    }
    if body.contains("\n\n") || body.starts_with('\n') {
        return Err(NoteError::Malformed(
            "the body must not contain a blank line",
        ));
    }
    Ok(())
}

/// An Ed25519 note verifier parsed from a verifier key string.
#[derive(Clone, Debug)]
pub struct NoteVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses `<name>+<hex key id>+<base64(0x01 || public key)>` and checks the id matches.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        // Names hold no '+', but the base64 key may: split from the left.
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id_hex), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::BadVerifierKey("expected <name>+<key id>+<key>"));
        };
        check_key_name(name)?;
        let material = B64
            .decode(material)
            .map_err(|_| NoteError::BadVerifierKey("key is not base64"))?;
        let [ALG_ED25519, key @ ..] = material.as_slice() else {
            return Err(NoteError::BadVerifierKey(
                "not an Ed25519 key (algorithm byte 0x01)",
            ));
        };
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| NoteError::BadVerifierKey("an Ed25519 key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| NoteError::BadVerifierKey("not a valid Ed25519 point"))?;
        let id = key_id(name, key.as_bytes());
        if id_hex.len() != 8 || hex4(&id) != id_hex.to_ascii_lowercase() {
            return Err(NoteError::BadVerifierKey(
                "key id does not match the name and key",
            ));
        }
        Ok(Self {
            name: name.to_string(),
            id,
            key,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw public key.
    pub fn public_key(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// The note's signature lines by this key (its name and key ID), as written: after
    /// [`NoteVerifier::verify`] succeeded, exactly those that verified.
    pub fn own_lines(&self, note: &str) -> String {
        use base64::{engine::general_purpose::STANDARD as B64, Engine};
        let Ok((_, lines)) = split_note(note) else {
            return String::new();
        };
        lines
            .into_iter()
            .filter(|(name, blob)| *name == self.name && blob[..4] == self.id)
            .map(|(name, blob)| format!("\u{2014} {name} {}\n", B64.encode(blob)))
            .collect()
    }

    /// Verifies `note` carries a valid signature by this key and returns its body. Signature
    /// lines by other keys are ignored (they may be witnesses' cosignatures); a line with this
    /// key's name and ID that fails to verify rejects the whole note, wherever it stands
    /// (C2SP signed-note: "If a signature from a known key fails to verify, clients SHOULD
    /// reject the whole note.").
    pub fn verify<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let (body, signatures) = split_note(note)?;
        let mut verified = false;
        for (_, blob) in signatures
            .into_iter()
            .filter(|(name, blob)| *name == self.name && blob[..4] == self.id)
        {
            let ok = Signature::from_slice(&blob[4..])
                .is_ok_and(|signature| self.key.verify(body.as_bytes(), &signature).is_ok());
            if !ok {
                return Err(NoteError::BadSignature(self.name.clone()));
            }
            verified = true;
        }
        if verified {
            Ok(body)
        } else {
            Err(NoteError::NotSigned(self.name.clone()))
        }
    }
}

/// A signature line: the key name and the decoded `key id ‖ signature` blob.
pub type SignatureLine<'a> = (&'a str, Vec<u8>);

/// Splits a signed note into its body (with its final newline) and its signature lines
/// (`(key name, decoded blob)`), checking every line is well formed (Go's `note.Open` rule).
pub fn split_note(note: &str) -> Result<(&str, Vec<SignatureLine<'_>>), NoteError> {
    // Like Go's note package: the signatures follow the *last* blank line.
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let (body, signatures) = (&note[..split + 1], &note[split + 2..]);
    if signatures.is_empty() || !signatures.ends_with('\n') {
        return Err(NoteError::Malformed("the note must end with a newline"));
    }
    let mut lines = Vec::new();
    for line in signatures.lines() {
        let rest = line.strip_prefix("\u{2014} ").ok_or(NoteError::Malformed(
            "a signature line must start with an em dash",
        ))?;
        let (name, blob) = rest.split_once(' ').ok_or(NoteError::Malformed(
            "a signature line is '— <name> <base64>'",
        ))?;
        check_key_name(name)
            .map_err(|_| NoteError::Malformed("a signature line has an invalid key name"))?;
        let blob = B64
            .decode(blob)
            .map_err(|_| NoteError::Malformed("a signature is not base64"))?;
        if blob.len() < 5 {
            return Err(NoteError::Malformed("a signature is too short"));
        }
        lines.push((name, blob));
    }
    Ok((body, lines))
}

impl NoteVerifier {
    /// Verifies a signed checkpoint: the signature, the body's format, and that its origin is
    /// this key's name (a checkpoint of another log is refused).
    pub fn checkpoint(&self, note: &str) -> Result<Checkpoint, String> {
        let body = self.verify(note).map_err(|e| e.to_string())?;
        let cp = Checkpoint::parse(body).map_err(|e| e.to_string())?;
        if cp.origin != self.name() {
            return Err(format!(
                "the checkpoint's origin {:?} is not the key's {:?}",
                cp.origin,
                self.name()
            ));
        }
        Ok(cp)
    }
}

/// A C2SP `tlog-checkpoint`: origin, tree size and root hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line, e.g. `ledger.example.jp/consent/2026`.
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The RFC 9162 root hash of the first `size` leaves.
    pub root: Hash,
}

impl Checkpoint {
    /// The note body: `<origin>\n<size>\n<base64 root>\n`.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a checkpoint body (extension lines after the root are allowed and ignored).
    pub fn parse(body: &str) -> Result<Self, NoteError> {
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(NoteError::BadCheckpoint("no origin line"))?;
        let size = lines
            .next()
            .ok_or(NoteError::BadCheckpoint("no size line"))?;
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(NoteError::BadCheckpoint("size is not a decimal number"));
        }
        let size = size
            .parse()
            .map_err(|_| NoteError::BadCheckpoint("size is too large"))?;
        let root = lines
            .next()
            .ok_or(NoteError::BadCheckpoint("no root line"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(NoteError::BadCheckpoint(
                "root is not a base64 32-byte hash",
            ))?;
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> NoteSigner {
        NoteSigner::new("example.com/log", &[7u8; 32]).unwrap()
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let s = signer();
        let cp = Checkpoint {
            origin: "example.com/log".into(),
            size: 42,
            root: [9u8; 32],
        };
        let note = s.sign(&cp.body()).unwrap();
        let v = NoteVerifier::parse(&s.verifier_key()).unwrap();
        let body = v.verify(&note).unwrap();
        assert_eq!(Checkpoint::parse(body).unwrap(), cp);
    }

    #[test]
    fn tampering_is_detected() {
        let s = signer();
        let note = s
            .sign("example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
            .unwrap();
        let v = NoteVerifier::parse(&s.verifier_key()).unwrap();
        let tampered = note.replacen("\n1\n", "\n2\n", 1);
        assert!(matches!(
            v.verify(&tampered),
            Err(NoteError::BadSignature(_))
        ));
        let other = NoteSigner::new("example.com/log", &[8u8; 32]).unwrap();
        assert!(NoteVerifier::parse(&other.verifier_key())
            .unwrap()
            .verify(&note)
            .is_err());
    }

    /// C2SP signed-note: "If a signature from a known key fails to verify, clients SHOULD reject
    /// the whole note." A line with the log's name and key ID but a bad signature refuses the
    /// note, before a valid line or after it.
    #[test]
    fn a_failing_line_by_the_known_key_rejects_the_note_wherever_it_stands() {
        let s = signer();
        let note = s
            .sign("example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
            .unwrap();
        let v = NoteVerifier::parse(&s.verifier_key()).unwrap();
        let (body, lines) = note.split_at(note.rfind("\n\n").unwrap() + 2);
        let line = lines.trim_end();
        let (prefix, sig) = line.rsplit_once(' ').unwrap();
        let mut blob = B64.decode(sig).unwrap();
        blob[10] ^= 1;
        let bad = format!("{prefix} {}", B64.encode(&blob));
        for lines in [format!("{bad}\n{line}\n"), format!("{line}\n{bad}\n")] {
            let tampered = format!("{body}{lines}");
            assert!(
                matches!(v.verify(&tampered), Err(NoteError::BadSignature(_))),
                "{tampered}"
            );
        }
        // A line by another key (a witness's cosignature, say) is ignored, wherever it stands.
        let foreign = format!("\u{2014} witness.example/w {}", B64.encode([7u8; 76]));
        let with_foreign = format!("{body}{foreign}\n{line}\n");
        assert_eq!(v.verify(&with_foreign).unwrap(), &body[..body.len() - 1]);
    }

    /// The published vector of Go's golang.org/x/mod/sumdb/note tests.
    #[test]
    fn go_note_package_vector() {
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
        let signed = format!("{text}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n");
        let v = NoteVerifier::parse(vkey).unwrap();
        assert_eq!(v.verify(&signed).unwrap(), text);
        // The private key of the vector: its seed is the base64 after the algorithm byte.
        let skey = B64
            .decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
            .unwrap();
        let signer = NoteSigner::new("PeterNeumann", skey[1..].try_into().unwrap()).unwrap();
        assert_eq!(signer.verifier_key(), vkey);
        assert_eq!(signer.sign(text).unwrap(), signed);
        assert!(v.verify(text).is_err());
        assert!(v.verify(&signed[..signed.len() - 1]).is_err());
        assert!(v.verify(&format!("{signed}Unexpected line.\n")).is_err());
        assert!(NoteVerifier::parse(
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        )
        .is_err());
    }

    #[test]
    fn key_id_must_match() {
        let vkey = signer().verifier_key();
        let mut parts: Vec<&str> = vkey.split('+').collect();
        parts[1] = "00000000";
        assert!(NoteVerifier::parse(&parts.join("+")).is_err());
    }

    #[test]
    fn rejects_bad_names_and_bodies() {
        assert!(NoteSigner::new("has space", &[1; 32]).is_err());
        assert!(NoteSigner::new("a+b", &[1; 32]).is_err());
        assert!(signer().sign("no newline").is_err());
        assert!(Checkpoint::parse("o\n01\nAAAA\n").is_err());
    }
}
