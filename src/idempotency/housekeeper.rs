//! The housekeeper: a worker that purges expired idempotency keys hourly while it lives.
//! Started by `serve` (one-off commands never start it).

use super::purge;
use crate::now_millis;
use crate::store::Store;

/// Housekeeping in the background while it lives: purges expired idempotency keys hourly.
pub struct Housekeeper {
    _stop: std::sync::mpsc::Sender<()>,
}

impl Housekeeper {
    /// Starts it on `store` (a first pass right away).
    pub fn start(store: Store) -> std::io::Result<Self> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("housekeeping".into())
            .spawn(move || loop {
                match purge(&store, now_millis()) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "expired idempotency keys deleted"),
                    Err(e) => tracing::warn!(error = %e, "housekeeping: will retry"),
                }
                if let Err(std::sync::mpsc::RecvTimeoutError::Disconnected) =
                    stopped.recv_timeout(std::time::Duration::from_secs(3600))
                {
                    return;
                }
            })?;
        Ok(Self { _stop: stop })
    }
}
