//! The consent rules, once: the vocabulary (event kinds, legal bases, methods, who received
//! it), the `consent_event` leaf as `docs/log-format.md` defines it, the status of a purpose,
//! and the one pure function, [`apply`], that applies an event to a subject's state and says
//! what changed. The server writes its state rows from `apply`'s result, the verifier replays
//! bundles with [`replay`], and the TypeScript SDK ports exactly this (both checked on the
//! golden vectors in `sdk/vectors/`).
//!
//! The rules: an opt-out withdraws its purposes (or all); an opt-in grants (pending while it
//! awaits confirmation, and then never taking back a grant); a refusal binds every basis
//! (Art. 3(3)), so after it only fresh consent — basis `consent`, claimed later than the
//! refusal — grants again; a confirmation grants what is pending (of the opt-in it names, if
//! it names one). A purpose's effective state is the later, by leaf, of its own and the
//! all-purposes state.
//!
//! Not here: validation of what a sender submits (the server's), storage, proofs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Consent given (or an exception basis recorded).
    OptIn,
    /// Refusal (Art. 3(3)): takes effect at once, per purpose or for all.
    OptOut,
    /// The second step of a double opt-in.
    Confirm,
}

/// The legal basis of an opt-in (Art. 3(1) and its exceptions (ii)–(iv)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Prior consent.
    Consent,
    /// The recipient notified the address in writing (e.g. a business card).
    AddressNotified,
    /// An existing business relationship.
    BusinessRelationship,
    /// The address is published for business use.
    AddressPublished,
}

impl Basis {
    /// Its name in the API, the leaves and the rows.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Consent => "consent",
            Basis::AddressNotified => "address_notified",
            Basis::BusinessRelationship => "business_relationship",
            Basis::AddressPublished => "address_published",
        }
    }

    /// The item of the Act's Art. 3(1) it rests on: (i) prior consent, (ii) an address
    /// notified in writing, (iii) a business relationship, (iv) a published address.
    pub fn article_item(self) -> u8 {
        match self {
            Basis::Consent => 1,
            Basis::AddressNotified => 2,
            Basis::BusinessRelationship => 3,
            Basis::AddressPublished => 4,
        }
    }

    /// The basis of a name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Basis::Consent,
            Basis::AddressNotified,
            Basis::BusinessRelationship,
            Basis::AddressPublished,
        ]
        .into_iter()
        .find(|b| b.as_str() == name)
    }
}

/// How the event was collected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// A web form.
    WebForm,
    /// An e-mail.
    Email,
    /// Paper.
    Paper,
    /// Telephone.
    Phone,
    /// In person.
    InPerson,
    /// Imported from a legacy system.
    Import,
    /// RFC 8058 one-click unsubscribe from the recipient's mail client.
    OneClick,
}

/// Who received the consent (送信者 or 送信委託者).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReceiverRole {
    /// The sender.
    Sender,
    /// The party that commissions the sending.
    CommissioningParty,
}

/// The party that received the consent or refusal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    /// Sender or commissioning party.
    pub role: ReceiverRole,
    /// Its name.
    pub name: String,
}

/// Purposes an event covers: a list, or `"all"` (opt-out and confirm only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Purposes {
    /// These purposes.
    List(Vec<String>),
    /// `"all"`.
    All(AllPurposes),
}

/// The literal `"all"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AllPurposes {
    /// Every purpose.
    All,
}

impl Purposes {
    /// The purposes listed, or `None` for all.
    pub fn list(&self) -> Option<&[String]> {
        match self {
            Purposes::List(list) => Some(list),
            Purposes::All(_) => None,
        }
    }
}

/// The `type` of a consent event leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsentEventType {
    /// `"consent_event"`.
    #[serde(rename = "consent_event")]
    ConsentEvent,
}

