//! Subject labels: the key every leaf of an address names it by. A label is the output of the
//! log's VRF (C2SP `vrf-r255`, RFC 9381 ECVRF over ristretto255 with SHA-512) over the tenant and
//! the normalised address, so there is exactly one label per address and log, and nobody without
//! the log's VRF key can link a label to an address. A bundle carries the VRF proof for its
//! address; a verifier recomputes the label from the proof and the log's VRF public key, which
//! the log commits to in its one `log_parameters` leaf (`docs/log-format.md`).
//!
//! Also here: the older salted commitments (subjects created before the log had a VRF key).
//! Not here: proving (the server's, with the secret key), the map (`map`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hash::Hash;

/// The `type` of the leaf that commits to the log's VRF public key.
pub const PARAMETERS_TYPE: &str = "log_parameters";
/// The VRF the log uses (the `vrf` member of its parameters leaf).
pub const VRF_SUITE: &str = "c2sp.org/vrf-r255";
/// Bytes of a VRF proof (`Gamma ‖ c ‖ s`).
pub const PROOF_BYTES: usize = 80;
/// What every VRF input starts with.
const INPUT_PREFIX: &[u8] = b"consent-ledger/label/v1";

/// The map key of the parameters leaf: `SHA-256("consent-ledger/log-parameters/v1")`. The leaf
/// names it as its `subject`, so the subject map says which parameters leaf is the latest, and
/// a parameters leaf with `prev: null` that the map names is the log's only one.
pub fn parameters_key() -> Hash {
    Sha256::digest(b"consent-ledger/log-parameters/v1").into()
}

/// The VRF input for an address: `"consent-ledger/label/v1" ‖ u64be(len(tenant)) ‖ tenant ‖
/// u64be(len(address)) ‖ address` (lengths in bytes, the address already normalised): no two
/// (tenant, address) pairs give the same input.
pub fn vrf_input(tenant_id: &str, address: &str) -> Vec<u8> {
    let mut input = INPUT_PREFIX.to_vec();
    for part in [tenant_id, address] {
        input.extend_from_slice(&(part.len() as u64).to_be_bytes());
        input.extend_from_slice(part.as_bytes());
    }
    input
}

/// The label a VRF output gives: its first 32 bytes.
pub fn label_of_output(beta: &[u8; 64]) -> Hash {
    beta[..32].try_into().expect("32 of 64 bytes")
}

/// The label of `address` of `tenant_id`, if `proof` is a valid VRF proof for it under
/// `public_key`; `None` for an invalid key or proof.
pub fn verify_label(
    public_key: &[u8; 32],
    tenant_id: &str,
    address: &str,
    proof: &[u8; PROOF_BYTES],
) -> Option<Hash> {
    let key = vrf_r255::PublicKey::from_bytes(*public_key)?;
    let proof = vrf_r255::Proof::from_bytes(*proof)?;
    let beta: Option<[u8; 64]> = key.verify(&vrf_input(tenant_id, address), &proof).into();
    beta.map(|b| label_of_output(&b))
}

/// The salted subject commitment of subjects created before the log had a VRF key:
/// `SHA-256("consent-ledger/subject/v1\n" ‖ tenant ‖ "\n" ‖ address ‖ "\n" ‖ salt)`. Accepted
/// only for histories that began before the log's parameters leaf (`docs/log-format.md`).
pub fn commitment(tenant_id: &str, address: &str, salt: &[u8]) -> Hash {
    Sha256::new()
        .chain_update(b"consent-ledger/subject/v1\n")
        .chain_update(tenant_id.as_bytes())
        .chain_update(b"\n")
        .chain_update(address.as_bytes())
        .chain_update(b"\n")
        .chain_update(salt)
        .finalize()
        .into()
}

/// The `log_parameters` leaf: the log's VRF public key, committed once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogParameters {
    /// Always `log_parameters`.
    #[serde(rename = "type")]
    pub leaf_type: String,
    /// Always 1.
    pub v: u32,
    /// [`parameters_key`], hex.
    pub subject: String,
    /// Always `null`: a log has one parameters leaf.
    pub prev: Option<u64>,
    /// Always [`VRF_SUITE`].
    pub vrf: String,
    /// The VRF public key, base64 of 32 bytes.
    pub vrf_public_key: String,
    /// When it was appended (RFC 3339).
    pub created_at: String,
}

impl LogParameters {
    /// The parameters leaf for a VRF public key.
    pub fn new(public_key: &[u8; 32], created_at: String) -> Self {
        use base64::{engine::general_purpose::STANDARD as B64, Engine};
        Self {
            leaf_type: PARAMETERS_TYPE.into(),
            v: 1,
            subject: crate::hex(&parameters_key()),
            prev: None,
            vrf: VRF_SUITE.into(),
            vrf_public_key: B64.encode(public_key),
            created_at,
        }
    }

