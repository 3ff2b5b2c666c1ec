//! The log's VRF key, which names every subject: [`Labeler`] computes an address's label (when a
//! subject is created, on the request's worker, outside the writer) and proves it (when a bundle
//! asks). The label is the first 32 bytes of the C2SP `vrf-r255` output over
//! `label::vrf_input(tenant, address)`; the parameters leaf commits to the public key.
//!
//! Not here: verifying labels (the SDK's `label`), storing the key (`store`), the leaf that
//! commits to it (`sequencer`).

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

use super::hash::Hash;
use super::LogError;
use consent_ledger_sdk::label::{label_of_output, vrf_input, PROOF_BYTES};

/// `suite_string` of C2SP vrf-r255.
const SUITE: &[u8] = b"\xFFc2sp.org/vrf-r255";

/// The log's VRF secret key, with its public key.
pub struct Labeler {
    secret: vrf_r255::SecretKey,
    x: Scalar,
    public: [u8; 32],
}

impl Labeler {
    /// The key of a stored secret (a canonical scalar, as [`Labeler::generate`] makes).
    pub fn new(secret: &[u8]) -> Result<Self, LogError> {
        let bytes: [u8; 32] = secret
            .try_into()
            .map_err(|_| LogError::Corrupt("the stored VRF secret is not 32 bytes".into()))?;
        let key: Option<vrf_r255::SecretKey> = vrf_r255::SecretKey::from_bytes(bytes).into();
        let secret =
            key.ok_or_else(|| LogError::Corrupt("the stored VRF secret is not a key".into()))?;
        let x: Option<Scalar> = Scalar::from_canonical_bytes(bytes).into();
        Ok(Self {
            public: vrf_r255::PublicKey::from(secret).to_bytes(),
            x: x.expect("a key's scalar is canonical"),
            secret,
        })
    }

    /// A fresh secret: a uniformly random non-zero scalar.
    pub fn generate() -> Result<[u8; 32], LogError> {
        loop {
            let mut wide = [0u8; 64];
            getrandom::fill(&mut wide)
                .map_err(|e| LogError::Corrupt(format!("no randomness for a key: {e}")))?;
            let x = Scalar::from_bytes_mod_order_wide(&wide);
            if x != Scalar::ZERO {
                return Ok(x.to_bytes());
            }
        }
    }

    /// The VRF public key (the parameters leaf's).
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// The label of an address: the VRF output alone, without its proof (RFC 9381 sections 5.1
    /// and 5.2: `Gamma = x·encode_to_curve(Y, alpha)`, `beta = Hash(suite ‖ 0x03 ‖ Gamma ‖
    /// 0x00)`), about half the cost of a proof. Equal to what verifying [`Labeler::prove`] gives.
    pub fn label(&self, tenant_id: &str, address: &str) -> Hash {
        let h = Sha512::new()
            .chain_update(SUITE)
            .chain_update([0x82])
            .chain_update(self.public)
            .chain_update(vrf_input(tenant_id, address))
            .finalize();
        let gamma = self.x * RistrettoPoint::from_uniform_bytes(&h.into());
        let beta = Sha512::new()
            .chain_update(SUITE)
            .chain_update([0x03])
            .chain_update(gamma.compress().as_bytes())
            .chain_update([0x00])
            .finalize();
        label_of_output(&beta.into())
    }

    /// The VRF proof of an address's label.
    pub fn prove(&self, tenant_id: &str, address: &str) -> [u8; PROOF_BYTES] {
        self.secret.prove(&vrf_input(tenant_id, address)).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use consent_ledger_sdk::label::verify_label;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_label_is_what_verifying_its_proof_gives(
            seed in any::<[u8; 32]>(),
            tenant in "[a-z0-9]{1,12}",
            address in "[a-z0-9.]{1,20}@[a-z]{1,10}\\.jp",
        ) {
            let secret = Scalar::from_bytes_mod_order(seed);
            prop_assume!(secret != Scalar::ZERO);
            let labeler = Labeler::new(&secret.to_bytes()).unwrap();
            let proof = labeler.prove(&tenant, &address);
            let verified = verify_label(&labeler.public_key(), &tenant, &address, &proof);
            prop_assert_eq!(verified, Some(labeler.label(&tenant, &address)));
            // Another address (always another: a prefix added) does not verify with it.
            let other = format!("z{address}");
            prop_assert_eq!(verify_label(&labeler.public_key(), &tenant, &other, &proof), None);
        }
    }

    #[test]
    fn generated_secrets_are_keys() {
        assert!(Labeler::new(&Labeler::generate().unwrap()).is_ok());
        assert!(Labeler::new(&[0; 32]).is_err());
    }
}