/// A `consent_event` leaf, member for member (`docs/log-format.md`). Parsing is strict: an
/// unknown member, a missing required one or a value of the wrong kind is not a consent leaf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentLeaf {
    /// Always `consent_event`.
    #[serde(rename = "type")]
    pub leaf_type: ConsentEventType,
    /// The leaf format's version, 1.
    pub v: u64,
    /// The tenant id.
    pub tenant: String,
    /// The event id.
    pub event_id: String,
    /// The subject commitment (64 lower-case hex digits).
    pub subject: String,
    /// Opt-in, opt-out or confirmation.
    pub event: EventKind,
    /// A sorted list of purposes, or `"all"`.
    pub purposes: Purposes,
    /// The basis of an opt-in; `None` for the others.
    pub basis: Option<Basis>,
    /// How it was collected.
    pub method: Method,
    /// The collection point version id, if any.
    pub collection_point: Option<String>,
    /// Who received it.
    pub received_by: Receiver,
    /// Claimed time (RFC 3339 UTC).
    pub occurred_at: String,
    /// Server time when sequenced (RFC 3339 UTC).
    pub recorded_at: String,
    /// The subject's previous event's leaf index, `None` for its first.
    pub prev: Option<u64>,
    /// The first step of a double opt-in.
    pub confirmation_required: bool,
    /// Hex `SHA-256(salt ‖ JCS(evidence))`, or `None`.
    pub evidence_sha256: Option<String>,
    /// For a confirmation by link: the opt-in it confirms.
    pub confirms: Option<String>,
    /// Imported from a legacy system (`POST /v1/events:import`): `method` is the original one,
    /// and the event counts from its claimed time ([`ConsentLeaf::counts_from`]). Written only
    /// when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub imported: bool,
}

impl ConsentLeaf {
    /// The time the event counts from — for `since` and the retention clock: when it was
    /// recorded, or for an imported event when it happened (its original time).
    pub fn counts_from(&self) -> &str {
        if self.imported {
            &self.occurred_at
        } else {
            &self.recorded_at
        }
    }

    /// The leaf from its bytes, if it is a well-formed `consent_event` of version 1.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let leaf: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if leaf.v != 1 {
            return Err(format!("version {} is not 1", leaf.v));
        }
        Ok(leaf)
    }
}

/// The `type` of an erasure leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErasureType {
    /// `"erasure"`.
    #[serde(rename = "erasure")]
    Erasure,
}

/// An `erasure` leaf (`docs/log-format.md`): a subject's personal data (address, salt,
/// evidence) was erased. It is part of the subject's chain, so a bundle of an address that came
/// back shows it; it changes no purpose's state — a refusal survives erasure (Art. 3(3)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureLeaf {
    /// Always `erasure`.
    #[serde(rename = "type")]
    pub leaf_type: ErasureType,
    /// The leaf format's version, 1.
    pub v: u64,
    /// The tenant id.
    pub tenant: String,
    /// The subject's label (64 lower-case hex digits).
    pub subject: String,
    /// The subject's previous leaf: an erasure always follows an event.
    pub prev: u64,
    /// Server time of the erasure (RFC 3339 UTC).
    pub recorded_at: String,
    /// The retention period it waited for after the subject's last event, in days:
    /// [`RETENTION_DAYS`], or [`RETENTION_LEGAL_HOLD_DAYS`] under a legal hold.
    pub retention_days: u64,
    /// The leaves whose evidence was erased with it, ascending.
    pub evidence_erased: Vec<u64>,
}

impl ErasureLeaf {
    /// The leaf from its bytes, if it is a well-formed `erasure` leaf of version 1.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let leaf: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if leaf.v != 1 {
            return Err(format!("version {} is not 1", leaf.v));
        }
        Ok(leaf)
    }
}

/// The `type` of a relabel leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelabelType {
    /// `"relabel"`.
    #[serde(rename = "relabel")]
    Relabel,
}

