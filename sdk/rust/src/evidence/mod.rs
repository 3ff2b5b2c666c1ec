//! Evidence bundles (`consent-ledger/evidence/v1`, `docs/evidence-format.md`): the types of the
//! JSON document the service exports for an address, and `verify.rs`, the offline verifier the
//! server's `verify evidence` command uses too. Building bundles is the server's.

pub mod tenant;
pub mod verify;

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde::{Deserialize, Serialize};

/// The bundle's format name.
pub const FORMAT: &str = "consent-ledger/evidence/v1";
/// The format name of a send decision with its proof.
pub const DECISION_FORMAT: &str = "consent-ledger/decision/v1";

/// A send decision with its proof (`GET /v1/consent?…&proof=true`): the decision for one
/// purpose, and the evidence bundle of the address it follows from — every event of the address
/// up to the bundle's checkpoint, proven complete. A sender keeps it as evidence that it asked
/// before sending; [`verify::verify_decision`] checks it offline.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProvenDecision {
    /// Always `consent-ledger/decision/v1`.
    pub format: String,
    /// The decision, as of the proof's checkpoint.
    pub decision: PurposeDecision,
    /// The evidence bundle it follows from.
    pub proof: Bundle,
}

/// The proof that an address was in a campaign check with a decision
/// (`GET /v1/campaign-checks/{id}/proof?email=`): the campaign's leaf, the address's entry with
/// its path to the leaf's root, and the address's evidence bundle (whose checkpoint covers the
/// campaign leaf); [`verify::verify_campaign`] checks it offline.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignProof {
    /// Always `consent-ledger/campaign-proof/v1`.
    pub format: String,
    /// The `campaign_check` leaf, proven against `proof.checkpoint`.
    pub campaign: ProvenLeaf,
    /// The address's entry in it.
    pub entry: ProvenEntry,
    /// The address's evidence bundle.
    pub proof: Bundle,
}

/// An address's entry in a campaign check, with its RFC 9162 path to the leaf's `root`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProvenEntry {
    /// Its position among the entries in key order.
    pub index: u64,
    /// The 41 bytes, base64: key ‖ status ‖ uint64_be(deciding leaf + 1).
    pub entry: String,
    /// Its inclusion path in the tree of `addresses` entries, base64 hashes.
    pub path: Vec<String>,
}

/// An evidence bundle (see `docs/evidence-format.md`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bundle {
    /// Always `consent-ledger/evidence/v1`.
    pub format: String,
    /// When it was made (RFC 3339).
    pub generated_at: String,
    /// The log: origin and verifier key (check the key against the one the operator publishes).
    pub log: LogIdentity,
    /// The signed checkpoint every proof is against (C2SP signed note).
    pub checkpoint: String,
    /// The sender.
    pub tenant: TenantIdentity,
    /// The opening of the subject commitment.
    pub subject: Opening,
    /// Every event of the address up to the checkpoint, in log order.
    pub events: Vec<ProvenLeaf>,
    /// The collection points (consent screens, forms, templates) the events name.
    pub collection_points: Vec<ProvenTemplate>,
    /// The send decision per purpose, as the service computes it.
    pub decisions: Vec<PurposeDecision>,
    /// The proof that `events` are all of the address's events up to the checkpoint.
    pub completeness: Completeness,
    /// The log's VRF public key, proven to be the log's only one (required: a bundle without
    /// it is refused).
    #[serde(default)]
    pub parameters: Option<Parameters>,
    /// The tenant's legal holds, proven complete: they say which retention period each erasure
    /// had to wait (required when the bundle holds an erasure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holds: Option<Holds>,
    /// For a history begun before the log's VRF key (its chain holds a `relabel` leaf): what
    /// the subject map says of the salted commitment it names (required then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relabelled: Option<Relabelled>,
    /// When the log has witnesses: a later checkpoint they cosigned, and the proof that the
    /// bundle's checkpoint is a prefix of it (so the bundle is not from a split view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnessed: Option<Witnessed>,
    /// Only when the log has witnesses: for each event, the latest checkpoint the witnesses
    /// cosigned *without* it (of a size at most its index) and the earliest *with* it (up to the
    /// bundle's), once each, smallest first, with the consistency proof from it to the bundle's
    /// checkpoint. Their cosignatures' times bound when the event can have been recorded, from
    /// below and from above (`docs/evidence-format.md`, time bounds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<Witnessed>,
}

