//! An evidence bundle rendered for systems that speak consent-record standards:
//! - **ISO/IEC TS 27560 records in W3C DPV 2.x JSON-LD** ([`dpv`]): one record per event, every
//!   property and class a term of the DPV vocabulary (`https://w3id.org/dpv#`), values that are
//!   things as IRIs (`{"@id": …}`), never as strings. A consent event is a `dpv:ConsentRecord`
//!   with its status (given, requested, withdrawn — or, for an opt-in an earlier refusal binds,
//!   `dpv:ConsentStatusInvalidForProcessing` with the reason); an opt-in on an exception of the
//!   Act (Art. 3(1)(ii)–(iv)) is a `dpv:DataProcessingRecord` on that legal basis, not consent.
//!   Each names the notice (screen) by its SHA-256, the controller with its contacts, the
//!   commissioning party (送信委託者) and 送信責任者, the article of the Act, retention and the
//!   way to withdraw. `all` is not a purpose: a refusal of all lists the tenant's purposes.
//! - **Kantara Consent Receipt v1.1** ([`kantara`], legacy): the purposes whose consent is in
//!   force, valid against the Kantara schema — which needs the controller's contact, postal
//!   address, e-mail, telephone and privacy policy URL, so a tenant without them is refused.
//!
//! Both say what the bundle's leaves say; what proves it is the bundle (`verify evidence`),
//! not these. Pure. Format notes: `docs/evidence-format.md`.

use serde_json::{json, Value};

use super::outcomes::{outcomes, Outcome};
use super::Bundle;
use crate::error::DomainError;
use consent_ledger_sdk::consent::{
    self, Basis, ConsentLeaf, EventKind, LegalHoldLeaf, Method, ReceiverRole, Status,
};

/// The Act, as records name it.
const ACT_JA: &str = "特定電子メールの送信の適正化等に関する法律（平成十四年法律第二十六号）";
/// Our IRIs for the Act and its articles (no official IRI exists; DPV has none either).
const ACT_IRI: &str = "urn:consent-ledger:law:jp:act-2002-26";

fn method_text(method: Method) -> &'static str {
    match method {
        Method::WebForm => "web form",
        Method::Email => "e-mail",
        Method::Paper => "paper",
        Method::Phone => "telephone",
        Method::InPerson => "in person",
        Method::Import => "imported from a legacy system",
        Method::OneClick => "one click in the mail client (RFC 8058)",
    }
}

/// The legal basis node of an opt-in: the article of the Act (typed `dpv:LegalBasis`, under
/// the Act), and for prior consent also `dpv:Consent`.
fn legal_basis(basis: Basis) -> Value {
    let (item, ja) = match basis {
        Basis::Consent => ("i", "第3条第1項第1号（事前の同意）"),
        Basis::AddressNotified => ("ii", "第3条第1項第2号（書面によるアドレスの通知）"),
        Basis::BusinessRelationship => ("iii", "第3条第1項第3号（取引関係）"),
        Basis::AddressPublished => ("iv", "第3条第1項第4号（営業のために公表されたアドレス）"),
    };
    let article = json!({
        "@id": format!("{ACT_IRI}:art-3-1-{item}"),
        "@type": "dpv:LegalBasis",
        "dpv:hasName": format!("{ACT_JA} {ja}"),
        "dpv:hasApplicableLaw": act(),
    });
    match basis {
        Basis::Consent => json!([{"@id": "dpv:Consent"}, article]),
        _ => article,
    }
}

fn act() -> Value {
    json!({"@id": ACT_IRI, "@type": "dpv:Law", "dpv:hasName": ACT_JA})
}

/// The controller: the tenant with its contacts as the service states them.
fn controller(bundle: &Bundle) -> Value {
    let c = &bundle.tenant.contacts;
    let contacts: Vec<&String> = [&c.complaint_contact, &c.phone, &c.privacy_policy_url]
        .into_iter()
        .flatten()
        .collect();
    let mut node = json!({
        "@id": format!("urn:consent-ledger:tenant:{}", bundle.tenant.id),
        "@type": ["dpv:DataController", "dpv:Organisation"],
        "dpv:hasName": bundle.tenant.legal_name,
    });
    if !contacts.is_empty() {
        node["dpv:hasContact"] = json!(contacts);
    }
    if let Some(address) = &c.postal_address {
        node["dpv:hasAddress"] = json!(address);
    }
    node
}