/// A `relabel` leaf (`docs/log-format.md`): the one-time link of a history begun before the
/// log's VRF key, under a salted commitment (`from`), to the address's label (`subject`). It
/// is the first leaf of the label's chain and names the salted chain's head as its `prev`, so
/// the label's chain runs on through the older history; the salted commitment is closed by it
/// (no leaf may name it after). It changes no purpose's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelLeaf {
    /// Always `relabel`.
    #[serde(rename = "type")]
    pub leaf_type: RelabelType,
    /// The leaf format's version, 1.
    pub v: u64,
    /// The tenant id.
    pub tenant: String,
    /// The address's label (64 lower-case hex digits): the key its history goes on under.
    pub subject: String,
    /// The salted commitment the history began under (64 lower-case hex digits).
    pub from: String,
    /// The head of the salted commitment's chain: the last leaf naming `from`.
    pub prev: u64,
    /// Server time of the relabelling (RFC 3339 UTC).
    pub recorded_at: String,
}

impl RelabelLeaf {
    /// The leaf from its bytes, if it is a well-formed `relabel` leaf of version 1.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let leaf: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if leaf.v != 1 {
            return Err(format!("version {} is not 1", leaf.v));
        }
        Ok(leaf)
    }
}

/// Records are kept this many days after a subject's last event (one month), ordinance Art. 4(2).
pub const RETENTION_DAYS: u64 = 31;

/// The same under a legal hold (one year).
pub const RETENTION_LEGAL_HOLD_DAYS: u64 = 366;

const DAY_MS: i64 = 86_400_000;

/// Why a subject may not be erased yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErasureRefused {
    /// Consent is in force for these purposes: an opt-out must come first.
    ConsentInForce(Vec<String>),
    /// The retention period runs until this time (Unix ms).
    RetentionRunning(i64),
}

/// Whether the law allows erasing a subject at `at` (Unix ms): no purpose may still be mailed,
/// and its retention must have run ([`retention_until`]). The server decides by it; the
/// verifier and the auditor check each erasure leaf by it.
pub fn erasure_refused(
    state: &SubjectState,
    last: i64,
    retention_days: u64,
    order: Option<i64>,
    at: i64,
) -> Option<ErasureRefused> {
    let granted: Vec<String> = state
        .keys()
        .filter(|p| p.as_str() != ALL && effective(state, p).is_some_and(|e| e.may_send()))
        .cloned()
        .collect();
    if !granted.is_empty() {
        return Some(ErasureRefused::ConsentInForce(granted));
    }
    let until = retention_until(last, retention_days, order);
    (at < until).then_some(ErasureRefused::RetentionRunning(until))
}

/// Until when a subject's records must be kept (ordinance Art. 4(2)), in Unix ms: a month after
/// its last event (`last`, the time it counts from) — or, under a measures order (a
/// `retention_days` of [`RETENTION_LEGAL_HOLD_DAYS`] with the order's date `order`, midnight
/// UTC), a year from the order, or the month after the last event if that is later. A year
/// with no order date known runs from the last event (the longer wait).
pub fn retention_until(last: i64, retention_days: u64, order: Option<i64>) -> i64 {
    let after = |from: i64, days: u64| from.saturating_add((days as i64).saturating_mul(DAY_MS));
    match order.filter(|_| retention_days == RETENTION_LEGAL_HOLD_DAYS) {
        Some(order) => after(order, RETENTION_LEGAL_HOLD_DAYS).max(after(last, RETENTION_DAYS)),
        None => after(last, retention_days),
    }
}

/// The `type` of a legal hold leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LegalHoldType {
    /// `"legal_hold"`.
    #[serde(rename = "legal_hold")]
    LegalHold,
}

