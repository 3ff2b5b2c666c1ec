//! The background workers `serve` runs beside the HTTP server: the webhook delivery worker
//! (opt-outs announced to senders), the housekeeper (expired idempotency keys purged), the
//! relabelling of subjects from before labels (once, then it ends) and the log's cosigning (each checkpoint offered to the witnesses). Started by `cli::serve` (and by
//! the tests' and benches' servers, to run as it does); one-off commands open the store and the
//! log without them. They stop when [`Workers`] is dropped (cosigning when the log shuts down).

use crate::api::AppState;
use crate::consent::Relabeller;
use crate::idempotency::Housekeeper;
use crate::log::LogError;
use crate::unsubscribe::webhooks;

/// Why a worker did not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Its thread could not be started.
    #[error("cannot start the {0} worker: {1}")]
    Spawn(&'static str, std::io::Error),
    /// The log's cosigning did not start.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// The running workers; dropping this stops them.
pub struct Workers {
    _webhooks: webhooks::Worker,
    _housekeeper: Housekeeper,
    _relabeller: Relabeller,
}

impl Workers {
    /// Starts every worker for the service `state` serves.
    pub fn start(state: &AppState) -> Result<Self, WorkerError> {
        let webhooks = webhooks::Worker::start(
            state.store.clone(),
            state.links.clone(),
            state.webhooks_to_loopback,
        )
        .map_err(|e| WorkerError::Spawn("webhook", e))?;
        let housekeeper = Housekeeper::start(state.store.clone())
            .map_err(|e| WorkerError::Spawn("housekeeping", e))?;
        let relabeller = Relabeller::start(state.store.clone(), state.log.clone())
            .map_err(|e| WorkerError::Spawn("relabelling", e))?;
        state.log.start_cosigning()?;
        Ok(Self {
            _webhooks: webhooks,
            _housekeeper: housekeeper,
            _relabeller: relabeller,
        })
    }
}
