//! The consent vocabulary (`docs/law.md`): event kinds, legal bases, collection methods and who
//! received the consent (defined once, in the SDK's `consent` module, and re-exported here), and
//! the inputs and answers of the API. Validation lives with the domain functions.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// The vocabulary the leaves share is the SDK's: one definition for the server and verifiers.
pub use consent_ledger_sdk::consent::{
    AllPurposes, Basis, EventKind, Method, Purposes, Receiver, ReceiverRole,
};

/// Evidence kept with an event in erasable rows; the leaf holds only a salted hash of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// The client's IP address.
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The Message-ID of the confirmation mail (double opt-in).
    pub confirmation_message_id: Option<String>,
    /// Evidence of the legal basis (e.g. where the business card was received).
    pub note: Option<String>,
    /// `address_notified`: how the person gave the address in writing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_by: Option<WrittenNotice>,
    /// `address_notified`: the date it was given, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_on: Option<String>,
    /// `business_relationship`: the transaction or contract it rests on (an order or contract
    /// number; no personal data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_reference: Option<String>,
    /// `business_relationship`: the transaction's date, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_date: Option<String>,
    /// `address_published`: where the address is published for business use (a URL, or a
    /// medium such as a trade directory and its edition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_in: Option<String>,
    /// `address_published`: the date the publication was checked, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_checked_on: Option<String>,
    /// `address_published`: that no refusal of advertising mail was published beside the
    /// address (the exception is lost if one was): must be `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_refusal_published: Option<bool>,
}

/// How an address was given in writing (Art. 3(1)(ii)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WrittenNotice {
    /// A business card (名刺).
    BusinessCard,
    /// A written form the person filled in (申込書, アンケート用紙).
    WrittenForm,
    /// Another writing (a letter, a fax, an e-mail the person sent).
    OtherWriting,
}

/// A consent event as a sender submits it.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event": "opt_in", "email": "taro@example.jp", "purposes": ["newsletter"],
    "basis": "consent", "method": "web_form", "collection_point": "3b1f…",
    "received_by": {"role": "sender", "name": "Example K.K."}, "occurred_at": "2026-11-28T10:00:00Z"}))]
pub struct NewEvent {
    /// `opt_in`, `opt_out` or `confirm`.
    pub event: EventKind,
    /// The address.
    #[schema(min_length = 3, max_length = 254, example = "taro@example.jp")]
    pub email: String,
    /// Purposes, or `"all"` (opt-out and confirm).
    pub purposes: Purposes,
    /// Legal basis of an opt-in (default `consent`); not given for opt-out and confirm.
    pub basis: Option<Basis>,
    /// How it was collected.
    pub method: Method,
    /// The collection point version (id) the person saw.
    pub collection_point: Option<String>,
    /// Who received it.
    pub received_by: Receiver,
    /// When it happened (RFC 3339; default: now).
    pub occurred_at: Option<String>,
    /// An opt-in that takes effect only once confirmed (double opt-in).
    #[serde(default)]
    pub confirmation_required: bool,
    /// Evidence (kept erasable, committed by salted hash).
    pub evidence: Option<Evidence>,
}

/// A consent screen, form, mail or paper template to register.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "signup", "channel": "web_form", "content_type": "text/html; charset=utf-8", "content": "<label><input type=checkbox name=newsletter> メールマガジンを受け取る</label>", "sender_name_shown": "Sakura Shop K.K.", "prechecked": false, "language": "ja"}))]
pub struct NewCollectionPoint {
    /// A name shared by the versions of one form (e.g. `signup-footer`).
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// `web_form`, `email`, `paper`, `phone`, `in_person` or `import`.
    pub channel: Method,
    /// MIME type of the content, e.g. `text/html; charset=utf-8`.
    #[schema(min_length = 1, max_length = 200)]
    pub content_type: String,
    /// The exact content as text (HTML or plain text) — or give `content_base64`.
    pub content: Option<String>,
    /// The exact content as base64 bytes (a PDF, an image).
    pub content_base64: Option<String>,
    /// The sender name shown to the person.
    #[schema(min_length = 1, max_length = 200)]
    pub sender_name_shown: String,
    /// Whether the consent box was pre-checked.
    pub prechecked: bool,
    /// Language of the content, `ja` or `en` (or another BCP 47 tag).
    #[schema(min_length = 1, max_length = 35)]
    pub language: String,
}