/// A `legal_hold` leaf (`docs/log-format.md`): a tenant's legal hold put on or lifted, with the
/// order it follows. It names the tenant's hold key ([`hold_key`]) as its `subject`, so the
/// tenant's holds form one chain that the subject map proves complete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalHoldLeaf {
    /// Always `legal_hold`.
    #[serde(rename = "type")]
    pub leaf_type: LegalHoldType,
    /// The leaf format's version, 1.
    pub v: u64,
    /// The tenant id.
    pub tenant: String,
    /// The tenant's hold key, hex.
    pub subject: String,
    /// The tenant's previous hold leaf, `None` for its first.
    pub prev: Option<u64>,
    /// Put on (true) or lifted (false).
    pub on: bool,
    /// The order's date, `YYYY-MM-DD`.
    pub order_date: String,
    /// The order's reference (e.g. its number).
    pub order_reference: String,
    /// Server time (RFC 3339 UTC).
    pub recorded_at: String,
}

impl LegalHoldLeaf {
    /// The leaf from its bytes, if it is a well-formed `legal_hold` leaf of version 1.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let leaf: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if leaf.v != 1 {
            return Err(format!("version {} is not 1", leaf.v));
        }
        Ok(leaf)
    }
}

/// The `type` of a collection point retirement leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetiredType {
    /// `"collection_point_retired"`.
    #[serde(rename = "collection_point_retired")]
    CollectionPointRetired,
}

/// A `collection_point_retired` leaf (`docs/log-format.md`): the end of a collection point
/// version's period of use (its start is its own `collection_point` leaf; ordinance Art.
/// 4(1)(ii)). It names the version's retirement key ([`collection_point_key`]) as its
/// `subject`, so the subject map proves whether (and where) a version was retired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionPointRetiredLeaf {
    /// Always `collection_point_retired`.
    #[serde(rename = "type")]
    pub leaf_type: RetiredType,
    /// The leaf format's version, 1.
    pub v: u64,
    /// The tenant id.
    pub tenant: String,
    /// The version's id.
    pub id: String,
    /// The version's retirement key, hex.
    pub subject: String,
    /// Always `None`: a version is retired once.
    pub prev: Option<u64>,
    /// Server time: the end of its period of use (RFC 3339 UTC).
    pub retired_at: String,
}

impl CollectionPointRetiredLeaf {
    /// The leaf from its bytes, if it is a well-formed `collection_point_retired` leaf of
    /// version 1.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let leaf: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if leaf.v != 1 {
            return Err(format!("version {} is not 1", leaf.v));
        }
        Ok(leaf)
    }
}

/// The map key of a collection point version's retirement: `SHA-256("consent-ledger/
/// collection-point/v1" ‖ u64be(len(tenant)) ‖ tenant ‖ u64be(len(id)) ‖ id)`.
pub fn collection_point_key(tenant_id: &str, id: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::new()
        .chain_update(b"consent-ledger/collection-point/v1")
        .chain_update((tenant_id.len() as u64).to_be_bytes())
        .chain_update(tenant_id.as_bytes())
        .chain_update((id.len() as u64).to_be_bytes())
        .chain_update(id.as_bytes())
        .finalize()
        .into()
}

/// Whether an event at leaf `index` may name a collection point version registered at leaf
/// `registered` and retired at `retired_at` (Unix ms, `None` while in use): registered before
/// it, and the event claimed to have happened before the retirement — the person saw the
/// screen while it was in use (an import, or a consent recorded late, may come after the
/// retirement leaf; its claimed time is the sender's word, shown as back-dated like any).
pub fn in_use(event: &ConsentLeaf, index: u64, registered: u64, retired_at: Option<i64>) -> bool {
    let claimed = millis(&event.occurred_at);
    registered < index && retired_at.is_none_or(|retired| claimed.is_some_and(|c| c < retired))
}

/// The evidence an opt-in on `basis` must carry (Art. 3(1)(ii)–(iv); the guideline: each
/// exception is a claim about a specific fact), by the names of its members: none for
/// `consent`. The server refuses an opt-in without them; the verifiers note one whose bundle
/// does not show them.
pub fn required_evidence(basis: Basis) -> &'static [&'static str] {
    match basis {
        Basis::Consent => &[],
        Basis::AddressNotified => &["notified_by", "notified_on"],
        Basis::BusinessRelationship => &["transaction_reference", "transaction_date"],
        Basis::AddressPublished => &[
            "published_in",
            "published_checked_on",
            "no_refusal_published",
        ],
    }
}