fn purpose_node(bundle: &Bundle, purpose: &str) -> Value {
    json!({
        "@id": format!("urn:consent-ledger:tenant:{}:purpose:{purpose}", bundle.tenant.id),
        "@type": ["dpv:Purpose", "dpv:DirectMarketing"],
        "dpv:hasName": bundle.tenant.purpose_label(purpose, "ja"),
        "dpv:hasIdentifier": purpose,
    })
}

/// The purposes an event names (an opt-in a refusal partly binds: those it had effect for);
/// for `all`, every purpose the tenant has (or, failing those, every purpose the decisions
/// name).
fn purposes_of(bundle: &Bundle, leaf: &ConsentLeaf, outcome: &Outcome) -> Vec<String> {
    match leaf.purposes.list() {
        Some(list) => match outcome {
            Outcome::Bound {
                purposes,
                all: false,
            } => list
                .iter()
                .filter(|p| !purposes.contains(p))
                .cloned()
                .collect(),
            _ => list.to_vec(),
        },
        None if !bundle.tenant.purposes.is_empty() => bundle
            .tenant
            .purposes
            .iter()
            .map(|p| p.purpose.clone())
            .collect(),
        None => bundle.decisions.iter().map(|d| d.purpose.clone()).collect(),
    }
}

/// The notice an event was given on: the collection point, named by the SHA-256 of its
/// content (RFC 6920 `ni:` IRI) and its version id.
fn notice(bundle: &Bundle, id: &str) -> Option<Value> {
    let template = bundle.collection_points.iter().find(|t| t.id == id)?;
    let doc = template.proof.document();
    let hex = doc["content_sha256"].as_str()?;
    let bytes = consent_ledger_sdk::unhex32(hex)?;
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    Some(json!({
        "@id": format!("ni:///sha-256;{}", URL_SAFE_NO_PAD.encode(bytes)),
        "@type": "dpv:ConsentNotice",
        "dpv:hasName": doc["name"],
        "dpv:hasIdentifier": [id, format!("sha-256:{hex}")],
    }))
}

/// The status node of a consent event.
fn status(leaf: &ConsentLeaf, outcome: &Outcome, subject: &str) -> Value {
    let (kind, justification) = match (leaf.event, outcome) {
        (EventKind::OptIn, Outcome::Bound { all: true, .. }) => (
            "dpv:ConsentStatusInvalidForProcessing",
            Some(
                "an earlier refusal binds it (Art. 3(3)): recorded, but not consent in force"
                    .to_string(),
            ),
        ),
        // Given for the purposes it lists (`hasPurpose`: only those), not for the bound ones.
        (EventKind::OptIn, Outcome::Bound { purposes, .. }) => (
            "dpv:ConsentGiven",
            Some(format!(
                "for {} an earlier refusal binds it (Art. 3(3)): no consent there",
                purposes.join(", ")
            )),
        ),
        (EventKind::OptIn, Outcome::Pending) => ("dpv:ConsentRequested", None),
        (EventKind::OptOut, _) => ("dpv:ConsentWithdrawn", None),
        (EventKind::OptIn, Outcome::NoChange) => (
            "dpv:ConsentStatusInvalidForProcessing",
            Some(
                "it changed nothing: consent was already given, and it awaits a confirmation"
                    .to_string(),
            ),
        ),
        (_, Outcome::NoChange) => (
            "dpv:ConsentStatusInvalidForProcessing",
            Some("it changed nothing: no opt-in awaited this confirmation".to_string()),
        ),
        _ => ("dpv:ConsentGiven", None),
    };
    let mut node = json!({
        "@type": kind,
        "dpv:isIndicatedAtTime": {"@value": leaf.occurred_at, "@type": "xsd:dateTime"},
        "dpv:isIndicatedBy": {"@id": subject},
        "dpv:hasIndicationMethod": method_text(leaf.method),
    });
    if let Some(why) = justification {
        node["dpv:hasJustification"] = json!(why);
    }
    node
}