    /// Parses a parameters leaf strictly: every member as [`LogParameters::new`] writes it, in
    /// its canonical form (so a member left out, such as `prev`, is refused, not defaulted).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let p: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let canonical = serde_json::to_value(&p)
            .ok()
            .and_then(|v| crate::jcs::canonicalize(&v).ok());
        if canonical.as_deref().map(str::as_bytes) != Some(bytes) {
            return Err(
                "not exactly the members of a log_parameters leaf, in canonical form".into(),
            );
        }
        if p.leaf_type != PARAMETERS_TYPE || p.v != 1 {
            return Err(format!("not a {PARAMETERS_TYPE} leaf of version 1"));
        }
        if p.subject != crate::hex(&parameters_key()) {
            return Err("its subject is not the parameters key".into());
        }
        if p.vrf != VRF_SUITE {
            return Err(format!("its VRF is {:?}, not {VRF_SUITE}", p.vrf));
        }
        p.public_key()?;
        Ok(p)
    }

    /// The VRF public key's 32 bytes.
    pub fn public_key(&self) -> Result<[u8; 32], String> {
        use base64::{engine::general_purpose::STANDARD as B64, Engine};
        B64.decode(&self.vrf_public_key)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .filter(|k| vrf_r255::PublicKey::from_bytes(*k).is_some())
            .ok_or_else(|| "its vrf_public_key is not a ristretto255 public key".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_length_prefixed_so_no_two_pairs_collide() {
        assert_ne!(vrf_input("ab", "c@d"), vrf_input("a", "bc@d"));
        assert_ne!(
            vrf_input("t", "bulk0125@example.jp\n"),
            vrf_input("t", "bulk0125@example.jp")
        );
        assert_eq!(
            &vrf_input("t", "a")[23..32],
            &[0, 0, 0, 0, 0, 0, 0, 1, b't']
        );
    }

    /// C2SP vrf-r255's test vector (`sdk/vectors/vrf-r255.json`, read by both SDKs).
    #[test]
    fn the_c2sp_vector_verifies_and_any_flipped_bit_fails() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../vectors/vrf-r255.json")).unwrap();
        let field = |name: &str| unhex(v[name].as_str().unwrap());
        let (pk, alpha, pi) = (field("public_key"), field("alpha"), field("proof"));
        let output = |pk: &[u8], alpha: &[u8], pi: &[u8]| -> Option<Vec<u8>> {
            let key = vrf_r255::PublicKey::from_bytes(pk.try_into().ok()?)?;
            let proof = vrf_r255::Proof::from_bytes(pi.try_into().ok()?)?;
            let beta: Option<[u8; 64]> = key.verify(alpha, &proof).into();
            beta.map(|b| b.to_vec())
        };
        assert_eq!(output(&pk, &alpha, &pi), Some(field("output")));
        for bit in 0..pi.len() * 8 {
            let mut bad = pi.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(output(&pk, &alpha, &bad), None, "bit {bit}");
        }
    }

    #[test]
    fn a_parameters_leaf_parses_back_and_refuses_other_members() {
        let pk = hex32("54136cd90d99fbd1d4e855d9556efea87ba0337f2a6ce22028d0f5726fcb854e");
        let p = LogParameters::new(&pk, "2026-12-02T00:00:00Z".into());
        let bytes = crate::jcs::canonicalize(&serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(LogParameters::parse(bytes.as_bytes()).unwrap(), p);
        assert!(
            LogParameters::parse(&serde_json::to_vec(&p).unwrap()).is_err(),
            "not canonical"
        );
        let mut doc = serde_json::to_value(&p).unwrap();
        doc["extra"] = serde_json::json!(1);
        assert!(LogParameters::parse(doc.to_string().as_bytes()).is_err());
        let mut doc = serde_json::to_value(&p).unwrap();
        doc["vrf_public_key"] = serde_json::json!(base64_zeroes());
        assert!(LogParameters::parse(doc.to_string().as_bytes()).is_err());
        let mut doc = serde_json::to_value(&p).unwrap();
        doc.as_object_mut().unwrap().remove("prev");
        let without_prev = crate::jcs::canonicalize(&doc).unwrap();
        assert!(LogParameters::parse(without_prev.as_bytes()).is_err());
    }

    fn base64_zeroes() -> String {
        use base64::{engine::general_purpose::STANDARD as B64, Engine};
        B64.encode([0u8; 32])
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len() / 2)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    fn hex32(text: &str) -> [u8; 32] {
        unhex(text).try_into().unwrap()
    }

    #[test]
    fn a_proof_for_one_address_gives_no_label_for_another() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../vectors/vrf-r255.json")).unwrap();
        let pk = hex32(v["public_key"].as_str().unwrap());
        let pi: [u8; 80] = unhex(v["proof"].as_str().unwrap()).try_into().unwrap();
        assert_eq!(verify_label(&pk, "t", "a@b.jp", &pi), None);
    }
}