/// The map key of a tenant's legal holds: `SHA-256("consent-ledger/legal-hold/v1" ‖
/// u64be(len(tenant)) ‖ tenant)`, no address's label (those are VRF outputs).
pub fn hold_key(tenant_id: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::new()
        .chain_update(b"consent-ledger/legal-hold/v1")
        .chain_update((tenant_id.len() as u64).to_be_bytes())
        .chain_update(tenant_id.as_bytes())
        .finalize()
        .into()
}

/// The retention period an erasure at leaf `at` must state, given the tenant's hold leaves in
/// log order: a year if the latest hold before it is on, else a month.
pub fn retention_days_at(holds: &[(u64, LegalHoldLeaf)], at: u64) -> u64 {
    match hold_at(holds, at) {
        Some(_) => RETENTION_LEGAL_HOLD_DAYS,
        None => RETENTION_DAYS,
    }
}

/// The hold in force at leaf `at` (the latest before it, if on), given the tenant's hold leaves
/// in log order.
pub fn hold_at(holds: &[(u64, LegalHoldLeaf)], at: u64) -> Option<&LegalHoldLeaf> {
    match holds.iter().rev().find(|(i, _)| *i < at) {
        Some((_, hold)) if hold.on => Some(hold),
        _ => None,
    }
}

impl LegalHoldLeaf {
    /// The order's date as its midnight UTC, Unix ms (`None` if it is not a date).
    pub fn order_millis(&self) -> Option<i64> {
        (self.order_date.len() == 10)
            .then(|| {
                crate::evidence::verify::strict_millis(&format!("{}T00:00:00Z", self.order_date))
            })
            .flatten()
    }
}

/// The state of one purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Opted in, awaiting confirmation: not yet mailable.
    Pending,
    /// Consent (or an exception basis) in force: mailable.
    Granted,
    /// Refused.
    Withdrawn,
}

impl Status {
    /// Its name in the API and the leaves.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Granted => "granted",
            Status::Withdrawn => "withdrawn",
        }
    }

    /// The status of a name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pending" => Some(Status::Pending),
            "granted" => Some(Status::Granted),
            "withdrawn" => Some(Status::Withdrawn),
            _ => None,
        }
    }
}

/// What a subject's state says of a purpose with no event: nothing may be sent.
pub const NO_STATUS: &str = "none";

/// The key of "all purposes" in a subject's state.
pub const ALL: &str = "*";

/// A purpose's state and the event that set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurposeState {
    /// Pending, granted or withdrawn.
    pub status: Status,
    /// The basis it rests on (`None` for a refusal).
    pub basis: Option<Basis>,
    /// The deciding event.
    pub event_id: String,
    /// Its leaf.
    pub leaf_index: u64,
    /// Its claimed time, Unix milliseconds (a later fresh consent must be claimed after it).
    pub occurred_at: i64,
    /// The time it counts from ([`ConsentLeaf::counts_from`]: recorded, or claimed for an
    /// imported event), Unix milliseconds: the decision's `since`.
    pub recorded_at: i64,
}

impl PurposeState {
    /// Whether mail may be sent on it.
    pub fn may_send(&self) -> bool {
        self.status == Status::Granted
    }
}

/// A subject's state: purpose (or [`ALL`]) → its state.
pub type SubjectState = BTreeMap<String, PurposeState>;

/// RFC 3339 as Unix milliseconds (`None` if it is not RFC 3339).
pub fn millis(rfc3339: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// The effective state of `purpose`: the later, by leaf, of its own and the all-purposes state.
pub fn effective<'a>(state: &'a SubjectState, purpose: &str) -> Option<&'a PurposeState> {
    match (state.get(purpose), state.get(ALL)) {
        (Some(own), Some(all)) => Some(if own.leaf_index > all.leaf_index {
            own
        } else {
            all
        }),
        (own, all) => own.or(all),
    }
}