/// A tenant to create.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "sakura-shop", "legal_name": "Sakura Shop K.K.", "postal_address": "1-2-3 Chiyoda, Chiyoda-ku, Tokyo 100-0001", "complaint_contact": "support@shop.example.jp", "optout_contact": "https://shop.example.jp/unsubscribe", "default_language": "ja", "purposes": [{"purpose": "newsletter", "description": "Monthly newsletter", "label_ja": "メールマガジン"}]}))]
pub struct NewTenant {
    /// A short name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The legal name shown to recipients (default: `name`).
    #[schema(min_length = 1, max_length = 200)]
    pub legal_name: Option<String>,
    /// Postal address (display duty, ordinance Art. 9).
    #[schema(min_length = 1, max_length = 500)]
    pub postal_address: Option<String>,
    /// Contact for complaints.
    #[schema(min_length = 1, max_length = 500)]
    pub complaint_contact: Option<String>,
    /// Opt-out contact for mail without per-recipient links: an `https:` URL, an e-mail
    /// address (or `mailto:` URI) or a telephone number.
    #[schema(min_length = 1, max_length = 500)]
    pub optout_contact: Option<String>,
    /// 送信責任者: the party responsible for sending, when it is not the sender itself
    /// (ordinance Art. 8–9); the display notice names both.
    #[schema(min_length = 1, max_length = 200)]
    pub responsible_party: Option<String>,
    /// A telephone number for enquiries (consent receipts name it).
    #[schema(min_length = 1, max_length = 30, example = "03-1234-5678")]
    pub phone: Option<String>,
    /// The `https:` URL of the privacy policy (consent receipts link it).
    #[schema(
        min_length = 1,
        max_length = 500,
        example = "https://shop.example.jp/privacy"
    )]
    pub privacy_policy_url: Option<String>,
    /// `ja` (default) or `en`.
    pub default_language: Option<String>,
    /// The purposes this tenant mails for.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub purposes: Vec<PurposeDefinition>,
}

/// Changes to a tenant's display profile: each field given replaces the stored one.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"postal_address": "1-2-3 Chiyoda, Chiyoda-ku, Tokyo 100-0001", "optout_contact": "https://shop.example.jp/unsubscribe"}))]
pub struct TenantProfile {
    /// The legal name shown to recipients.
    #[schema(min_length = 1, max_length = 200)]
    pub legal_name: Option<String>,
    /// Postal address (display duty, ordinance Art. 9).
    #[schema(min_length = 1, max_length = 500)]
    pub postal_address: Option<String>,
    /// Contact for complaints.
    #[schema(min_length = 1, max_length = 500)]
    pub complaint_contact: Option<String>,
    /// Opt-out contact, for mail without per-recipient links: an `https:` URL, an e-mail
    /// address (or `mailto:` URI) or a telephone number.
    #[schema(min_length = 1, max_length = 500)]
    pub optout_contact: Option<String>,
    /// 送信責任者, when it is not the sender itself (ordinance Art. 8–9); `""` removes it.
    pub responsible_party: Option<String>,
    /// A telephone number for enquiries; `""` removes it.
    pub phone: Option<String>,
    /// The `https:` URL of the privacy policy; `""` removes it.
    pub privacy_policy_url: Option<String>,
    /// `ja` or `en`.
    pub default_language: Option<String>,
    /// Purposes to add, or whose description and labels to set (by key; what a change leaves
    /// out stays as it was). A purpose is never removed: events name it.
    pub purposes: Option<Vec<PurposeDefinition>>,
}

/// A purpose a tenant mails for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurposeDefinition {
    /// Key: lower-case letters, digits, `-` and `_`, 1–64 characters.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    pub purpose: String,
    /// What is sent for it.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    /// Its name as recipients read it in Japanese (pages, the footer, the report), e.g.
    /// `メールマガジン`; default: the description.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub label_ja: Option<String>,
    /// The same in English, e.g. `Newsletter`; default: the description.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub label_en: Option<String>,
}

impl PurposeDefinition {
    /// Its name as recipients read it in `lang` (`ja` or `en`): that language's label, else
    /// its description, else its key.
    pub fn label(&self, lang: &str) -> &str {
        let label = match lang {
            "en" => self.label_en.as_deref(),
            _ => self.label_ja.as_deref(),
        };
        label
            .or((!self.description.is_empty()).then_some(self.description.as_str()))
            .unwrap_or(&self.purpose)
    }
}

