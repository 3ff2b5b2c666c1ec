//! C2SP `tlog-cosignature` (Ed25519, `cosignature/v1`): a witness's timestamped statement that a
//! checkpoint is the largest consistent tree it has seen of that log. A cosignature is one more
//! signed-note signature line, `— <witness name> base64(key id ‖ u64be(time) ‖ signature)`, over
//! `"cosignature/v1\ntime <time>\n" ‖ checkpoint body`; the key id is
//! `SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4]`. Also the witness key files: the private key
//! as `PRIVATE+KEY+<name>+<key id>+<base64(0x04 ‖ seed)>` (Go's note skey layout), the public
//! one as a vkey. No HTTP, no files here.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use super::note::{check_key_name, hex4, key_id_for, split_note, NoteError};

/// The signature-type byte of Ed25519 `cosignature/v1` keys.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;

/// The message a cosignature signs.
fn message(timestamp: u64, checkpoint_body: &str) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{checkpoint_body}")
}

/// A witness's private key.
pub struct Cosigner {
    name: String,
    key: SigningKey,
    id: [u8; 4],
}

impl Cosigner {
    /// A new random key named `name` (a schema-less URL, e.g. `witness.example.jp/w1`).
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| NoteError::BadVerifierKey("no randomness"))?;
        Self::from_seed(name, &seed)
    }

    fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        let key = SigningKey::from_bytes(seed);
        let id = key_id_for(name, ALG_COSIGNATURE_V1, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_string(),
            key,
            id,
        })
    }

    /// Reads `PRIVATE+KEY+<name>+<key id>+<base64(0x04 ‖ seed)>`.
    pub fn from_skey(text: &str) -> Result<Self, NoteError> {
        let bad = NoteError::BadVerifierKey;
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(bad("a witness key starts with PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected PRIVATE+KEY+<name>+<key id>+<key>"));
        };
        let material = B64.decode(material).map_err(|_| bad("key is not base64"))?;
        let [ALG_COSIGNATURE_V1, seed @ ..] = material.as_slice() else {
            return Err(bad("not a cosignature/v1 key (algorithm byte 0x04)"));
        };
        let seed: [u8; 32] = seed.try_into().map_err(|_| bad("a seed is 32 bytes"))?;
        let cosigner = Self::from_seed(name, &seed)?;
        if hex4(&cosigner.id) != id.to_ascii_lowercase() {
            return Err(bad("key id does not match the name and key"));
        }
        Ok(cosigner)
    }

    /// The private key text (keep it secret).
    pub fn to_skey(&self) -> String {
        let mut material = vec![ALG_COSIGNATURE_V1];
        material.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex4(&self.id),
            B64.encode(material)
        )
    }

    /// The verifier key, `<name>+<key id>+<base64(0x04 ‖ public key)>`, for policies.
    pub fn vkey(&self) -> String {
        let mut material = vec![ALG_COSIGNATURE_V1];
        material.extend_from_slice(self.key.verifying_key().as_bytes());
        format!("{}+{}+{}", self.name, hex4(&self.id), B64.encode(material))
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cosignature line (ending in a newline) for a checkpoint body, made at `timestamp`.
    pub fn cosign(&self, checkpoint_body: &str, timestamp: u64) -> String {
        let signature = self
            .key
            .sign(message(timestamp, checkpoint_body).as_bytes());
        let mut blob = self.id.to_vec();
        blob.extend_from_slice(&timestamp.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        format!("\u{2014} {} {}\n", self.name, B64.encode(blob))
    }
}

/// A witness's public key: verifies its cosignatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// Parses `<name>+<key id>+<base64(0x04 ‖ public key)>`.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let bad = NoteError::BadVerifierKey;
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected <name>+<key id>+<key>"));
        };
        check_key_name(name)?;
        let material = B64.decode(material).map_err(|_| bad("key is not base64"))?;
        let [ALG_COSIGNATURE_V1, key @ ..] = material.as_slice() else {
            return Err(bad(
                "not a witness key (cosignature/v1, algorithm byte 0x04)",
            ));
        };
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| bad("not a valid Ed25519 point"))?;
        let expected = key_id_for(name, ALG_COSIGNATURE_V1, key.as_bytes());
        if hex4(&expected) != id.to_ascii_lowercase() {
            return Err(bad("key id does not match the name and key"));
        }
        Ok(Self {
            name: name.to_string(),
            id: expected,
            key,
        })
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<name>+<key id>`: tells two keys of one name apart (a witness rotating its key).
    pub fn label(&self) -> String {
        format!("{}+{}", self.name, hex4(&self.id))
    }

    /// The raw public key (two vkeys wrapping the same key are the same witness).
    pub fn public_key(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// The time of this witness's valid cosignature on `note` (the latest, if several), or
    /// `None` when the note carries none. Lines by other keys are ignored.
    pub fn cosigned_at(&self, note: &str) -> Option<u64> {
        let (body, lines) = split_note(note).ok()?;
        lines
            .iter()
            .filter(|(name, blob)| *name == self.name && blob.len() == 76 && blob[..4] == self.id)
            .filter_map(|(_, blob)| {
                let timestamp = u64::from_be_bytes(blob[4..12].try_into().ok()?);
                let signature = Signature::from_slice(&blob[12..]).ok()?;
                (timestamp < 1 << 63
                    && self
                        .key
                        .verify(message(timestamp, body).as_bytes(), &signature)
                        .is_ok())
                .then_some(timestamp)
            })
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::NoteSigner;

    #[test]
    fn cosignatures_verify_and_key_files_round_trip() {
        let log = NoteSigner::new("example.jp/log", &[7; 32]).unwrap();
        let note = log
            .sign("example.jp/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
            .unwrap();
        let body = note.split("\n\n").next().unwrap().to_string() + "\n";
        let witness = Cosigner::generate("witness.example.jp/w1").unwrap();
        let again = Cosigner::from_skey(&witness.to_skey()).unwrap();
        assert_eq!(again.vkey(), witness.vkey());
        let verifier = CosignatureVerifier::parse(&witness.vkey()).unwrap();
        let cosigned = format!("{note}{}", witness.cosign(&body, 1_700_000_000));
        assert_eq!(verifier.cosigned_at(&cosigned), Some(1_700_000_000));
        // The log's own signature still verifies with the cosignature beside it.
        assert!(crate::note::NoteVerifier::parse(&log.verifier_key())
            .unwrap()
            .checkpoint(&cosigned)
            .is_ok());
        assert_eq!(verifier.cosigned_at(&note), None);
        // Another body, another time, another key: no.
        let other = cosigned.replacen("\n5\n", "\n6\n", 1);
        assert_eq!(verifier.cosigned_at(&other), None);
        let stranger = Cosigner::generate("witness.example.jp/w1").unwrap();
        let forged = format!("{note}{}", stranger.cosign(&body, 1));
        assert_eq!(verifier.cosigned_at(&forged), None);
        // A log key is not a witness key, and the other way round.
        assert!(CosignatureVerifier::parse(&log.verifier_key()).is_err());
        assert!(crate::note::NoteVerifier::parse(&witness.vkey()).is_err());
    }

    #[test]
    fn the_signed_message_is_the_c2sp_one() {
        // Checked by hand against tlog-cosignature: the message is the header line, the time
        // line, then the body; the blob is key id, big-endian time, signature.
        let witness = Cosigner::from_seed("w.example/1", &[1; 32]).unwrap();
        let body =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let line = witness.cosign(body, 1679315147);
        let blob = B64
            .decode(line.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        assert_eq!(blob.len(), 4 + 8 + 64);
        assert_eq!(
            u64::from_be_bytes(blob[4..12].try_into().unwrap()),
            1679315147
        );
        let signature = Signature::from_slice(&blob[12..]).unwrap();
        let message = format!("cosignature/v1\ntime 1679315147\n{body}");
        assert!(witness
            .key
            .verifying_key()
            .verify(message.as_bytes(), &signature)
            .is_ok());
    }
}