/// Purposes (not [`ALL`]) whose effective state is pending, restricted to `only` if given.
pub fn pending(state: &SubjectState, only: Option<&[String]>) -> Vec<String> {
    state
        .keys()
        .filter(|p| p.as_str() != ALL && only.is_none_or(|o| o.contains(p)))
        .filter(|p| effective(state, p).is_some_and(|e| e.status == Status::Pending))
        .cloned()
        .collect()
}

/// The purposes (or [`ALL`]) whose state the event at `leaf_index` sets, and to what, given the
/// subject's state before it. Pure: the caller stores or replays the changes.
pub fn apply(
    state: &SubjectState,
    leaf_index: u64,
    leaf: &ConsentLeaf,
) -> Vec<(String, PurposeState)> {
    let claimed = millis(&leaf.occurred_at).unwrap_or(0);
    let recorded = millis(leaf.counts_from()).unwrap_or(0);
    let set = |status: Status, basis: Option<Basis>| PurposeState {
        status,
        basis,
        event_id: leaf.event_id.clone(),
        leaf_index,
        occurred_at: claimed,
        recorded_at: recorded,
    };
    match leaf.event {
        EventKind::OptIn => {
            let mut changes = Vec::new();
            for purpose in leaf.purposes.list().unwrap_or_default() {
                let current = effective(state, purpose);
                if refusal_binds(current, leaf.basis, claimed) {
                    continue;
                }
                let granted = current.is_some_and(|e| e.status == Status::Granted);
                match (leaf.confirmation_required, granted) {
                    // A new unconfirmed opt-in does not take back consent already given.
                    (true, true) => {}
                    (true, false) => {
                        changes.push((purpose.clone(), set(Status::Pending, leaf.basis)))
                    }
                    (false, _) => changes.push((purpose.clone(), set(Status::Granted, leaf.basis))),
                }
            }
            changes
        }
        EventKind::OptOut => match leaf.purposes.list() {
            None => vec![(ALL.to_string(), set(Status::Withdrawn, None))],
            Some(list) => list
                .iter()
                .map(|p| (p.clone(), set(Status::Withdrawn, None)))
                .collect(),
        },
        EventKind::Confirm => pending(state, leaf.purposes.list())
            .into_iter()
            .filter(|p| {
                // A link confirms the opt-in it was made for, and nothing pending since.
                leaf.confirms
                    .as_ref()
                    .is_none_or(|id| state.get(p).is_some_and(|own| &own.event_id == id))
            })
            .map(|p| {
                let basis = state
                    .get(&p)
                    .and_then(|own| own.basis)
                    .or(Some(Basis::Consent));
                (p, set(Status::Granted, basis))
            })
            .collect(),
    }
}

/// Whether a refusal in force (`current`) binds an opt-in on `basis` claimed at `claimed` (Unix
/// ms): a refusal binds every basis, so only fresh consent claimed after it lifts it (Art. 3(3)).
fn refusal_binds(current: Option<&PurposeState>, basis: Option<Basis>, claimed: i64) -> bool {
    current
        .filter(|e| e.status == Status::Withdrawn)
        .is_some_and(|refusal| basis != Some(Basis::Consent) || claimed <= refusal.occurred_at)
}

/// The purposes of an opt-in that a refusal before it binds, given the subject's state before
/// it: for them the opt-in changes nothing (its leaf is recorded all the same). Empty for
/// other events.
pub fn bound_by_refusal(state: &SubjectState, leaf: &ConsentLeaf) -> Vec<String> {
    if leaf.event != EventKind::OptIn {
        return Vec::new();
    }
    let claimed = millis(&leaf.occurred_at).unwrap_or(0);
    leaf.purposes
        .list()
        .unwrap_or_default()
        .iter()
        .filter(|p| refusal_binds(effective(state, p), leaf.basis, claimed))
        .cloned()
        .collect()
}