/// A tenant.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "01939c6e-5f10-7a2b-8c3d-4e5f60718293", "name": "sakura-shop", "legal_name": "Sakura Shop K.K.", "postal_address": "1-2-3 Chiyoda, Chiyoda-ku, Tokyo 100-0001", "complaint_contact": "support@shop.example.jp", "optout_contact": "https://shop.example.jp/unsubscribe", "default_language": "ja", "legal_hold": false, "purposes": [{"purpose": "newsletter", "description": "Monthly newsletter", "label_ja": "メールマガジン", "label_en": "Newsletter"}], "created_at": "2026-12-01T09:00:00.000Z"}))]
pub struct Tenant {
    /// Id.
    pub id: String,
    /// Short name.
    pub name: String,
    /// Legal name shown to recipients.
    pub legal_name: String,
    /// Postal address.
    pub postal_address: Option<String>,
    /// Complaint contact.
    pub complaint_contact: Option<String>,
    /// Opt-out contact.
    pub optout_contact: Option<String>,
    /// 送信責任者, when it is not the sender itself.
    pub responsible_party: Option<String>,
    /// Telephone number for enquiries.
    pub phone: Option<String>,
    /// Privacy policy URL.
    pub privacy_policy_url: Option<String>,
    /// Default language.
    pub default_language: String,
    /// A measures order was issued (retention one year).
    pub legal_hold: bool,
    /// Purposes.
    pub purposes: Vec<PurposeDefinition>,
    /// Creation time, RFC 3339.
    pub created_at: String,
}

/// An event recorded in the log.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"event_id": "01939c70-2a4b-7c5d-9e6f-708192a3b4c5", "leaf_index": 812, "leaf_hash": "q1vN3m4b0c2YQ7o9dXkqZr0rjM3s8m1yQe7xWcL2kpA=", "recorded_at": "2026-12-07T10:00:00.120Z", "effective": true}))]
pub struct RecordedEvent {
    /// Event id.
    pub event_id: String,
    /// Its leaf in the log.
    pub leaf_index: u64,
    /// Its leaf hash, base64.
    pub leaf_hash: String,
    /// The subject's previous event's leaf (per-address chain).
    pub prev_leaf_index: Option<u64>,
    /// Server time, RFC 3339.
    pub recorded_at: String,
    /// For an opt-in with `confirmation_required`: the link to mail to the person. Opening it shows
    /// a page; only its button confirms (mail scanners follow links). Valid 14 days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation_url: Option<String>,
    /// `false` when a refusal binds some of an opt-in's purposes: it is recorded, but changes
    /// nothing for them (see `ineffective`).
    pub effective: bool,
    /// For an opt-in a refusal binds: which purposes, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ineffective: Option<Ineffective>,
}

/// Why an opt-in changed nothing for some of its purposes.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Ineffective {
    /// The purposes it changed nothing for.
    pub purposes: Vec<String>,
    /// Why (a refusal binds them, Art. 3(3)).
    pub reason: String,
}

/// A registered collection point version and its period of use (ordinance Art. 4(1)(ii)).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "9f2c1a7e5b3d8c6a4e2f0b9d7c5a3e1f9b7d5c3a1e9f7b5d3c1a9e7f5b3d1c9a", "name": "signup", "channel": "web_form", "content_type": "text/html; charset=utf-8", "content_sha256": "9f2c1a7e5b3d8c6a4e2f0b9d7c5a3e1f9b7d5c3a1e9f7b5d3c1a9e7f5b3d1c9a", "sender_name_shown": "Sakura Shop K.K.", "prechecked": false, "language": "ja", "leaf_index": 41, "registered_at": "2026-12-01T09:05:00.000Z"}))]
pub struct CollectionPoint {
    /// Content-addressed id (hex SHA-256 of its canonical description).
    pub id: String,
    /// Name.
    pub name: String,
    /// `web_form`, `email`, `paper`, …
    pub channel: String,
    /// MIME type of the content.
    pub content_type: String,
    /// SHA-256 of the content, hex.
    pub content_sha256: String,
    /// The sender name shown to the person.
    pub sender_name_shown: String,
    /// Whether the consent box was pre-checked.
    pub prechecked: bool,
    /// Language of the content.
    pub language: String,
    /// Its leaf.
    pub leaf_index: u64,
    /// Start of its period of use, RFC 3339.
    pub registered_at: String,
    /// End of its period of use (retired), RFC 3339; absent while in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
    /// Its `collection_point_retired` leaf, once retired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_leaf_index: Option<u64>,
    /// The exact content, base64 (when one version is read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
}

