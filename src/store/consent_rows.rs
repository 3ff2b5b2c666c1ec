//! Queries for tenants, purposes, subjects, events, collection points, the consent state and
//! idempotency keys. Written once, compiled for both backends. No consent rules here.

use consent_ledger_sdk::consent::Status;
use diesel::prelude::*;
use diesel::{PgConnection, QueryResult, SqliteConnection};

use super::at_most_one;
use super::schema::{
    campaign_checks, collection_points, consent_state, erasures, events, idempotency_keys,
    legal_holds, publishable_keys, regulator_reads, subjects, tenant_purposes, tenants,
};

/// A publishable key.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = publishable_keys)]
pub struct PublishableKeyRow {
    /// The key (`pk_…`).
    pub id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// JSON list of allowed origins.
    pub origins: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, once revoked.
    pub revoked_at: Option<i64>,
}

/// A recorded read by a regulator.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = regulator_reads)]
pub struct RegulatorReadRow {
    /// Id.
    pub id: String,
    /// The tenant whose records were read.
    pub tenant_id: String,
    /// The regulator token's subject.
    pub regulator: String,
    /// What was read (operation name; no personal data).
    pub operation: String,
    /// When, Unix ms.
    pub read_at: i64,
}

/// A recorded campaign check (beside its `campaign_check` leaf).
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = campaign_checks)]
pub struct CampaignCheckRow {
    /// Id (`chk_…`).
    pub id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// The purpose checked.
    pub purpose: String,
    /// Its leaf.
    pub leaf_index: i64,
    /// When sequenced, Unix ms.
    pub recorded_at: i64,
    /// How many entries.
    pub addresses: i64,
    /// Hex root over the entries.
    pub root: String,
    /// The 41-byte entries, concatenated in key order.
    pub entries: Vec<u8>,
}

/// A subject with a refusal: its id, its address (`None` once erased) and its key.
pub type RefusingSubject = (String, Option<String>, Vec<u8>);

/// An erasure (beside its `erasure` leaf).
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = erasures)]
pub struct ErasureRow {
    /// Its leaf.
    pub leaf_index: i64,
    /// Its tenant.
    pub tenant_id: String,
    /// The subject erased.
    pub subject_id: String,
    /// When sequenced, Unix ms.
    pub recorded_at: i64,
}

/// A legal hold put on or lifted (beside its `legal_hold` leaf).
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = legal_holds)]
pub struct LegalHoldRow {
    /// Its leaf.
    pub leaf_index: i64,
    /// Its tenant.
    pub tenant_id: String,
    /// On (put) or off (lifted).
    pub hold_on: bool,
    /// The order's date (`YYYY-MM-DD`).
    pub order_date: String,
    /// The order's reference.
    pub order_reference: String,
    /// When sequenced, Unix ms.
    pub recorded_at: i64,
}

/// A tenant.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = tenants)]
pub struct TenantRow {
    /// Id.
    pub id: String,
    /// Short name.
    pub name: String,
    /// Legal name as shown to recipients.
    pub legal_name: String,
    /// Postal address.
    pub postal_address: Option<String>,
    /// Complaint contact.
    pub complaint_contact: Option<String>,
    /// Opt-out contact.
    pub optout_contact: Option<String>,
    /// `ja` or `en`.
    pub default_language: String,
    /// A measures order was issued: retention is one year.
    pub legal_hold: bool,
    /// Unix ms.
    pub created_at: i64,
}

/// A subject (one address of one tenant).
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = subjects)]
pub struct SubjectRow {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Normalised address; `None` once erased.
    pub address: Option<String>,
    /// Salt of its evidence hashes (and of a salted commitment); `None` once erased.
    pub salt: Option<Vec<u8>>,
    /// The key leaves name the subject by: its VRF label, or (subjects from before the log's
    /// VRF key) its salted commitment.
    pub commitment: Vec<u8>,
    /// Leaf index of the latest event.
    pub last_leaf_index: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, once erased.
    pub erased_at: Option<i64>,
    /// `commitment` is a VRF label (kept after erasure: the label's state outlives the address).
    pub vrf: bool,
}