/// A subject's state after its events, in log order, with their leaf indexes.
pub fn replay<'a>(events: impl IntoIterator<Item = (u64, &'a ConsentLeaf)>) -> SubjectState {
    let mut state = SubjectState::new();
    for (leaf_index, leaf) in events {
        let changes = apply(&state, leaf_index, leaf);
        state.extend(changes);
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(purpose: &str, status: Status, leaf: u64) -> (String, PurposeState) {
        (
            purpose.into(),
            PurposeState {
                status,
                basis: None,
                event_id: "e".into(),
                leaf_index: leaf,
                occurred_at: 0,
                recorded_at: 0,
            },
        )
    }

    #[test]
    fn the_later_of_purpose_and_all_decides() {
        let s: SubjectState = [
            state("news", Status::Granted, 5),
            state(ALL, Status::Withdrawn, 10),
        ]
        .into();
        assert_eq!(effective(&s, "news").unwrap().status, Status::Withdrawn);
        let s: SubjectState = [
            state("news", Status::Granted, 12),
            state(ALL, Status::Withdrawn, 10),
        ]
        .into();
        assert_eq!(effective(&s, "news").unwrap().status, Status::Granted);
        assert_eq!(effective(&s, "offers").unwrap().status, Status::Withdrawn);
        assert!(effective(&SubjectState::new(), "news").is_none());
    }

    /// The golden vectors: leaves a real server recorded, and the decisions it gave for them
    /// (`tests/it/vectors.rs` writes them; the TypeScript suite reads them too).
    #[test]
    fn the_rules_give_the_servers_decisions_on_the_golden_vectors() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/consent-rules.json");
        let vectors: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let cases = vectors["cases"].as_array().unwrap();
        assert!(cases.len() >= 10);
        for case in cases {
            let events: Vec<(u64, ConsentLeaf)> = case["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    let leaf = serde_json::to_vec(&e["leaf"]).unwrap();
                    (
                        e["leaf_index"].as_u64().unwrap(),
                        ConsentLeaf::parse(&leaf).unwrap(),
                    )
                })
                .collect();
            let state = replay(events.iter().map(|(i, leaf)| (*i, leaf)));
            for expected in case["decisions"].as_array().unwrap() {
                let purpose = expected["purpose"].as_str().unwrap();
                let got = effective(&state, purpose).map_or(
                    serde_json::json!({"may_send": false, "status": NO_STATUS, "event_id": null}),
                    |s| serde_json::json!({"may_send": s.may_send(), "status": s.status.as_str(), "event_id": s.event_id}),
                );
                let want = serde_json::json!({"may_send": expected["may_send"], "status": expected["status"], "event_id": expected["event_id"]});
                assert_eq!(got, want, "{}: {purpose}", case["name"]);
            }
        }
    }

    #[test]
    fn a_consent_leaf_with_an_unknown_member_is_refused() {
        let leaf = serde_json::json!({
            "type": "consent_event", "v": 1, "tenant": "t", "event_id": "e", "subject": "00",
            "event": "opt_out", "purposes": "all", "basis": null, "method": "email",
            "collection_point": null, "received_by": {"role": "sender", "name": "S"},
            "occurred_at": "2026-01-01T00:00:00Z", "recorded_at": "2026-01-01T00:00:00Z",
            "prev": null, "confirmation_required": false, "evidence_sha256": null, "confirms": null
        });
        assert!(ConsentLeaf::parse(leaf.to_string().as_bytes()).is_ok());
        let mut extra = leaf.clone();
        extra["granted"] = true.into();
        assert!(ConsentLeaf::parse(extra.to_string().as_bytes()).is_err());
        let mut fractional = leaf;
        fractional["prev"] = serde_json::json!(1.5);
        assert!(ConsentLeaf::parse(fractional.to_string().as_bytes()).is_err());
    }
}