/// A page of collection point versions, in registration order.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"collection_points": [{"id": "9f2c1a7e5b3d8c6a4e2f0b9d7c5a3e1f9b7d5c3a1e9f7b5d3c1a9e7f5b3d1c9a", "name": "signup", "channel": "web_form", "content_type": "text/html; charset=utf-8", "content_sha256": "9f2c1a7e5b3d8c6a4e2f0b9d7c5a3e1f9b7d5c3a1e9f7b5d3c1a9e7f5b3d1c9a", "sender_name_shown": "Sakura Shop K.K.", "prechecked": false, "language": "ja", "leaf_index": 41, "registered_at": "2026-12-01T09:05:00.000Z"}]}))]
pub struct CollectionPointPage {
    /// The versions.
    pub collection_points: Vec<CollectionPoint>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// The send decision.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"may_send": true, "status": "granted", "basis": "consent",
    "since": "2026-11-28T10:00:01Z", "event_id": "6f1c…", "leaf_index": 42}))]
pub struct Decision {
    /// Whether mail for this purpose may be sent now.
    pub may_send: bool,
    /// `granted`, `pending` (awaiting confirmation), `withdrawn` or `none`.
    pub status: String,
    /// Legal basis of the deciding event.
    pub basis: Option<String>,
    /// Since when (the deciding event's recorded_at), RFC 3339.
    pub since: Option<String>,
    /// The deciding event.
    pub event_id: Option<String>,
    /// Its leaf.
    pub leaf_index: Option<u64>,
}

/// One event of a subject's history or of an export.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventRecord {
    /// Event id.
    pub event_id: String,
    /// The address (absent once erased).
    pub email: Option<String>,
    /// Kind.
    pub event: String,
    /// Purposes: a list or `"all"`.
    pub purposes: serde_json::Value,
    /// Legal basis (opt-ins).
    pub basis: Option<String>,
    /// Method.
    pub method: String,
    /// Collection point.
    pub collection_point: Option<String>,
    /// Who received it.
    pub received_by: serde_json::Value,
    /// Claimed time, RFC 3339.
    pub occurred_at: String,
    /// Server time, RFC 3339.
    pub recorded_at: String,
    /// Its leaf.
    pub leaf_index: u64,
    /// The previous event of the same address.
    pub prev_leaf_index: Option<u64>,
    /// For an opt-in awaiting confirmation: the link to mail to the person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation_url: Option<String>,
}

/// Several events, recorded together (all or none).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"events": [{"event": "opt_in", "email": "taro@example.jp", "purposes": ["newsletter"], "method": "web_form", "collection_point": "9f2c1a7e5b3d8c6a4e2f0b9d7c5a3e1f9b7d5c3a1e9f7b5d3c1a9e7f5b3d1c9a", "received_by": {"role": "sender", "name": "Sakura Shop K.K."}}, {"event": "opt_out", "email": "jiro@example.jp", "purposes": "all", "method": "phone", "received_by": {"role": "sender", "name": "Sakura Shop K.K."}}]}))]
pub struct EventBatch {
    /// 1–1,000 events, appended in this order.
    #[schema(min_items = 1, max_items = 1000)]
    pub events: Vec<NewEvent>,
}

/// The events of a batch, in order.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"events": [{"event_id": "01939c70-2a4b-7c5d-9e6f-708192a3b4c5", "leaf_index": 812, "leaf_hash": "q1vN3m4b0c2YQ7o9dXkqZr0rjM3s8m1yQe7xWcL2kpA=", "recorded_at": "2026-12-07T10:00:00.120Z", "effective": true}]}))]
pub struct RecordedBatch {
    /// One per submitted event.
    pub events: Vec<RecordedEvent>,
}

/// A campaign's pre-flight: may I mail these addresses for this purpose?
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"purpose": "newsletter", "emails": ["taro@example.jp", "hanako@example.jp"], "record": true}))]
pub struct CheckRequest {
    /// The purpose of the campaign.
    pub purpose: String,
    /// 1–10,000 addresses.
    #[schema(min_items = 1, max_items = 10000)]
    pub emails: Vec<String>,
    /// `true`: record the check in the log (a `campaign_check` leaf), so that each address's
    /// decision can be proven later (`GET /v1/campaign-checks/{id}/proof`). Senders only.
    #[serde(default)]
    pub record: bool,
}