/// A consent event.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = events)]
pub struct EventRow {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Subject.
    pub subject_id: String,
    /// `opt_in`, `opt_out`, `confirm`.
    pub kind: String,
    /// JSON: a list of purposes or `"all"`.
    pub purposes: String,
    /// Legal basis.
    pub basis: String,
    /// Collection method.
    pub method: String,
    /// Collection point id.
    pub collection_point: Option<String>,
    /// JSON: who received it.
    pub received_by: String,
    /// Claimed time, Unix ms.
    pub occurred_at: i64,
    /// Server time, Unix ms.
    pub recorded_at: i64,
    /// Its leaf.
    pub leaf_index: i64,
    /// The subject's previous event's leaf.
    pub prev_leaf_index: Option<i64>,
    /// An opt-in awaiting the person's confirmation.
    pub confirmation_required: bool,
    /// JSON evidence (erasable).
    pub evidence: Option<String>,
}

/// The latest effect for one subject and purpose.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = consent_state)]
pub struct StateEntryRow {
    /// Subject.
    pub subject_id: String,
    /// Purpose, or `*` for all.
    pub purpose: String,
    /// `granted`, `pending` or `withdrawn`.
    pub status: String,
    /// Legal basis of the event.
    pub basis: String,
    /// Since (recorded_at of the event), Unix ms.
    pub since: i64,
    /// The event.
    pub event_id: String,
    /// Its leaf.
    pub leaf_index: i64,
    /// The deciding event's claimed time, Unix ms: a stale opt-in cannot beat a newer opt-out.
    pub occurred_at: i64,
}

/// A registered collection point version.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = collection_points)]
pub struct CollectionPointRow {
    /// Content-addressed id (hex SHA-256).
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Name shared by its versions.
    pub name: String,
    /// Channel.
    pub channel: String,
    /// MIME type of the content.
    pub content_type: String,
    /// The exact content shown.
    pub content: Vec<u8>,
    /// Sender name shown to the person.
    pub sender_name_shown: String,
    /// Whether the consent box was pre-checked.
    pub prechecked: bool,
    /// Language.
    pub language: String,
    /// Its leaf.
    pub leaf_index: i64,
    /// Start of its period of use, Unix ms.
    pub registered_at: i64,
    /// End of its period of use, Unix ms.
    pub superseded_at: Option<i64>,
}

/// A stored first answer for an idempotency key.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRow {
    /// Tenant.
    pub tenant_id: String,
    /// The client's key.
    pub key: String,
    /// SHA-256 of the request it answered.
    pub request_sha256: Vec<u8>,
    /// HTTP status.
    pub status: i32,
    /// What the answer is rebuilt from; `None` while the request is in flight.
    pub body: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// The process that holds it while in flight (`Store::owner`), if it could name one.
    pub owner: Option<String>,
}

