//! What each event of a bundle did: its consent leaf replayed by the consent rules (the SDK's
//! `consent::apply`, the one definition) over the events before it — in effect, awaiting
//! confirmation, bound by an earlier refusal (Art. 3(3): recorded, but it changed nothing), or
//! no change. The report and the consent-record exports print it; the verifier checks the
//! decisions themselves. Pure.

use base64::{engine::general_purpose::STANDARD as B64, Engine};

use super::Bundle;
use consent_ledger_sdk::consent::{self, ConsentLeaf, EventKind, SubjectState};

/// What one consent event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It changed the address's state as it says.
    Effective,
    /// An opt-in awaiting its confirmation: not yet mailable.
    Pending,
    /// A refusal in force binds these purposes of the opt-in: for them it changed nothing;
    /// `all` when it changed nothing at all.
    Bound { purposes: Vec<String>, all: bool },
    /// Nothing changed (e.g. a confirmation with nothing pending).
    NoChange,
}

/// One event of the bundle with what it did: `None` for a leaf of the chain that is not a
/// consent event (an erasure, a relabelling).
pub struct EventOutcome {
    /// Its leaf index.
    pub leaf_index: u64,
    /// The consent leaf, and what it did.
    pub event: Option<(ConsentLeaf, Outcome)>,
}

/// Every event of `bundle`, in order, with what it did.
pub fn outcomes(bundle: &Bundle) -> Vec<EventOutcome> {
    let mut state = SubjectState::new();
    bundle
        .events
        .iter()
        .map(|proven| {
            let leaf = B64
                .decode(&proven.leaf)
                .ok()
                .and_then(|bytes| ConsentLeaf::parse(&bytes).ok());
            EventOutcome {
                leaf_index: proven.leaf_index,
                event: leaf.map(|leaf| {
                    let outcome = replay(&mut state, proven.leaf_index, &leaf);
                    (leaf, outcome)
                }),
            }
        })
        .collect()
}

fn replay(state: &mut SubjectState, index: u64, leaf: &ConsentLeaf) -> Outcome {
    let bound = consent::bound_by_refusal(state, leaf);
    let changes = consent::apply(state, index, leaf);
    let outcome = match (leaf.event, changes.is_empty(), bound.is_empty()) {
        (EventKind::OptIn, true, false) => Outcome::Bound {
            purposes: bound,
            all: true,
        },
        (EventKind::OptIn, false, false) => Outcome::Bound {
            purposes: bound,
            all: false,
        },
        (_, true, _) => Outcome::NoChange,
        (EventKind::OptIn, false, true) if leaf.confirmation_required => Outcome::Pending,
        _ => Outcome::Effective,
    };
    state.extend(changes);
    outcome
}
