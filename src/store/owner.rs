//! Which process holds a piece of in-flight work (an `Idempotency-Key` reservation), and
//! whether that process still lives. Each process takes, on first use, a lock only it holds
//! while it runs: on SQLite an exclusive `flock` on a file beside the database
//! (`<db>-owners/<id>`), on PostgreSQL a session advisory lock on a connection of its own. A
//! process that is gone — crashed, killed — holds its lock no more, so another can tell at once
//! and take its work over instead of waiting for a timeout. If no lock can be taken (a read-only
//! directory, a full disk, the database down), the process names no owner for a while and its
//! work falls back to the timeout; it tries again later. A PostgreSQL lock session that is cut
//! (a server restart) loses the lock: the process checks its session now and then and takes a
//! lock under a new id when it is gone. A takeover of work whose owner still ran — possible in
//! that window — records nothing twice: a request completes only the claim it made
//! (`idempotency`).
//!
//! What lives here is only the lock; what a reservation is and when to take one over is
//! `idempotency`'s.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};

use super::{DatabaseUrl, Pools, Store, StoreError};

/// The first key of the two-key PostgreSQL advisory locks of owners ("cons"); the second is the
/// owner's number.
const PG_OWNER_CLASS: i32 = 0x636f_6e73;

/// How often a held PostgreSQL lock's session is checked, and a lock that could not be taken
/// is tried again.
const RECHECK: Duration = Duration::from_secs(2);

/// A random owner number.
fn random_number() -> u32 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    u32::from_le_bytes(bytes)
}

/// What keeps this process's lock on one database held: never read, never dropped before exit.
enum Hold {
    /// The open, locked file.
    File(#[allow(dead_code)] std::fs::File),
    /// The session holding the advisory lock.
    Postgres(#[allow(dead_code)] PgConnection),
}

/// A lock this process holds on one database, or the failure to take one, and when it was last
/// taken or checked.
struct Entry {
    lock: Option<(String, Hold)>,
    checked: Instant,
}

/// Locks this process holds, by database URL.
type Held = Mutex<HashMap<String, Entry>>;

fn held() -> &'static Held {
    static HELD: OnceLock<Held> = OnceLock::new();
    HELD.get_or_init(Default::default)
}

/// The directory of owner files of a SQLite database: beside its file, by its canonical path,
/// so processes that name the file differently (a relative path, a link) share it.
fn owners_dir(path: &str) -> PathBuf {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(path));
    let mut dir = path.into_os_string();
    dir.push("-owners");
    PathBuf::from(dir)
}

fn take_lock(url: &str) -> Result<(String, Hold), String> {
    match DatabaseUrl::parse(url).map_err(|e| e.to_string())? {
        DatabaseUrl::Sqlite(path) => {
            let dir = owners_dir(&path);
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let id = format!("{:08x}", random_number());
            let file = std::fs::File::create(dir.join(&id)).map_err(|e| e.to_string())?;
            file.try_lock().map_err(|e| e.to_string())?;
            Ok((id, Hold::File(file)))
        }
        DatabaseUrl::Postgres(url) => {
            let mut conn = PgConnection::establish(&url).map_err(|e| e.to_string())?;
            // A number another process holds is refused, not waited for: draw another.
            for _ in 0..8 {
                let number = random_number() as i32;
                let rows: Vec<Locked> =
                    diesel::sql_query("SELECT pg_try_advisory_lock($1, $2) AS locked")
                        .bind::<diesel::sql_types::Integer, _>(PG_OWNER_CLASS)
                        .bind::<diesel::sql_types::Integer, _>(number)
                        .load(&mut conn)
                        .map_err(|e| e.to_string())?;
                if rows.first().is_some_and(|r| r.locked) {
                    return Ok((number.to_string(), Hold::Postgres(conn)));
                }
            }
            Err("no free owner number".into())
        }
    }
}

/// Whether a held lock still holds: a PostgreSQL session that answers (a cut one has lost it).
fn still_held(hold: &mut Hold) -> bool {
    match hold {
        Hold::File(_) => true,
        Hold::Postgres(conn) => diesel::sql_query("SELECT 1").execute(conn).is_ok(),
    }
}

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

impl Store {
    /// This process's owner id on this database, holding its lock from the first call until the
    /// process ends; `None` if the lock cannot be taken.
    pub fn owner(&self) -> Option<String> {
        let mut held = held().lock().expect("owner locks");
        if !held.contains_key(&self.url) {
            let never = Instant::now() - RECHECK;
            held.insert(
                self.url.clone(),
                Entry {
                    lock: None,
                    checked: never,
                },
            );
        }
        let entry = held.get_mut(&self.url).expect("just inserted");
        if entry.checked.elapsed() >= RECHECK {
            entry.checked = Instant::now();
            let holds = entry
                .lock
                .as_mut()
                .is_some_and(|(_, hold)| still_held(hold));
            if !holds {
                entry.lock = match take_lock(&self.url) {
                    Ok(lock) => Some(lock),
                    Err(e) => {
                        tracing::warn!(error = %e, "no owner lock: in-flight idempotency keys of this process will be taken over only after their timeout");
                        None
                    }
                };
            }
        }
        entry.lock.as_ref().map(|(id, _)| id.clone())
    }

    /// Whether the process that took the owner id `owner` on this database is gone (holds its
    /// lock no more). Unknown or unreadable means alive: only a lock that could be taken proves
    /// its owner gone.
    pub fn owner_gone(&self, owner: &str) -> Result<bool, StoreError> {
        match &self.pools {
            Pools::Sqlite(_) => {
                let DatabaseUrl::Sqlite(path) = DatabaseUrl::parse(&self.url)? else {
                    return Ok(false);
                };
                if owner.is_empty() || !owner.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Ok(false);
                }
                let file = owners_dir(&path).join(owner);
                // No file: not provably gone (another name for the directory, or cleaned up).
                let Ok(handle) = std::fs::File::open(&file) else {
                    return Ok(false);
                };
                if handle.try_lock().is_ok() {
                    let _ = std::fs::remove_file(&file);
                    return Ok(true);
                }
                Ok(false)
            }
            Pools::Postgres(pool) => {
                let Ok(number) = owner.parse::<i32>() else {
                    return Ok(false);
                };
                let mut pooled = pool
                    .get()
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                let conn: &mut PgConnection = &mut pooled;
                // A transaction-level try: released when this transaction ends.
                let rows: Vec<Locked> = conn.transaction(|c| {
                    diesel::sql_query("SELECT pg_try_advisory_xact_lock($1, $2) AS locked")
                        .bind::<diesel::sql_types::Integer, _>(PG_OWNER_CLASS)
                        .bind::<diesel::sql_types::Integer, _>(number)
                        .load(c)
                })?;
                Ok(rows.first().is_some_and(|r| r.locked))
            }
        }
    }
}