/// Queries for consent records.
pub trait ConsentRows {
    /// Inserts a tenant.
    fn insert_tenant(&mut self, row: &TenantRow) -> QueryResult<()>;
    /// A tenant by id.
    fn tenant(&mut self, id: &str) -> QueryResult<Option<TenantRow>>;
    /// Adds a purpose (no-op if present).
    fn add_purpose(
        &mut self,
        tenant_id: &str,
        purpose: &str,
        description: &str,
        now: i64,
    ) -> QueryResult<()>;
    /// A tenant's purposes, sorted.
    fn purposes(&mut self, tenant_id: &str) -> QueryResult<Vec<(String, String)>>;
    /// The subject with this address.
    fn subject_by_address(
        &mut self,
        tenant_id: &str,
        address: &str,
    ) -> QueryResult<Option<SubjectRow>>;
    /// The send decision's rows in one query: the state rows for `purpose` and for all purposes
    /// (`*`) of the subject with this address.
    fn decision_rows(
        &mut self,
        tenant_id: &str,
        address: &str,
        purpose: &str,
    ) -> QueryResult<Vec<StateEntryRow>>;
    /// The subjects with these addresses (at most 500 per call).
    fn subjects_by_addresses(
        &mut self,
        tenant_id: &str,
        addresses: &[String],
    ) -> QueryResult<Vec<SubjectRow>>;
    /// The state rows of these subjects for these purposes (at most 500 subjects per call).
    fn state_entries_of(
        &mut self,
        subject_ids: &[String],
        purposes: &[String],
    ) -> QueryResult<Vec<StateEntryRow>>;
    /// Subjects (id, address) of a tenant with a `withdrawn` row for one of `purposes`, ids
    /// after `after`, ascending, at most `limit`.
    fn withdrawn_subjects(
        &mut self,
        tenant_id: &str,
        purposes: &[String],
        after: &str,
        limit: i64,
    ) -> QueryResult<Vec<RefusingSubject>>;
    /// Whether any subject of the tenant was erased (then an unknown address may be an erased
    /// one, found by its label).
    fn has_erased(&mut self, tenant_id: &str) -> QueryResult<bool>;
    /// Erases a subject's personal data: address, salt and evidence. Its consent state rows
    /// stay: they hold no personal data, and a refusal binds after erasure too.
    fn erase_subject(&mut self, subject_id: &str, now: i64) -> QueryResult<()>;
    /// The subject a VRF label names.
    fn subject_by_label(&mut self, label: &[u8]) -> QueryResult<Option<SubjectRow>>;
    /// Ids of subjects from before labels (a salted commitment) that still have their address,
    /// ascending, after `after`, at most `limit`: those the relabelling has still to link.
    fn salted_subjects(&mut self, after: &str, limit: i64) -> QueryResult<Vec<String>>;
    /// Names a subject by its label from now on, its latest leaf `leaf_index` (the relabel
    /// leaf, or its old head when it had no chain).
    fn relabel_subject(
        &mut self,
        subject_id: &str,
        label: &[u8],
        leaf_index: Option<i64>,
    ) -> QueryResult<()>;
    /// The labelled subjects of a tenant with these labels (at most 500 per call), erased or not.
    fn subjects_by_labels(
        &mut self,
        tenant_id: &str,
        labels: &[Vec<u8>],
    ) -> QueryResult<Vec<SubjectRow>>;
    /// Gives an erased subject its address back (it came back in a new event), with a fresh salt
    /// for the evidence hashes of its events from now on.
    fn restore_address(&mut self, subject_id: &str, address: &str, salt: &[u8]) -> QueryResult<()>;
    /// An event by id.
    fn event(&mut self, id: &str) -> QueryResult<Option<EventRow>>;
    /// A subject by id.
    fn subject(&mut self, id: &str) -> QueryResult<Option<SubjectRow>>;
    /// Inserts a subject.
    fn insert_subject(&mut self, row: &SubjectRow) -> QueryResult<()>;
    /// Records the subject's latest leaf.
    fn set_last_leaf(&mut self, subject_id: &str, leaf_index: i64) -> QueryResult<()>;
    /// Inserts an event.
    fn insert_event(&mut self, row: &EventRow) -> QueryResult<()>;
    /// A subject's events, oldest first.
    fn subject_events(&mut self, subject_id: &str) -> QueryResult<Vec<EventRow>>;
    /// A tenant's events after a leaf index, oldest first, with the subjects' addresses.
    fn tenant_events(
        &mut self,
        tenant_id: &str,
        after: i64,
        limit: i64,
    ) -> QueryResult<Vec<(EventRow, Option<String>)>>;
    /// The state rows of a subject for these purposes.
    fn state_entries(
        &mut self,
        subject_id: &str,
        purposes: &[String],
    ) -> QueryResult<Vec<StateEntryRow>>;
    /// All state rows of a subject.
    fn all_state_entries(&mut self, subject_id: &str) -> QueryResult<Vec<StateEntryRow>>;
    /// Inserts or replaces a state row.
    fn put_state_entry(&mut self, row: &StateEntryRow) -> QueryResult<()>;
    /// A collection point version.
    fn collection_point(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> QueryResult<Option<CollectionPointRow>>;
    /// Ends the period of use of the current versions named `name`.
    fn supersede_collection_points(
        &mut self,
        tenant_id: &str,
        name: &str,
        now: i64,
    ) -> QueryResult<()>;
    /// Inserts a collection point version.
    fn insert_collection_point(&mut self, row: &CollectionPointRow) -> QueryResult<()>;
    /// Inserts a recorded campaign check.
    fn insert_campaign_check(&mut self, row: &CampaignCheckRow) -> QueryResult<()>;
    /// A tenant's recorded campaign check.
    fn campaign_check(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> QueryResult<Option<CampaignCheckRow>>;
    /// Inserts an erasure.
    fn insert_erasure(&mut self, row: &ErasureRow) -> QueryResult<()>;
    /// A subject's erasures, in log order.
    fn subject_erasures(&mut self, subject_id: &str) -> QueryResult<Vec<ErasureRow>>;
    /// Inserts a legal hold's change (and sets the tenant's `legal_hold` to it).
    fn insert_legal_hold(&mut self, row: &LegalHoldRow) -> QueryResult<()>;
    /// A tenant's legal holds, in log order.
    fn legal_holds(&mut self, tenant_id: &str) -> QueryResult<Vec<LegalHoldRow>>;
    /// Each tenant with legal holds, and the leaf of its latest.
    fn hold_heads(&mut self) -> QueryResult<Vec<(String, Option<i64>)>>;
    /// The stored answer for an idempotency key.
    fn idempotent_answer(
        &mut self,
        tenant_id: &str,
        key: &str,
    ) -> QueryResult<Option<IdempotencyRow>>;
    /// Reserves an idempotency key (body `None`); false if the key exists.
    fn reserve_idempotency_key(&mut self, row: &IdempotencyRow) -> QueryResult<bool>;
    /// Restarts an abandoned reservation (still without body, and created before
    /// `stale_before` or held by `gone_owner`) for `owner`.
    fn take_over_idempotency_key(
        &mut self,
        tenant_id: &str,
        key: &str,
        stale_before: i64,
        gone_owner: Option<&str>,
        now: i64,
        owner: Option<&str>,
    ) -> QueryResult<bool>;
    /// Completes a reservation with its answer, if it is still the claim made at `claimed_at`
    /// (not taken over since, not completed); whether it was.
    fn complete_idempotency_key(
        &mut self,
        tenant_id: &str,
        key: &str,
        claimed_at: i64,
        status: i32,
        body: &str,
    ) -> QueryResult<bool>;
    /// Drops a reservation that got no answer (the request failed; nothing was recorded), if it
    /// is still the claim made at `claimed_at`.
    fn release_idempotency_key(
        &mut self,
        tenant_id: &str,
        key: &str,
        claimed_at: i64,
    ) -> QueryResult<()>;
    /// Deletes idempotency keys reserved before `before` (Unix ms); returns how many.
    fn purge_idempotency_keys(&mut self, before: i64) -> QueryResult<usize>;
    /// Stores a publishable key.
    fn insert_publishable_key(&mut self, row: &PublishableKeyRow) -> QueryResult<()>;
    /// Revokes a tenant's publishable key; false if there was no such unrevoked key.
    fn revoke_publishable_key(&mut self, tenant_id: &str, id: &str, now: i64) -> QueryResult<bool>;
    /// An unrevoked publishable key.
    fn publishable_key(&mut self, id: &str) -> QueryResult<Option<PublishableKeyRow>>;
    /// Records a regulator's read.
    fn insert_regulator_read(&mut self, row: &RegulatorReadRow) -> QueryResult<()>;
    /// A tenant's recorded regulator reads, newest first, at most `limit`.
    fn regulator_reads(
        &mut self,
        tenant_id: &str,
        limit: i64,
    ) -> QueryResult<Vec<RegulatorReadRow>>;
    /// Replaces a tenant's display profile (names, addresses, contacts, language).
    fn update_tenant_profile(&mut self, row: &TenantRow) -> QueryResult<bool>;
}

macro_rules! impl_consent_rows {
    ($conn:ty) => {
        impl ConsentRows for $conn {
            fn insert_tenant(&mut self, row: &TenantRow) -> QueryResult<()> {
                diesel::insert_into(tenants::table)
                    .values(row)
                    .execute(self)
                    .map(drop)
            }

            fn tenant(&mut self, id: &str) -> QueryResult<Option<TenantRow>> {
                tenants::table.find(id).load(self).map(at_most_one)
            }

            fn add_purpose(
                &mut self,
                tenant_id: &str,
                purpose: &str,
                description: &str,
                now: i64,
            ) -> QueryResult<()> {
                diesel::insert_into(tenant_purposes::table)
                    .values((
                        tenant_purposes::tenant_id.eq(tenant_id),
                        tenant_purposes::purpose.eq(purpose),
                        tenant_purposes::description.eq(description),
                        tenant_purposes::created_at.eq(now),
                    ))
                    .on_conflict((tenant_purposes::tenant_id, tenant_purposes::purpose))
                    .do_nothing()
                    .execute(self)
                    .map(drop)
            }

            fn purposes(&mut self, tenant_id: &str) -> QueryResult<Vec<(String, String)>> {
                tenant_purposes::table
                    .filter(tenant_purposes::tenant_id.eq(tenant_id))
                    .order(tenant_purposes::purpose)
                    .select((tenant_purposes::purpose, tenant_purposes::description))
                    .load(self)
            }

            fn subject_by_address(
                &mut self,
                tenant_id: &str,
                address: &str,
            ) -> QueryResult<Option<SubjectRow>> {
                subjects::table
                    .filter(
                        subjects::tenant_id
                            .eq(tenant_id)
                            .and(subjects::address.eq(address)),
                    )
                    .load(self)
                    .map(at_most_one)
            }

            fn decision_rows(
                &mut self,
                tenant_id: &str,
                address: &str,
                purpose: &str,
            ) -> QueryResult<Vec<StateEntryRow>> {
                subjects::table
                    .inner_join(consent_state::table.on(consent_state::subject_id.eq(subjects::id)))
                    .filter(
                        subjects::tenant_id
                            .eq(tenant_id)
                            .and(subjects::address.eq(address)),
                    )
                    .filter(
                        consent_state::purpose
                            .eq(purpose)
                            .or(consent_state::purpose.eq("*")),
                    )
                    .select(consent_state::all_columns)
                    .load(self)
            }

            fn subjects_by_addresses(
                &mut self,
                tenant_id: &str,
                addresses: &[String],
            ) -> QueryResult<Vec<SubjectRow>> {
                subjects::table
                    .filter(
                        subjects::tenant_id
                            .eq(tenant_id)
                            .and(subjects::address.eq_any(addresses)),
                    )
                    .load(self)
            }

            fn state_entries_of(
                &mut self,
                subject_ids: &[String],
                purposes: &[String],
            ) -> QueryResult<Vec<StateEntryRow>> {
                consent_state::table
                    .filter(
                        consent_state::subject_id
                            .eq_any(subject_ids)
                            .and(consent_state::purpose.eq_any(purposes)),
                    )
                    .load(self)
            }

            fn withdrawn_subjects(
                &mut self,
                tenant_id: &str,
                purposes: &[String],
                after: &str,
                limit: i64,
            ) -> QueryResult<Vec<RefusingSubject>> {
                subjects::table
                    .inner_join(consent_state::table.on(consent_state::subject_id.eq(subjects::id)))
                    .filter(subjects::tenant_id.eq(tenant_id))
                    .filter(subjects::id.gt(after))
                    .filter(consent_state::status.eq(Status::Withdrawn.as_str()))
                    .filter(consent_state::purpose.eq_any(purposes))
                    .select((subjects::id, subjects::address, subjects::commitment))
                    .distinct()
                    .order(subjects::id)
                    .limit(limit)
                    .load(self)
            }

            fn has_erased(&mut self, tenant_id: &str) -> QueryResult<bool> {
                diesel::select(diesel::dsl::exists(
                    subjects::table.filter(
                        subjects::tenant_id
                            .eq(tenant_id)
                            .and(subjects::erased_at.is_not_null()),
                    ),
                ))
                .get_result(self)
            }

            fn erase_subject(&mut self, subject_id: &str, now: i64) -> QueryResult<()> {
                diesel::update(subjects::table.find(subject_id))
                    .set((
                        subjects::address.eq(None::<String>),
                        subjects::salt.eq(None::<Vec<u8>>),
                        subjects::erased_at.eq(Some(now)),
                    ))
                    .execute(self)?;
                diesel::update(events::table.filter(events::subject_id.eq(subject_id)))
                    .set(events::evidence.eq(None::<String>))
                    .execute(self)
                    .map(drop)
            }

            fn subjects_by_labels(
                &mut self,
                tenant_id: &str,
                labels: &[Vec<u8>],
            ) -> QueryResult<Vec<SubjectRow>> {
                subjects::table
                    .filter(
                        subjects::tenant_id
                            .eq(tenant_id)
                            .and(subjects::vrf)
                            .and(subjects::commitment.eq_any(labels)),
                    )
                    .load(self)
            }

            fn subject_by_label(&mut self, label: &[u8]) -> QueryResult<Option<SubjectRow>> {
                subjects::table
                    .filter(subjects::commitment.eq(label).and(subjects::vrf))
                    .load(self)
                    .map(at_most_one)
            }

            fn salted_subjects(&mut self, after: &str, limit: i64) -> QueryResult<Vec<String>> {
                subjects::table
                    .filter(
                        subjects::vrf
                            .eq(false)
                            .and(subjects::address.is_not_null())
                            .and(subjects::id.gt(after)),
                    )
                    .select(subjects::id)
                    .order(subjects::id)
                    .limit(limit)
                    .load(self)
            }

            fn relabel_subject(
                &mut self,
                subject_id: &str,
                label: &[u8],
                leaf_index: Option<i64>,
            ) -> QueryResult<()> {
                diesel::update(subjects::table.find(subject_id))
                    .set((
                        subjects::commitment.eq(label),
                        subjects::vrf.eq(true),
                        subjects::last_leaf_index.eq(leaf_index),
                    ))
                    .execute(self)
                    .map(drop)
            }

            fn restore_address(
                &mut self,
                subject_id: &str,
                address: &str,
                salt: &[u8],
            ) -> QueryResult<()> {
                diesel::update(subjects::table.find(subject_id))
                    .set((subjects::address.eq(address), subjects::salt.eq(salt)))
                    .execute(self)
                    .map(drop)
            }

            fn event(&mut self, id: &str) -> QueryResult<Option<EventRow>> {
                events::table.find(id).load(self).map(at_most_one)
            }

            fn subject(&mut self, id: &str) -> QueryResult<Option<SubjectRow>> {
                subjects::table.find(id).load(self).map(at_most_one)
            }

            fn insert_subject(&mut self, row: &SubjectRow) -> QueryResult<()> {
                diesel::insert_into(subjects::table)
                    .values(row)
                    .execute(self)
                    .map(drop)
            }

            fn set_last_leaf(&mut self, subject_id: &str, leaf_index: i64) -> QueryResult<()> {
                diesel::update(subjects::table.find(subject_id))
                    .set(subjects::last_leaf_index.eq(leaf_index))
                    .execute(self)
                    .map(drop)
            }

            fn insert_event(&mut self, row: &EventRow) -> QueryResult<()> {
                diesel::insert_into(events::table)
                    .values(row)
                    .execute(self)
                    .map(drop)
            }

            fn subject_events(&mut self, subject_id: &str) -> QueryResult<Vec<EventRow>> {
                events::table
                    .filter(events::subject_id.eq(subject_id))
                    .order(events::leaf_index)
                    .load(self)
            }

            fn tenant_events(
                &mut self,
                tenant_id: &str,
                after: i64,
                limit: i64,
            ) -> QueryResult<Vec<(EventRow, Option<String>)>> {
                events::table
                    .inner_join(subjects::table)
                    .filter(
                        events::tenant_id
                            .eq(tenant_id)
                            .and(events::leaf_index.gt(after)),
                    )
                    .order(events::leaf_index)
                    .limit(limit)
                    .select((events::all_columns, subjects::address))
                    .load(self)
            }

            fn state_entries(
                &mut self,
                subject_id: &str,
                purposes: &[String],
            ) -> QueryResult<Vec<StateEntryRow>> {
                consent_state::table
                    .filter(
                        consent_state::subject_id
                            .eq(subject_id)
                            .and(consent_state::purpose.eq_any(purposes)),
                    )
                    .load(self)
            }

            fn all_state_entries(&mut self, subject_id: &str) -> QueryResult<Vec<StateEntryRow>> {
                consent_state::table
                    .filter(consent_state::subject_id.eq(subject_id))
                    .order(consent_state::purpose)
                    .load(self)
            }

            fn put_state_entry(&mut self, row: &StateEntryRow) -> QueryResult<()> {
                // An update, then an insert if there was nothing to update: both statements stay
                // prepared (diesel never caches an upsert's), and callers hold the writer lock.
                let updated =
                    diesel::update(consent_state::table.find((&row.subject_id, &row.purpose)))
                        .set((
                            consent_state::status.eq(&row.status),
                            consent_state::basis.eq(&row.basis),
                            consent_state::since.eq(row.since),
                            consent_state::event_id.eq(&row.event_id),
                            consent_state::leaf_index.eq(row.leaf_index),
                            consent_state::occurred_at.eq(row.occurred_at),
                        ))
                        .execute(self)?;
                if updated == 0 {
                    diesel::insert_into(consent_state::table)
                        .values(row)
                        .execute(self)?;
                }
                Ok(())
            }

            fn collection_point(
                &mut self,
                tenant_id: &str,
                id: &str,
            ) -> QueryResult<Option<CollectionPointRow>> {
                collection_points::table
                    .find((tenant_id, id))
                    .load(self)
                    .map(at_most_one)
            }

            fn supersede_collection_points(
                &mut self,
                tenant_id: &str,
                name: &str,
                now: i64,
            ) -> QueryResult<()> {
                diesel::update(
                    collection_points::table.filter(
                        collection_points::tenant_id
                            .eq(tenant_id)
                            .and(collection_points::name.eq(name))
                            .and(collection_points::superseded_at.is_null()),
                    ),
                )
                .set(collection_points::superseded_at.eq(now))
                .execute(self)
                .map(drop)
            }

            fn insert_collection_point(&mut self, row: &CollectionPointRow) -> QueryResult<()> {
                diesel::insert_into(collection_points::table)
                    .values(row)
                    .execute(self)
                    .map(drop)
            }

            fn insert_campaign_check(&mut self, row: &CampaignCheckRow) -> QueryResult<()> {
                diesel::insert_into(campaign_checks::table)
                    .values(row)
                    .execute(self)
                    .map(drop)
            }

            fn campaign_check(
                &mut self,
                tenant_id: &str,
                id: &str,
            ) -> QueryResult<Option<CampaignCheckRow>> {
                campaign_checks::table
                    .filter(
                        campaign_checks::id
                            .eq(id)
                            .and(campaign_checks::tenant_id.eq(tenant_id)),
                    )
                    .load(self)
                    .map(at_most_one)
            }

            fn insert_erasure(&mut self, row: &ErasureRow) -> QueryResult<()> {
                diesel::insert_into(erasures::table)
                    .values(row)
                    .execute(self)
                    .map(drop)
            }

            fn subject_erasures(&mut self, subject_id: &str) -> QueryResult<Vec<ErasureRow>> {
                erasures::table
                    .filter(erasures::subject_id.eq(subject_id))
                    .order(erasures::leaf_index)
                    .load(self)
            }

            fn insert_legal_hold(&mut self, row: &LegalHoldRow) -> QueryResult<()> {
                diesel::insert_into(legal_holds::table)
                    .values(row)
                    .execute(self)?;
                diesel::update(tenants::table.find(&row.tenant_id))
                    .set(tenants::legal_hold.eq(row.hold_on))
                    .execute(self)
                    .map(drop)
            }

            fn legal_holds(&mut self, tenant_id: &str) -> QueryResult<Vec<LegalHoldRow>> {
                legal_holds::table
                    .filter(legal_holds::tenant_id.eq(tenant_id))
                    .order(legal_holds::leaf_index)
                    .load(self)
            }

            fn hold_heads(&mut self) -> QueryResult<Vec<(String, Option<i64>)>> {
                legal_holds::table
                    .group_by(legal_holds::tenant_id)
                    .select((
                        legal_holds::tenant_id,
                        diesel::dsl::max(legal_holds::leaf_index),
                    ))
                    .load(self)
            }

            fn idempotent_answer(
                &mut self,
                tenant_id: &str,
                key: &str,
            ) -> QueryResult<Option<IdempotencyRow>> {
                idempotency_keys::table
                    .find((tenant_id, key))
                    .load(self)
                    .map(at_most_one)
            }

            fn reserve_idempotency_key(&mut self, row: &IdempotencyRow) -> QueryResult<bool> {
                let inserted = diesel::insert_into(idempotency_keys::table)
                    .values(row)
                    .on_conflict((idempotency_keys::tenant_id, idempotency_keys::key))
                    .do_nothing()
                    .execute(self)?;
                Ok(inserted == 1)
            }

            fn take_over_idempotency_key(
                &mut self,
                tenant_id: &str,
                key: &str,
                stale_before: i64,
                gone_owner: Option<&str>,
                now: i64,
                owner: Option<&str>,
            ) -> QueryResult<bool> {
                // `owner = NULL` is never true: a NULL owner waits for the timeout.
                let abandoned = idempotency_keys::created_at
                    .lt(stale_before)
                    .or(idempotency_keys::owner.eq(gone_owner));
                let updated = diesel::update(
                    idempotency_keys::table.filter(
                        idempotency_keys::tenant_id
                            .eq(tenant_id)
                            .and(idempotency_keys::key.eq(key))
                            .and(idempotency_keys::body.is_null())
                            .and(abandoned),
                    ),
                )
                .set((
                    idempotency_keys::created_at.eq(now),
                    idempotency_keys::owner.eq(owner),
                ))
                .execute(self)?;
                Ok(updated == 1)
            }

            fn complete_idempotency_key(
                &mut self,
                tenant_id: &str,
                key: &str,
                claimed_at: i64,
                status: i32,
                body: &str,
            ) -> QueryResult<bool> {
                let updated = diesel::update(
                    idempotency_keys::table.find((tenant_id, key)).filter(
                        idempotency_keys::created_at
                            .eq(claimed_at)
                            .and(idempotency_keys::body.is_null()),
                    ),
                )
                .set((
                    idempotency_keys::status.eq(status),
                    idempotency_keys::body.eq(Some(body)),
                ))
                .execute(self)?;
                Ok(updated == 1)
            }

            fn purge_idempotency_keys(&mut self, before: i64) -> QueryResult<usize> {
                diesel::delete(
                    idempotency_keys::table.filter(idempotency_keys::created_at.lt(before)),
                )
                .execute(self)
            }

            fn release_idempotency_key(
                &mut self,
                tenant_id: &str,
                key: &str,
                claimed_at: i64,
            ) -> QueryResult<()> {
                diesel::delete(
                    idempotency_keys::table.filter(
                        idempotency_keys::tenant_id
                            .eq(tenant_id)
                            .and(idempotency_keys::key.eq(key))
                            .and(idempotency_keys::created_at.eq(claimed_at))
                            .and(idempotency_keys::body.is_null()),
                    ),
                )
                .execute(self)
                .map(drop)
            }

            fn insert_publishable_key(&mut self, row: &PublishableKeyRow) -> QueryResult<()> {
                diesel::insert_into(publishable_keys::table)
                    .values(row)
                    .execute(self)
                    .map(drop)
            }

            fn revoke_publishable_key(
                &mut self,
                tenant_id: &str,
                id: &str,
                now: i64,
            ) -> QueryResult<bool> {
                let n = diesel::update(
                    publishable_keys::table.filter(
                        publishable_keys::id
                            .eq(id)
                            .and(publishable_keys::tenant_id.eq(tenant_id))
                            .and(publishable_keys::revoked_at.is_null()),
                    ),
                )
                .set(publishable_keys::revoked_at.eq(now))
                .execute(self)?;
                Ok(n == 1)
            }

            fn publishable_key(&mut self, id: &str) -> QueryResult<Option<PublishableKeyRow>> {
                publishable_keys::table
                    .filter(
                        publishable_keys::id
                            .eq(id)
                            .and(publishable_keys::revoked_at.is_null()),
                    )
                    .load(self)
                    .map(at_most_one)
            }

            fn insert_regulator_read(&mut self, row: &RegulatorReadRow) -> QueryResult<()> {
                diesel::insert_into(regulator_reads::table)
                    .values(row)
                    .execute(self)
                    .map(drop)
            }

            fn regulator_reads(
                &mut self,
                tenant_id: &str,
                limit: i64,
            ) -> QueryResult<Vec<RegulatorReadRow>> {
                regulator_reads::table
                    .filter(regulator_reads::tenant_id.eq(tenant_id))
                    .order((regulator_reads::read_at.desc(), regulator_reads::id))
                    .limit(limit)
                    .load(self)
            }

            fn update_tenant_profile(&mut self, row: &TenantRow) -> QueryResult<bool> {
                let n = diesel::update(tenants::table.find(&row.id))
                    .set((
                        tenants::legal_name.eq(&row.legal_name),
                        tenants::postal_address.eq(&row.postal_address),
                        tenants::complaint_contact.eq(&row.complaint_contact),
                        tenants::optout_contact.eq(&row.optout_contact),
                        tenants::default_language.eq(&row.default_language),
                    ))
                    .execute(self)?;
                Ok(n == 1)
            }
        }
    };
}

impl_consent_rows!(SqliteConnection);
impl_consent_rows!(PgConnection);