/// A checkpoint cosigned by witnesses (C2SP tlog-cosignature) that extends the bundle's.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Witnessed {
    /// The signed checkpoint with the witnesses' cosignature lines.
    pub checkpoint: String,
    /// RFC 9162 consistency proof from the bundle's checkpoint to this one, base64 hashes
    /// (empty when they are the same size).
    pub consistency: Vec<String>,
}

/// What the subject map of the bundle's checkpoint says about the subject: the index of its
/// latest event. With the chain of `prev` links, it proves no event of the address is missing.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Completeness {
    /// The checkpoint's last leaf, the `subject_map` leaf, with its proof.
    pub map_leaf: ProvenLeaf,
    /// The subject's bucket (the first two bytes of its commitment, big-endian).
    pub bucket: u32,
    /// The bucket's content, base64: entries of 40 bytes, commitment ‖ big-endian `u64` index of
    /// its latest event, in commitment order.
    pub bucket_entries: String,
    /// The bucket's RFC 9162 inclusion path in the map tree of 65,536 buckets, base64, 16 hashes.
    pub bucket_path: Vec<String>,
}

/// The log's `log_parameters` leaf, and what the bundle's subject map (`completeness.map_leaf`)
/// says of the parameters key: that this leaf is its latest (and, naming no `prev`, its only)
/// one, or that the log has none yet.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Parameters {
    /// The parameters leaf with its proof; `None` in a log from before subject labels.
    pub leaf: Option<ProvenLeaf>,
    /// The parameters key's bucket (its first two bytes, big-endian).
    pub bucket: u32,
    /// The bucket's content, base64 (as in [`Completeness`]).
    pub bucket_entries: String,
    /// The bucket's RFC 9162 inclusion path in the map tree, base64, 16 hashes.
    pub bucket_path: Vec<String>,
}

/// The tenant's legal holds up to the bundle's checkpoint, proven complete: every `legal_hold`
/// leaf of its hold chain in log order, and what the subject map (`completeness.map_leaf`) says
/// of the tenant's hold key (`consent::hold_key`): that the last of them is its latest.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Holds {
    /// The tenant's `legal_hold` leaves, oldest first, each with its proof.
    pub leaves: Vec<ProvenLeaf>,
    /// The hold key's bucket (its first two bytes, big-endian).
    pub bucket: u32,
    /// The bucket's content, base64 (as in [`Completeness`]).
    pub bucket_entries: String,
    /// The bucket's RFC 9162 inclusion path in the map tree, base64, 16 hashes.
    pub bucket_path: Vec<String>,
}

/// What the subject map of the bundle's checkpoint says of the salted commitment a `relabel`
/// leaf of the chain names (its `from`): that its latest leaf is the relabel's `prev` — no leaf
/// named it after the relabelling, so the older history is all in the chain.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Relabelled {
    /// The commitment's bucket (its first two bytes, big-endian).
    pub bucket: u32,
    /// The bucket's content, base64 (as in [`Completeness`]).
    pub bucket_entries: String,
    /// The bucket's RFC 9162 inclusion path in the map tree, base64, 16 hashes.
    pub bucket_path: Vec<String>,
}

/// The log a bundle's proofs belong to.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogIdentity {
    /// Checkpoint origin.
    pub origin: String,
    /// Signed-note verifier key.
    pub verifier_key: String,
}

/// The tenant, as its leaves name it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantIdentity {
    /// Id (the `tenant` of each leaf).
    pub id: String,
    /// Legal name shown to recipients.
    pub legal_name: String,
    /// Its purposes' labels, for people reading the bundle (the service's word, not the
    /// log's: keys are what the leaves commit to).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purposes: Vec<PurposeLabel>,
    /// How to reach the sender, as the service states it (not in the log): what a consent
    /// receipt names the controller by.
    #[serde(default, skip_serializing_if = "Contacts::is_empty")]
    pub contacts: Contacts,
}

/// The sender's contacts and 送信責任者 as the service states them (not committed by the log).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contacts {
    /// Postal address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_address: Option<String>,
    /// Contact for complaints (an e-mail address, URL or telephone number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint_contact: Option<String>,
    /// Where to refuse mail without a link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optout_contact: Option<String>,
    /// Telephone number for enquiries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The privacy policy's `https:` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_policy_url: Option<String>,
    /// 送信責任者, when it is not the sender itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsible_party: Option<String>,
}