/// The tenant's legal holds, parsed, in log order.
fn holds(bundle: &Bundle) -> Vec<(u64, LegalHoldLeaf)> {
    use base64::{engine::general_purpose::STANDARD as B64, Engine};
    bundle
        .holds
        .iter()
        .flat_map(|h| &h.leaves)
        .filter_map(|l| {
            let bytes = B64.decode(&l.leaf).ok()?;
            Some((l.leaf_index, LegalHoldLeaf::parse(&bytes).ok()?))
        })
        .collect()
}

/// ISO/IEC TS 27560 records in DPV 2.x JSON-LD: one per event (see the module comment).
pub fn dpv(bundle: &Bundle) -> Result<Value, DomainError> {
    let subject = format!("mailto:{}", bundle.subject.email);
    let holds = holds(bundle);
    let withdraw = {
        let mut node = json!({"@type": "dpv:WithdrawConsent"});
        if let Some(contact) = &bundle.tenant.contacts.optout_contact {
            node["dpv:isExercisedAt"] = json!(contact);
        }
        node
    };
    let records: Vec<Value> = outcomes(bundle)
        .into_iter()
        .filter_map(|o| o.event.map(|e| (o.leaf_index, e)))
        .map(|(index, (leaf, outcome))| {
            let exception = leaf.basis.filter(|b| *b != Basis::Consent);
            let mut record = json!({
                "@id": format!("urn:consent-ledger:{}:leaf:{index}", bundle.log.origin),
                "@type": if exception.is_some() { "dpv:DataProcessingRecord" } else { "dpv:ConsentRecord" },
                "dpv:hasIdentifier": leaf.event_id,
                "dpv:hasDataSubject": {"@id": subject, "@type": "dpv:DataSubject", "dpv:hasIdentifier": bundle.subject.email},
                "dpv:hasDataController": controller(bundle),
                "dpv:hasPurpose": purposes_of(bundle, &leaf, &outcome).iter().map(|p| purpose_node(bundle, p)).collect::<Vec<_>>(),
                "dpv:hasApplicableLaw": act(),
                "dpv:hasConsentControl": withdraw,
                "dpv:hasStorageCondition": {
                    "@type": "dpv:StorageDuration",
                    "dpv:hasDuration": format!("P{}D", consent::retention_days_at(&holds, index)),
                },
            });
            match exception {
                // Not consent: the record rests on the exception's article, with its time.
                Some(basis) => {
                    record["dpv:hasLegalBasis"] = legal_basis(basis);
                    if let Outcome::Bound { .. } = outcome {
                        record["dpv:hasConsentStatus"] = status(&leaf, &outcome, &subject);
                    }
                }
                None => {
                    record["dpv:hasConsentStatus"] = status(&leaf, &outcome, &subject);
                    if let Some(basis) = leaf.basis {
                        record["dpv:hasLegalBasis"] = legal_basis(basis);
                    }
                }
            }
            if let Some(n) = leaf.collection_point.as_deref().and_then(|id| notice(bundle, id)) {
                record["dpv:hasNotice"] = n;
            }
            if let Some(party) = &bundle.tenant.contacts.responsible_party {
                record["dpv:hasResponsibleEntity"] = json!({"@type": "dpv:Entity", "dpv:hasName": party});
            }
            // Received by the commissioning party (送信委託者): it and the sender decide together.
            if leaf.received_by.role == ReceiverRole::CommissioningParty {
                record["dpv:hasJointDataControllers"] = json!({
                    "@type": "dpv:JointDataControllers",
                    "dpv:hasDataController": [controller(bundle), {
                        "@type": ["dpv:DataController", "dpv:Organisation"],
                        "dpv:hasName": leaf.received_by.name,
                    }],
                });
            }
            record
        })
        .collect();
    Ok(json!({
        "@context": {
            "dpv": "https://w3id.org/dpv#",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
        },
        "@graph": records,
    }))
}

/// Unix seconds of an RFC 3339 time.
fn unix_seconds(rfc3339: &str) -> i64 {
    consent::millis(rfc3339).map_or(0, |ms| ms.div_euclid(1000))
}

