//! Subjects: an address of a tenant, with the salt and commitment that leaves name it by.
//! Not here: finding subjects (`store`), their chains (`log::chain`).

use super::address::EmailAddress;
use super::new_id;

use crate::now_millis;
use crate::store::SubjectRow;

/// The subject commitment, `SHA-256("consent-ledger/subject/v1" ‖ 0x0A ‖ tenant ‖ 0x0A ‖ address
/// ‖ 0x0A ‖ salt)` (`docs/log-format.md`).
pub use consent_ledger_sdk::commitment;

/// A new subject row for `address`, with a fresh salt and its commitment.
pub(crate) fn new_subject(tenant_id: &str, address: &EmailAddress) -> SubjectRow {
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt).expect("the OS has randomness");
    SubjectRow {
        id: new_id(),
        tenant_id: tenant_id.to_string(),
        address: Some(address.as_str().to_string()),
        commitment: commitment(tenant_id, address.as_str(), &salt).to_vec(),
        salt: Some(salt.to_vec()),
        last_leaf_index: None,
        created_at: now_millis(),
        erased_at: None,
    }
}
