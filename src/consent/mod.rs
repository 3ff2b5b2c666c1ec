//! Consent records, one concept per file: tenants and their purposes (`tenants`), collection
//! points — the consent screen as evidence (`collection_points`), opt-in / opt-out / confirm
//! events validated into entries (`events`) and what they write when appended (`entries`), the
//! send decision (`decision`), the suppression list and its changes (`suppression`), campaign
//! receipts (`campaign`), history and export (`history`), erasure and retention (`erasure`),
//! legal holds (`holds`), double opt-in confirmation (`confirmation`), signup forms and
//! publishable keys (`signup`), regulator reads (`regulator`), subjects (`subject`), the
//! webhook outbox (`outbox`), the state
//! rows read through the SDK's rules (`state`), the relabelling of subjects from before labels
//! (`relabel`), and the small validators all share (`validate`).
//!
//! An event is validated here, then appended as a [`crate::log::LogEntry`]: inside the
//! sequencer's transaction it finds or creates the subject (address, salt, commitment), takes the
//! subject's previous leaf from the log, writes its row and the new consent state, and gives its
//! leaf — so the rows and the leaf commit together, and concurrent events of one address are
//! ordered by the log. Leaves carry commitments only; addresses, salts and evidence stay in
//! erasable rows. HTTP lives in `api::consent`; SQL in `store`; idempotency keys
//! in `crate::idempotency`.

/// E-mail addresses as the ledger keys them: the SDK's one rule, shared with both verifiers.
pub use consent_ledger_sdk::address;
mod campaign;
mod collection_points;
mod confirmation;
mod decision;
mod entries;
mod erasure;
mod events;
mod exceptions;
mod history;
mod holds;
pub mod import;
pub mod links;
pub mod model;
pub mod outbox;
mod regulator;
mod relabel;
mod signup;
pub mod state;
mod subject;
mod suppression;
mod tenants;
mod validate;

pub use campaign::{campaign_entry, prepare_campaign_check, CampaignEntry, Recorded};
pub use collection_points::{
    collection_point, collection_points, prepare_collection_point, prepare_signup_form,
    register_collection_point, retire_collection_point, SIGNUP_FORM_PREFIX,
};
pub use confirmation::{confirmation_target, prepare_confirmation};
pub use decision::{check_many, decide, MAX_CHECK};
pub use entries::{CollectionPointEntry, ConsentEventEntry};
pub use erasure::erase;
pub(crate) use events::prepare_all;
pub use events::{
    chain_of, clean_evidence, effect, may_be_bound, prepare_event, prepare_events, recorded,
    MAX_BATCH,
};
pub use history::{export, history};
pub use holds::{set_legal_hold, HoldChange};
pub use regulator::{record_regulator_read, regulator_reads};
pub use relabel::{relabel_batch, Relabeller};
pub use signup::{
    create_publishable_key, publishable_key, publishable_keys, revoke_publishable_key, signup_parts,
};
pub(crate) use state::ALL;
pub use subject::commitment;
pub(crate) use subject::{new_subject, restore};
pub use suppression::{suppression, suppression_changes, suppression_csv};
pub(crate) use tenants::known_purposes;
pub(crate) use tenants::{contact_kind, definition};
pub use tenants::{create_tenant, tenant, tenants, update_tenant, MAX_PURPOSES};
pub(crate) use validate::check_purposes;
pub use validate::new_id;
pub(crate) use validate::plain_id;
