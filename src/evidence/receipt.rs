//! An evidence bundle rendered for systems that speak consent-record standards: a Kantara
//! Initiative Consent Receipt v1.1 (the address's current consent, one service purpose per
//! tenant purpose) and a W3C Data Privacy Vocabulary (DPV) JSON-LD record in the shape of
//! ISO/IEC TS 27560 (every event as a consent record, with its leaf index). Both name the log's
//! leaves and checkpoint; what proves them is the bundle (`verify evidence`), not these. Pure.

use serde_json::{json, Value};

use super::Bundle;
use consent_ledger_sdk::consent::Status;

fn leaf_documents(bundle: &Bundle) -> Vec<(u64, Value)> {
    bundle
        .events
        .iter()
        .map(|e| (e.leaf_index, e.document()))
        .collect()
}

fn unix_seconds(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .unwrap_or(0)
}

/// The checkpoint's first three lines (origin, size, root).
fn checkpoint_head(bundle: &Bundle) -> Vec<&str> {
    bundle.checkpoint.lines().take(3).collect()
}

/// A Kantara Consent Receipt v1.1 of the address's current consent.
pub fn kantara(bundle: &Bundle) -> Value {
    let docs = leaf_documents(bundle);
    let latest = docs.last().map(|(_, d)| d.clone()).unwrap_or(Value::Null);
    let consent_at = latest["recorded_at"]
        .as_str()
        .map(unix_seconds)
        .unwrap_or(0);
    let purposes: Vec<Value> = bundle
        .decisions
        .iter()
        .map(|d| {
            json!({
                "purpose": d.purpose,
                "purposeCategory": ["Marketing"],
                // Explicit consent only where the deciding state rests on it.
                "consentType": if matches!(Status::parse(&d.status), Some(Status::Granted | Status::Pending)) { "EXPLICIT" } else { "NONE" },
                "piiCategory": ["E-mail address"],
                "primaryPurpose": true,
                "termination": "Until the recipient refuses (opt-out), at any time",
                "thirdPartyDisclosure": false,
                "consentStatus": d.status,
                "maySend": d.may_send,
                "eventId": d.event_id,
            })
        })
        .collect();
    json!({
        "version": "KI-CR-v1.1.0",
        "jurisdiction": "JP",
        "consentTimestamp": consent_at,
        "collectionMethod": latest["method"],
        "consentReceiptID": format!("{}:{}", bundle.tenant.id, bundle.subject.commitment),
        "language": "ja",
        "piiPrincipalId": bundle.subject.email,
        "piiControllers": [{
            "piiController": bundle.tenant.legal_name,
            "onBehalf": false,
        }],
        "policyUrl": "",
        "services": [{"service": "E-mail marketing", "purposes": purposes}],
        "sensitive": false,
        "spiCat": [],
        "evidence": {
            "log": bundle.log.origin,
            "checkpoint": checkpoint_head(bundle),
            "leafIndexes": docs.iter().map(|(i, _)| i).collect::<Vec<_>>(),
            "format": super::FORMAT,
        },
    })
}

/// A DPV (ISO/IEC TS 27560 shaped) JSON-LD record: one consent record per event.
pub fn dpv(bundle: &Bundle) -> Value {
    let records: Vec<Value> = leaf_documents(bundle)
        .into_iter()
        .map(|(index, doc)| {
            let status = match (doc["event"].as_str(), doc["confirmation_required"] == true) {
                (Some("opt_in"), true) => "dpv:ConsentRequested",
                (Some("opt_in"), false) | (Some("confirm"), _) => "dpv:ConsentGiven",
                (Some("opt_out"), _) => "dpv:ConsentWithdrawn",
                _ => "dpv:ConsentStatus",
            };
            let purposes = match &doc["purposes"] {
                Value::Array(list) => list.clone(),
                _ => vec![json!("all")],
            };
            json!({
                "@id": format!("urn:consent-ledger:{}:leaf:{index}", bundle.log.origin),
                "@type": "dpv:ConsentRecord",
                "dpv:hasDataSubject": {"@type": "dpv:DataSubject", "dpv:hasIdentifier": bundle.subject.email},
                "dpv:hasDataController": {"@type": "dpv:DataController", "dpv:hasName": bundle.tenant.legal_name},
                "dpv:hasPurpose": purposes.iter().map(|p| json!({"@type": "dpv:Purpose", "dpv:hasName": p, "dpv:isSubTypeOf": "dpv:DirectMarketing"})).collect::<Vec<_>>(),
                "dpv:hasConsentStatus": status,
                "dpv:hasLegalBasis": match doc["basis"].as_str() {
                    Some("consent") | None => "dpv:Consent",
                    Some(_) => "dpv:LegitimateInterest",
                },
                "consentLedger:basis": doc["basis"],
                "dpv:hasTimestamp": doc["recorded_at"],
                "consentLedger:occurredAt": doc["occurred_at"],
                "consentLedger:method": doc["method"],
                "consentLedger:eventId": doc["event_id"],
                "consentLedger:collectionPoint": doc["collection_point"],
                "consentLedger:leafIndex": index,
            })
        })
        .collect();
    json!({
        "@context": {
            "dpv": "https://w3id.org/dpv#",
            "consentLedger": "https://github.com/consent-ledger/terms#",
        },
        "@graph": records,
        "consentLedger:checkpoint": checkpoint_head(bundle),
        "consentLedger:evidenceFormat": super::FORMAT,
    })
}