impl Contacts {
    /// True when none is given.
    pub fn is_empty(&self) -> bool {
        *self == Contacts::default()
    }
}

/// A purpose's key and its labels, as the tenant gave them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurposeLabel {
    /// The key the leaves name.
    pub purpose: String,
    /// In Japanese.
    pub label_ja: Option<String>,
    /// In English.
    pub label_en: Option<String>,
}

impl TenantIdentity {
    /// A purpose as people read it in `lang` (`ja` or `en`): its label there, else its key.
    pub fn purpose_label<'a>(&'a self, purpose: &'a str, lang: &str) -> &'a str {
        self.purposes
            .iter()
            .find(|p| p.purpose == purpose)
            .and_then(|p| match lang {
                "en" => p.label_en.as_deref(),
                _ => p.label_ja.as_deref(),
            })
            .unwrap_or(purpose)
    }
}

/// What ties the subject key of the leaves to the address: the VRF proof of its label, or (a
/// subject from before labels) the salt of its commitment.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Opening {
    /// The normalised address.
    pub email: String,
    /// The salt of the subject's evidence hashes (and of a salted commitment), base64.
    pub salt: String,
    /// The subject key, hex (the `subject` of each event leaf): the label, or the commitment.
    pub commitment: String,
    /// The VRF proof (80 bytes, base64) that `commitment` is the label of `email` under the
    /// log's VRF key; absent for a salted commitment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrf_proof: Option<String>,
    /// How each event was given, where the sender recorded it and it was not erased: the
    /// evidence its leaf's `evidence_sha256` commits to (`SHA-256(salt ‖ JCS(evidence))`).
    #[serde(default)]
    pub evidence: Vec<EventEvidence>,
}

/// The evidence of one event (IP address, user agent, confirmation Message-ID, note), as the
/// sender or the service recorded it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventEvidence {
    /// The event's leaf index.
    pub leaf_index: u64,
    /// The evidence object, exactly as hashed (after RFC 8785 canonicalisation).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub evidence: serde_json::Value,
}

/// A leaf with its inclusion proof.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProvenLeaf {
    /// Leaf index.
    pub leaf_index: u64,
    /// The exact leaf bytes, base64 (JCS JSON).
    pub leaf: String,
    /// RFC 9162 leaf hash, base64.
    pub leaf_hash: String,
    /// Inclusion proof against the bundle's checkpoint, base64 hashes.
    pub inclusion_proof: Vec<String>,
    /// The same proof in C2SP `tlog-proof@v1` text, for generic tools (required in a bundle;
    /// absent from a whole-tenant export's subject lines, whose checkpoint is in the header).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tlog_proof: String,
}

impl ProvenLeaf {
    /// The leaf's JSON document (`Null` if the bytes are not base64 JSON).
    pub fn document(&self) -> serde_json::Value {
        B64.decode(&self.leaf)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

/// A collection point version with its content and proof.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProvenTemplate {
    /// Version id.
    pub id: String,
    /// Media type of the content.
    pub content_type: String,
    /// The exact content, base64.
    pub content: String,
    /// Its leaf and proof: the start of its period of use.
    pub proof: ProvenLeaf,
    /// Its `collection_point_retired` leaf and proof, if it was retired by the checkpoint: the
    /// end of its period of use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<ProvenLeaf>,
    /// The subject map's bucket for its retirement key: that `retired` is its only retirement,
    /// or that there is none. A bundle without it does not prove the period of use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retirement: Option<MapBucket>,
}

/// A bucket of the subject map with its inclusion path (as in [`Completeness`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MapBucket {
    /// The bucket (the key's first two bytes, big-endian).
    pub bucket: u32,
    /// The bucket's content, base64 (as in [`Completeness`]).
    pub bucket_entries: String,
    /// The bucket's RFC 9162 inclusion path in the map tree, base64, 16 hashes.
    pub bucket_path: Vec<String>,
}

/// The decision for one purpose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurposeDecision {
    /// Purpose.
    pub purpose: String,
    /// May the tenant send mail for it?
    pub may_send: bool,
    /// `granted`, `pending`, `withdrawn` or `none`.
    pub status: String,
    /// The deciding event, if any.
    pub event_id: Option<String>,
}