/// A recorded campaign check: its `campaign_check` leaf.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CampaignCheck {
    /// Its id, for `GET /v1/campaign-checks/{id}/proof?email=`.
    pub id: String,
    /// The purpose checked.
    pub purpose: String,
    /// The index of its leaf; the decisions are as of the leaves before it.
    pub leaf_index: u64,
    /// Distinct valid addresses checked (its entries).
    pub addresses: u64,
    /// Hex RFC 9162 root over the entries.
    pub root: String,
    /// When it was recorded, RFC 3339.
    pub recorded_at: String,
}

/// The answer for one address of a pre-flight.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CheckResult {
    /// The address as given.
    pub email: String,
    /// Whether it may be mailed (false for an invalid address).
    pub may_send: bool,
    /// `granted`, `pending`, `withdrawn`, `none`, or `invalid`.
    pub status: String,
    /// Why the address is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The results of a pre-flight, in the order of the request.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"results": [{"email": "taro@example.jp", "may_send": true, "status": "granted"}, {"email": "hanako@example.jp", "may_send": false, "status": "withdrawn"}]}))]
pub struct CheckResults {
    /// One per address.
    pub results: Vec<CheckResult>,
    /// With `record: true`, the recorded check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_check: Option<CampaignCheck>,
}

/// What an erasure did.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"erased_at": "2027-02-01T09:00:00.000Z", "events": 3, "leaf_index": 9051}))]
pub struct Erasure {
    /// When the address, salt and evidence were erased, RFC 3339.
    pub erased_at: String,
    /// Events whose leaves are now unlinkable (they stay in the log).
    pub events: usize,
    /// The `erasure` leaf that records it; absent for an address that had no event (only
    /// links), which has no history in the log.
    pub leaf_index: Option<u64>,
}

/// A page of the suppression list.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"purpose": "newsletter", "addresses": ["taro@example.jp"], "erased": [], "entries": [{"email": "taro@example.jp", "purpose": "newsletter", "suppressed": true, "scope": "all", "refused_at": "2026-12-07T10:00:00.000Z", "reason": "one_click", "source": {"role": "sender", "name": "Sakura Shop K.K."}, "event_id": "01939c70-2a4b-7c5d-9e6f-708192a3b4c5", "leaf_index": 812}]}))]
pub struct SuppressionPage {
    /// The purpose.
    pub purpose: String,
    /// Addresses that must not be mailed for it (they refused), normalised.
    pub addresses: Vec<String>,
    /// Refusals of erased addresses, by label (hex): the address is gone, the refusal binds.
    /// Check an address against them with `GET /v1/consent` or `POST /v1/consent:check`, which
    /// find an erased address by its label.
    pub erased: Vec<String>,
    /// The same refusals, each with when, its scope, how and by whom it came.
    pub entries: Vec<SuppressionEntry>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// An address's suppression for a purpose: on the list (its refusal in force, and what it was)
/// or, in a change, off it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"email": "taro@example.jp", "purpose": "newsletter", "suppressed": true,
    "scope": "all", "refused_at": "2026-12-07T10:00:00.000Z", "reason": "one_click",
    "source": {"role": "sender", "name": "Sakura Shop K.K."}, "event_id": "01939c6e-5f10-7a2b-8c3d-4e5f60718293",
    "leaf_index": 812}))]
pub struct SuppressionEntry {
    /// The address, normalised; absent once erased (then `label`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// An erased address's label (hex): its refusal binds; check an address against it with
    /// `GET /v1/consent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The purpose.
    pub purpose: String,
    /// Whether it must not be mailed for the purpose.
    pub suppressed: bool,
    /// `purpose` (refused for this purpose) or `all` (refused for every purpose).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the refusal was recorded (RFC 3339; the original time, for an imported one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_at: Option<String>,
    /// How the person refused: the opt-out's method (`one_click`, `email`, `web_form`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who received the refusal (`received_by`: the sender or a commissioning party).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Receiver>,
    /// The refusal event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Its leaf in the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_index: Option<u64>,
}

/// Changes to the suppression list since a cursor: each address and purpose that events after
/// it touched, with its suppression as of now (apply each as a set, not an add).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"changes": [{"email": "taro@example.jp", "purpose": "newsletter", "suppressed": true, "scope": "all", "refused_at": "2026-12-07T10:00:00.000Z", "reason": "one_click", "source": {"role": "sender", "name": "Sakura Shop K.K."}, "event_id": "01939c70-2a4b-7c5d-9e6f-708192a3b4c5", "leaf_index": 812}], "resume_since": 812}))]
pub struct SuppressionChanges {
    /// In the order of their latest event.
    pub changes: Vec<SuppressionEntry>,
    /// More changes wait now: call again with `since` = this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
    /// Where the next poll starts (`since`), once this page is applied; absent while the
    /// tenant has no events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_since: Option<u64>,
}

