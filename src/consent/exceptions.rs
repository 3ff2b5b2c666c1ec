//! The evidence each exception basis must come with (Art. 3(1)(ii)–(iv); the guideline: each
//! exception is a claim about a specific fact). An opt-in on `address_notified` says how and when
//! the address was given in writing; on `business_relationship`, the transaction and its date;
//! on `address_published`, where it is published, when that was checked, and that no refusal
//! was published beside it. Refused otherwise, naming every missing field. The evidence is
//! stored with the event and committed by the leaf's `evidence_sha256`, like all evidence. Not
//! here: what the basis then does (the SDK's rules).

use super::model::{Basis, Evidence};
use super::validate::calendar_date;
use crate::error::DomainError;
use consent_ledger_sdk::consent::required_evidence;

const DAY_MS: i64 = 86_400_000;

/// Checks that an opt-in on `basis`, claimed at `occurred_at` (Unix ms), carries the evidence
/// its basis needs; `consent` needs none here.
pub fn check_basis_evidence(
    basis: Basis,
    evidence: Option<&Evidence>,
    occurred_at: i64,
) -> Result<(), DomainError> {
    let none = Evidence::default();
    let e = evidence.unwrap_or(&none);
    let given = serde_json::to_value(e).expect("evidence serialises");
    // The fields are the SDK's (the verifiers note an opt-in whose bundle lacks them).
    let needed: Vec<(&str, bool)> = required_evidence(basis)
        .iter()
        .map(|field| (*field, !given[*field].is_null()))
        .collect();
    let dates: Vec<(&str, &Option<String>)> = match basis {
        Basis::Consent => return Ok(()),
        Basis::AddressNotified => vec![("notified_on", &e.notified_on)],
        Basis::BusinessRelationship => vec![("transaction_date", &e.transaction_date)],
        Basis::AddressPublished => vec![("published_checked_on", &e.published_checked_on)],
    };
    let missing: Vec<String> = needed
        .iter()
        .filter(|(_, given)| !given)
        .map(|(field, _)| format!("evidence.{field}"))
        .collect();
    if !missing.is_empty() {
        return Err(DomainError::Invalid(format!(
            "an opt-in on basis {} must say what it rests on: {} missing",
            basis.as_str(),
            missing.join(", ")
        )));
    }
    if e.no_refusal_published == Some(false) {
        return Err(DomainError::Invalid(
            "an address published beside a refusal of advertising mail is no basis \
             (Art. 3(1)(iv)): record consent instead"
                .into(),
        ));
    }
    for (field, date) in dates {
        let date = date.as_deref().unwrap_or_default();
        let at = calendar_date(&format!("evidence.{field}"), date)?;
        // A day of slack: a date in Japan is up to nine hours ahead of the UTC instant.
        if at > occurred_at + DAY_MS {
            return Err(DomainError::Invalid(format!(
                "evidence.{field} ({date}) is after the event it supports (occurred_at)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::model::WrittenNotice;

    const NOW: i64 = 1_790_000_000_000;

    fn refused(basis: Basis, e: &Evidence) -> String {
        check_basis_evidence(basis, Some(e), NOW)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn each_exception_names_its_missing_evidence() {
        let none = Evidence::default();
        let notified = refused(Basis::AddressNotified, &none);
        assert!(
            notified.contains("evidence.notified_by, evidence.notified_on missing"),
            "{notified}"
        );
        let business = refused(Basis::BusinessRelationship, &none);
        assert!(
            business.contains("evidence.transaction_reference, evidence.transaction_date"),
            "{business}"
        );
        let published = refused(Basis::AddressPublished, &none);
        assert!(
            published.contains(
                "evidence.published_in, evidence.published_checked_on, evidence.no_refusal_published"
            ),
            "{published}"
        );
        assert!(check_basis_evidence(Basis::Consent, None, NOW).is_ok());
    }

    #[test]
    fn complete_evidence_is_accepted() {
        let e = Evidence {
            notified_by: Some(WrittenNotice::BusinessCard),
            notified_on: Some("2026-09-01".into()),
            ..Evidence::default()
        };
        assert!(check_basis_evidence(Basis::AddressNotified, Some(&e), NOW).is_ok());
    }

    #[test]
    fn a_published_refusal_or_a_date_after_the_event_is_refused() {
        let published = Evidence {
            published_in: Some("https://example.jp/company".into()),
            published_checked_on: Some("2026-09-01".into()),
            no_refusal_published: Some(false),
            ..Evidence::default()
        };
        assert!(refused(Basis::AddressPublished, &published).contains("Art. 3(1)(iv)"));
        let later = Evidence {
            transaction_reference: Some("order 1234".into()),
            transaction_date: Some("2030-01-01".into()),
            ..Evidence::default()
        };
        assert!(refused(Basis::BusinessRelationship, &later).contains("after the event"));
        let not_a_date = Evidence {
            transaction_date: Some("2026-02-30".into()),
            ..later
        };
        assert!(refused(Basis::BusinessRelationship, &not_a_date).contains("2026-03-01"));
    }
}