/// A Kantara Consent Receipt v1.1 of the consent in force: the purposes granted now, each from
/// the time consent was originally given (an import's original time, not the import's).
/// Refused when the tenant lacks a contact field the receipt requires.
pub fn kantara(bundle: &Bundle) -> Result<Value, DomainError> {
    let c = &bundle.tenant.contacts;
    let email = [&c.complaint_contact, &c.optout_contact]
        .into_iter()
        .flatten()
        .map(|e| e.strip_prefix("mailto:").unwrap_or(e))
        .find(|e| crate::consent::address::EmailAddress::parse(e).is_ok());
    let missing: Vec<&str> = [
        ("postal_address", c.postal_address.is_none()),
        (
            "complaint_contact or optout_contact (an e-mail address)",
            email.is_none(),
        ),
        ("phone", c.phone.is_none()),
        ("privacy_policy_url", c.privacy_policy_url.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, absent)| absent.then_some(name))
    .collect();
    if !missing.is_empty() {
        return Err(DomainError::Conflict(format!(
            "a Kantara consent receipt names the controller's contacts; the tenant has no {}: \
             set them with PATCH /v1/tenants/{}",
            missing.join(", "),
            bundle.tenant.id
        )));
    }
    let events: Vec<(u64, ConsentLeaf)> = outcomes(bundle)
        .into_iter()
        .filter_map(|o| o.event.map(|(leaf, _)| (o.leaf_index, leaf)))
        .collect();
    let deciding = |event_id: &Option<String>| {
        events
            .iter()
            .find(|(_, l)| Some(&l.event_id) == event_id.as_ref())
            .map(|(_, l)| l)
    };
    // A consent receipt: the purposes whose consent is in force; one mailed on an exception of
    // the Act rests on no consent, and is not in it.
    let granted: Vec<(&super::PurposeDecision, &ConsentLeaf)> = bundle
        .decisions
        .iter()
        .filter(|d| d.may_send && Status::parse(&d.status) == Some(Status::Granted))
        .filter_map(|d| Some((d, deciding(&d.event_id)?)))
        .filter(|(_, leaf)| leaf.basis.is_none_or(|b| b == Basis::Consent))
        .collect();
    let purposes: Vec<Value> = granted
        .iter()
        .map(|(d, _)| {
            json!({
                "purpose": bundle.tenant.purpose_label(&d.purpose, "ja"),
                "purposeCategory": ["Marketing"],
                "consentType": "EXPLICIT",
                "piiCategory": ["E-mail address"],
                "primaryPurpose": true,
                "termination": "Until the recipient refuses (opt-out), which takes effect at once (Art. 3(3))",
                "thirdPartyDisclosure": false,
            })
        })
        .collect();
    // When consent was first given: the earliest deciding event, at the time it counts from.
    let first = granted
        .iter()
        .map(|(_, l)| l)
        .min_by_key(|l| unix_seconds(l.counts_from()));
    let size = bundle.checkpoint.lines().nth(1).unwrap_or("0");
    Ok(json!({
        "version": "KI-CR-v1.1.0",
        "jurisdiction": "JP",
        "consentTimestamp": first.map_or(0, |l| unix_seconds(l.counts_from())),
        "collectionMethod": first.map_or("none", |l| method_text(l.method)),
        "consentReceiptID": format!("{}:{}:{size}", bundle.tenant.id, bundle.subject.commitment),
        "language": "ja",
        "piiPrincipalId": bundle.subject.email,
        "piiControllers": [{
            "piiController": bundle.tenant.legal_name,
            "contact": c.responsible_party.as_deref().unwrap_or(&bundle.tenant.legal_name),
            "address": {"streetAddress": c.postal_address, "addressCountry": "JP"},
            "email": email,
            "phone": c.phone,
            "piiControllerUrl": c.privacy_policy_url,
            "onBehalf": false,
        }],
        "policyUrl": c.privacy_policy_url,
        "services": [{"service": "E-mail marketing", "purposes": purposes}],
        "sensitive": false,
        "spiCat": [],
        "evidence": {
            "log": bundle.log.origin,
            "checkpoint": bundle.checkpoint.lines().take(3).collect::<Vec<_>>(),
            "leafIndexes": events.iter().map(|(i, _)| i).collect::<Vec<_>>(),
            "format": super::FORMAT,
        },
    }))
}