/// A read of a tenant's consent records by a regulator.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RegulatorRead {
    /// The regulator (its token's subject).
    pub regulator: String,
    /// What was read: `decision`, `check`, `history`, `export`, `suppression`, `tenant`.
    pub operation: String,
    /// When, RFC 3339.
    pub read_at: String,
}

/// The recorded regulator reads of a tenant, newest first.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"reads": [{"regulator": "officer-tanaka", "operation": "evidence", "read_at": "2026-12-07T11:00:00.000Z"}]}))]
pub struct RegulatorReads {
    /// Reads, newest first.
    pub reads: Vec<RegulatorRead>,
}

/// What a confirmation link confirms, for its page.
#[derive(Clone, Debug)]
pub struct ConfirmationTarget {
    /// The sender's legal name, as shown to recipients.
    pub sender: String,
    /// The tenant's default language.
    pub language: String,
    /// The purposes awaiting confirmation.
    pub purposes: Vec<PurposeDefinition>,
}

/// A signup from a browser form, with a publishable key: always a pending opt-in.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "taro@example.jp", "purposes": ["newsletter"], "consent_text": "メールマガジンを受け取る", "prechecked": false, "language": "ja"}))]
pub struct Signup {
    /// The address typed in.
    pub email: String,
    /// The purposes ticked.
    pub purposes: Vec<String>,
    /// The exact consent text the person saw (it becomes a collection point version, named
    /// `signup:<publishable key>`, showing the tenant's legal name as the sender).
    pub consent_text: String,
    /// Whether the consent box was pre-checked.
    pub prechecked: bool,
    /// Language of the form, `ja` or `en`.
    pub language: String,
}

/// What a signup recorded (the confirmation link goes to the person's mailbox, not the page).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"event_id": "01939c70-2a4b-7c5d-9e6f-708192a3b4c5", "leaf_index": 812, "status": "pending"}))]
pub struct SignupRecorded {
    /// Event id.
    pub event_id: String,
    /// Its leaf.
    pub leaf_index: u64,
    /// `pending`: it takes effect once the person confirms.
    pub status: String,
}

/// A publishable key for browser signup forms.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"key": "pk_3q2-7wAAQSkZJRgABAQEAYABg", "tenant": "01939c6e-5f10-7a2b-8c3d-4e5f60718293",
    "origins": ["https://shop.example.jp"], "created_at": "2026-12-07T10:00:00.000Z"}))]
pub struct PublishableKey {
    /// The key, `pk_…` (public: it goes into the page).
    pub key: String,
    /// Its tenant.
    pub tenant: String,
    /// Origins allowed to use it, e.g. `https://shop.example.jp`.
    pub origins: Vec<String>,
    /// Created at, RFC 3339.
    pub created_at: String,
    /// Revoked at, RFC 3339: signups with it are refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// A page of a tenant's publishable keys, oldest first.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"keys": [{"key": "pk_3q2-7wAAQSkZJRgABAQEAYABg", "tenant": "01939c6e-5f10-7a2b-8c3d-4e5f60718293", "origins": ["https://shop.example.jp"], "created_at": "2026-12-07T10:00:00.000Z"}]}))]
pub struct PublishableKeyPage {
    /// The keys, revoked ones too.
    pub keys: Vec<PublishableKey>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// A page of tenants, oldest first.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"tenants": [{"id": "01939c6e-5f10-7a2b-8c3d-4e5f60718293", "name": "sakura-shop", "legal_name": "Sakura Shop K.K.", "postal_address": "1-2-3 Chiyoda, Chiyoda-ku, Tokyo 100-0001", "complaint_contact": "support@shop.example.jp", "optout_contact": "https://shop.example.jp/unsubscribe", "default_language": "ja", "legal_hold": false, "purposes": [{"purpose": "newsletter", "description": "Monthly newsletter", "label_ja": "メールマガジン", "label_en": "Newsletter"}], "created_at": "2026-12-01T09:00:00.000Z"}]}))]
pub struct TenantPage {
    /// The tenants.
    pub tenants: Vec<Tenant>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// What an import recorded.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"imported": 2500, "first_leaf_index": 813, "last_leaf_index": 3312}))]
pub struct ImportSummary {
    /// Records imported.
    pub imported: u64,
    /// Leaf of the first.
    pub first_leaf_index: u64,
    /// Leaf of the last.
    pub last_leaf_index: u64,
}
