//! A subject's consent state as the server stores it: one `consent_state` row per purpose (or
//! `*` for all), read into the SDK's [`SubjectState`] so that every decision is made by the one
//! set of rules (`consent_ledger_sdk::consent`), and written back from what [`apply`] changed.
//!
//! Not here: the rules themselves (the SDK's), SQL (`store`).

use consent_ledger_sdk::consent::{Basis, PurposeState, Status, SubjectState};

use crate::store::{LeafIndex, StateEntryRow};

pub use consent_ledger_sdk::consent::{apply, effective, pending, ALL, NO_STATUS};

/// The state the rows hold (a row of an unknown status is no state).
pub fn state_of(rows: &[StateEntryRow]) -> SubjectState {
    rows.iter()
        .filter_map(|row| {
            Some((
                row.purpose.clone(),
                PurposeState {
                    status: Status::parse(&row.status)?,
                    basis: Basis::parse(&row.basis),
                    event_id: row.event_id.clone(),
                    leaf_index: row.leaf_index.get(),
                    occurred_at: row.occurred_at,
                    recorded_at: row.since,
                },
            ))
        })
        .collect()
}

/// The row of a subject's purpose state.
pub fn row_of(subject_id: &str, purpose: &str, state: &PurposeState) -> StateEntryRow {
    StateEntryRow {
        subject_id: subject_id.to_string(),
        purpose: purpose.to_string(),
        status: state.status.as_str().to_string(),
        basis: state.basis.map_or("none", Basis::as_str).to_string(),
        since: state.recorded_at,
        event_id: state.event_id.clone(),
        leaf_index: LeafIndex(state.leaf_index),
        occurred_at: state.occurred_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_states_convert_both_ways() {
        let state = PurposeState {
            status: Status::Pending,
            basis: Some(Basis::BusinessRelationship),
            event_id: "e".into(),
            leaf_index: 7,
            occurred_at: 1,
            recorded_at: 2,
        };
        let row = row_of("s", "news", &state);
        assert_eq!(row.basis, "business_relationship");
        assert_eq!(state_of(&[row])["news"], state);
    }
}
