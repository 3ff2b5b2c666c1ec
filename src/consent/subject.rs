//! Subjects: an address of a tenant, and the key leaves name it by — its VRF label (the log's
//! `Labeler`), or for subjects from before labels, a salted commitment.
//! Not here: finding subjects (`store`), their chains (`log::chain`), labelling (`log::label`).

use super::address::EmailAddress;
use super::new_id;

use crate::log::hash::Hash;
use crate::now_millis;
use crate::store::{Repo, SubjectRow};

/// The salted subject commitment of subjects from before labels, `SHA-256("consent-ledger/
/// subject/v1" ‖ 0x0A ‖ tenant ‖ 0x0A ‖ address ‖ 0x0A ‖ salt)` (`docs/log-format.md`).
pub use consent_ledger_sdk::commitment;

/// A new subject row for `address`, named by its VRF `label`, with a fresh salt for its
/// evidence hashes (`evidence_sha256`).
pub(crate) fn new_subject(tenant_id: &str, address: &EmailAddress, label: Hash) -> SubjectRow {
    SubjectRow {
        id: new_id(),
        tenant_id: tenant_id.to_string(),
        address: Some(address.as_str().to_string()),
        commitment: label.to_vec(),
        salt: Some(new_salt().to_vec()),
        last_leaf_index: None,
        created_at: now_millis(),
        erased_at: None,
        vrf: true,
    }
}

/// A new subject row for `address` named by a salted commitment, as versions before labels
/// made them (test fixtures of such logs only: `LogSettings::pre_labels`).
pub(crate) fn new_salted_subject(tenant_id: &str, address: &EmailAddress) -> SubjectRow {
    let salt = new_salt();
    SubjectRow {
        id: new_id(),
        tenant_id: tenant_id.to_string(),
        address: Some(address.as_str().to_string()),
        commitment: commitment(tenant_id, address.as_str(), &salt).to_vec(),
        salt: Some(salt.to_vec()),
        last_leaf_index: None,
        created_at: now_millis(),
        erased_at: None,
        vrf: false,
    }
}

/// A fresh salt for a subject's evidence hashes.
pub(crate) fn new_salt() -> [u8; 32] {
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt).expect("the OS has randomness");
    salt
}

/// Gives an erased subject, found by its label, its address back: the address came back.
pub(crate) fn restore(
    r: &mut Repo<'_>,
    subject: &mut SubjectRow,
    address: &EmailAddress,
) -> Result<(), crate::store::StoreError> {
    let salt = new_salt();
    r.restore_address(&subject.id, address.as_str(), &salt)?;
    subject.address = Some(address.as_str().to_string());
    subject.salt = Some(salt.to_vec());
    Ok(())
}
