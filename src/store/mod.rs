//! The database: SQLite (embedded default) or PostgreSQL, chosen by URL scheme; pools,
//! migrations, and the one place that knows the dialect differences (pragmas, transaction modes,
//! the sequencer lock). The queries live in one file per entity (`tenants.rs`, `subjects.rs`,
//! `events.rs`, …), each written once as a method of [`Repo`] and compiled for both backends by
//! `db_run!`.
//!
//! Domain modules never see a diesel connection: they get a `&mut Repo` inside [`Store::read`]
//! or [`Store::write`].

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// Runs `$body` with `$c` bound to the concrete diesel connection of a [`Repo`]: the one place
/// a query is compiled for each backend.
macro_rules! db_run {
    ($repo:expr, |$c:ident| $body:expr) => {
        match $repo {
            $crate::store::Repo::Sqlite(conn) => {
                let $c: &mut diesel::SqliteConnection = conn;
                $body
            }
            $crate::store::Repo::Postgres(conn) => {
                let $c: &mut diesel::PgConnection = conn;
                $body
            }
        }
    };
}

mod api_tokens;
mod auth_keys;
mod campaign_checks;
mod collection_points;
mod consent_state;
mod cosignatures;
mod erasures;
mod events;
mod idempotency_keys;
mod leaf_index;
mod legal_holds;
mod log;
mod owner;
mod publishable_keys;
mod regulator_reads;
pub mod schema;
mod staged;
mod subjects;
mod tenants;
mod webhook_deliveries;
mod webhooks;

pub use api_tokens::ApiTokenRow;
pub use auth_keys::AuthKeyRow;
pub use campaign_checks::CampaignCheckRow;
pub use collection_points::CollectionPointRow;
pub use consent_state::StateEntryRow;
pub use erasures::ErasureRow;
pub use events::EventRow;
pub use idempotency_keys::IdempotencyRow;
pub use leaf_index::LeafIndex;
pub use legal_holds::LegalHoldRow;
pub use log::{CheckpointRow, LogMetaRow, NewLeaf, StateRow};
pub use publishable_keys::PublishableKeyRow;
pub use regulator_reads::RegulatorReadRow;
pub use staged::{Lookup, Staged};
pub use subjects::{RefusingSubject, SubjectRow};
pub use tenants::{PurposeRow, TenantRow};
pub use webhook_deliveries::{Attempt, DeliveryRow};
pub use webhooks::WebhookRow;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// The advisory-lock key that serialises writers of the log across PostgreSQL sessions.
const SEQUENCER_LOCK_KEY: i64 = 0x636f_6e73_656e_7431; // "consent1"

/// One connection of either backend, lent for one read or one transaction; every query the
/// domain may run is a method on it.
pub enum Repo<'a> {
    /// SQLite.
    Sqlite(&'a mut SqliteConnection),
    /// PostgreSQL.
    Postgres(&'a mut PgConnection),
}

/// The row of a lookup by a unique key, if any. Such lookups load rather than use diesel's
/// `.first()`: that binds `LIMIT ?`, and SQLite (since 3.47) re-prepares a statement whose LIMIT
/// is a bound parameter on every run (it plans with the value): measured as the largest single
/// cost of the log's writer. Queries that need an ordered first row keep `.first()`.
fn at_most_one<T>(rows: Vec<T>) -> Option<T> {
    rows.into_iter().next()
}

/// Rows per multi-row statement of the tables a sequencer batch writes together (`Staged`): at
/// most 16 columns a row, so at most 16,000 bound parameters, under SQLite's 32,766 and
/// PostgreSQL's 65,535.
const ROWS_PER_STATEMENT: usize = 1_000;

/// The row of a one-row table.
fn exactly_one<T>(rows: Vec<T>) -> diesel::QueryResult<T> {
    rows.into_iter()
        .next()
        .ok_or(diesel::result::Error::NotFound)
}

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one we accept.
    #[error("invalid database URL {url:?}: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No connection could be had (server down, pool exhausted within its timeout).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    /// Running migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
}

impl StoreError {
    /// Whether this is the database failing — down, unreachable, busy past its timeout, out of
    /// disk, a connection lost mid-query — rather than a query of ours being wrong (a constraint
    /// our code should have kept, a row that must exist): the first is worth retrying later.
    pub fn is_outage(&self) -> bool {
        use diesel::result::{DatabaseErrorKind as Kind, Error};
        match self {
            Self::Unavailable(_) => true,
            Self::Query(Error::DatabaseError(kind, _)) => matches!(
                kind,
                Kind::ClosedConnection
                    | Kind::UnableToSendCommand
                    | Kind::SerializationFailure
                    | Kind::ReadOnlyTransaction
                    | Kind::Unknown
            ),
            Self::Query(Error::BrokenTransactionManager | Error::RollbackErrorOnCommit { .. }) => {
                true
            }
            Self::Query(_) | Self::BadUrl { .. } | Self::Migration(_) => false,
        }
    }
}

/// A parsed database URL: the backend is chosen by scheme, never guessed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://path` or `sqlite:path` (`sqlite:///abs/path` for an absolute path).
    Sqlite(String),
    /// `postgres://…` or `postgresql://…`, passed to libpq as is.
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses a URL, refusing anything without a known scheme.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let bad = |reason| StoreError::BadUrl {
            url: url.to_string(),
            reason,
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_string()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| bad("use sqlite://PATH or postgres://USER@HOST/DB"))?;
        // SQLite URI filenames (file:…, ?mode=memory) could open a private in-memory database.
        if path.is_empty()
            || path.contains(":memory:")
            || path.contains('?')
            || path.starts_with("file:")
        {
            return Err(bad(
                "give a file path (an in-memory database is not durable)",
            ));
        }
        Ok(Self::Sqlite(path.to_string()))
    }
}

/// WAL size (pages, about 40 MiB) at which a commit checkpoints. SQLite's default of 1,000
/// made the log's writer stop to copy pages back every few batches; ten times as many lets a
/// page rewritten by many batches (tree tiles, index edges) be copied once (measured: 5.2k to
/// 7.4k durable events/s over HTTP, sustained). A checkpointer thread of its own was slower
/// here: on two cores it only competes with the writer.
const SQLITE_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// Bytes of the database file that reads map into memory instead of copying through SQLite's
/// page cache (reads of the send decision, the tiles of proofs; the OS shares the mapping
/// between connections, and its pages are the file's, not the process's heap). The most the
/// bundled SQLite maps (its `SQLITE_MAX_MMAP_SIZE`): a 10M-leaf log's file (1.6 GB) in whole;
/// beyond it, reads go through `pread`.
const SQLITE_MMAP_BYTES: u64 = 0x7fff_0000;

/// Per-connection SQLite settings: wait for the writer instead of failing, durable commits,
/// checkpoints at a larger WAL.
#[derive(Debug)]
struct SqliteSettings;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqliteSettings {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; \
             PRAGMA wal_autocheckpoint = {SQLITE_AUTOCHECKPOINT_PAGES}; \
             PRAGMA mmap_size = {SQLITE_MMAP_BYTES};"
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

#[derive(Clone)]
enum Pools {
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
    Postgres(Pool<ConnectionManager<PgConnection>>),
}

/// A pool of connections to one database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pools: Pools,
    url: String,
}

#[derive(diesel::QueryableByName)]
struct JournalMode {
    #[diesel(sql_type = diesel::sql_types::Text)]
    journal_mode: String,
}

/// A connection from `pool`, or [`StoreError::Unavailable`] when none comes within the pool's
/// timeout (the server down, every connection busy).
fn pooled<C>(
    pool: &Pool<ConnectionManager<C>>,
) -> Result<PooledConnection<ConnectionManager<C>>, StoreError>
where
    C: diesel::r2d2::R2D2Connection + 'static,
{
    let started = std::time::Instant::now();
    let conn = pool.get();
    crate::metrics::pool_wait(started.elapsed());
    conn.map_err(|e| StoreError::Unavailable(e.to_string()))
}

impl Store {
    /// Connects to `url` with a pool of `pool_size` connections. One connection is opened at
    /// once, so a wrong URL or a server that is down fails here, loudly.
    pub fn connect(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let timeout = Duration::from_secs(5);
        let unavailable = |e: diesel::r2d2::PoolError| StoreError::Unavailable(e.to_string());
        let pools = match DatabaseUrl::parse(url)? {
            DatabaseUrl::Sqlite(path) => {
                // WAL is a property of the file: set it once, before the pool opens, and make
                // sure it took (some file systems cannot do WAL).
                let mut conn = SqliteConnection::establish(&path)
                    .map_err(|e| StoreError::Unavailable(format!("{path}: {e}")))?;
                conn.batch_execute("PRAGMA busy_timeout = 10000;")?;
                let mode: Vec<JournalMode> =
                    diesel::sql_query("PRAGMA journal_mode = WAL").load(&mut conn)?;
                if !mode
                    .first()
                    .is_some_and(|m| m.journal_mode.eq_ignore_ascii_case("wal"))
                {
                    return Err(StoreError::Unavailable(format!(
                        "{path}: SQLite could not switch to WAL mode on this file system"
                    )));
                }
                let pool = Pool::builder()
                    .max_size(pool_size)
                    .min_idle(Some(1))
                    .connection_timeout(timeout)
                    .connection_customizer(Box::new(SqliteSettings))
                    .build(ConnectionManager::new(path))
                    .map_err(unavailable)?;
                Pools::Sqlite(pool)
            }
            DatabaseUrl::Postgres(url) => {
                // Fail fast with libpq's own message rather than a pool timeout.
                PgConnection::establish(&url)
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                let pool = Pool::builder()
                    .max_size(pool_size)
                    .min_idle(Some(1))
                    .connection_timeout(timeout)
                    .build(ConnectionManager::new(url))
                    .map_err(unavailable)?;
                Pools::Postgres(pool)
            }
        };
        Ok(Self {
            pools,
            url: url.to_string(),
        })
    }

    /// A separate pool of `size` connections to the same database (the sequencer writes through
    /// its own, so readers can never starve it of a connection).
    pub fn dedicated(&self, size: u32) -> Result<Self, StoreError> {
        Self::connect(&self.url, size)
    }

    /// Whether a short query (a few indexed lookups) is best run on the caller's own thread,
    /// even an async one: true on SQLite, where such a read takes microseconds from the page
    /// cache and never waits for the writer (WAL, passive checkpoints), so handing it to another
    /// thread costs more than the query; false on PostgreSQL, where every query is a network
    /// round trip.
    pub fn short_queries_inline(&self) -> bool {
        matches!(self.pools, Pools::Sqlite(_))
    }

    /// Runs blocking store work from async code: on the blocking pool, or inline when `short` and
    /// the backend answers short queries faster than the hand-off ([`Self::short_queries_inline`]).
    pub async fn blocking<T, E>(
        &self,
        short: bool,
        f: impl FnOnce() -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        if short && self.short_queries_inline() {
            return f();
        }
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| StoreError::Unavailable(format!("a worker thread failed: {e}")))?
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pools {
            Pools::Sqlite(_) => "sqlite",
            Pools::Postgres(_) => "postgres",
        }
    }

    /// Applies pending migrations (embedded in the binary); returns how many ran.
    pub fn migrate(&self) -> Result<usize, StoreError> {
        let migration =
            |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
        // Under the writer lock, so processes starting together do not race on the schema; the
        // harness's own transactions become savepoints.
        match &self.pools {
            Pools::Sqlite(pool) => {
                let mut conn = pooled(pool)?;
                conn.immediate_transaction(|c| {
                    c.run_pending_migrations(SQLITE_MIGRATIONS)
                        .map(|done| done.len())
                        .map_err(migration)
                })
            }
            Pools::Postgres(pool) => {
                let mut pooled = pooled(pool)?;
                let conn: &mut PgConnection = &mut pooled;
                conn.transaction(|c| {
                    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                        .bind::<diesel::sql_types::BigInt, _>(SEQUENCER_LOCK_KEY)
                        .execute(c)?;
                    c.run_pending_migrations(POSTGRES_MIGRATIONS)
                        .map(|done| done.len())
                        .map_err(migration)
                })
            }
        }
    }

    /// After writes failed for want of space or by I/O errors: on SQLite, checkpoints the WAL
    /// into the database and truncates it (a full disk stops the automatic checkpoint, and the
    /// WAL would then hold the space freed); nothing to do on PostgreSQL. Best effort.
    pub fn relieve(&self) {
        if let Pools::Sqlite(pool) = &self.pools {
            let done = pooled(pool)
                .and_then(|mut c| Ok(c.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);")?));
            if let Err(e) = done {
                tracing::warn!(error = %e, "the WAL could not be truncated");
            }
        }
    }

    /// Runs `f` on one pooled connection, outside any explicit transaction (reads).
    pub fn read<T, E>(&self, f: impl FnOnce(&mut Repo<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        match &self.pools {
            Pools::Sqlite(pool) => f(&mut Repo::Sqlite(&mut *pooled(pool)?)),
            Pools::Postgres(pool) => f(&mut Repo::Postgres(&mut *pooled(pool)?)),
        }
    }

    /// Runs `f` outside any transaction: each statement commits by itself, without the log's
    /// writer lock. For single-row bookkeeping that must not queue behind the log (webhook
    /// delivery leases and outcomes), never for anything that must change together.
    pub fn autocommit<T, E>(&self, f: impl FnOnce(&mut Repo<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        // The same pooled connection as a read: no transaction is opened around `f`.
        self.read(f)
    }

    /// Runs `f` in a write transaction that excludes every other writer of this database, in
    /// this process or another: SQLite `BEGIN IMMEDIATE`; PostgreSQL a transaction holding the
    /// sequencer's advisory lock. Commits if `f` returns `Ok`, rolls back otherwise.
    pub fn write<T, E>(&self, f: impl FnOnce(&mut Repo<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError> + From<diesel::result::Error>,
    {
        match &self.pools {
            Pools::Sqlite(pool) => {
                let mut conn = pooled(pool)?;
                conn.immediate_transaction(|c| f(&mut Repo::Sqlite(c)))
            }
            Pools::Postgres(pool) => {
                let mut pooled = pooled(pool)?;
                let conn: &mut PgConnection = &mut pooled;
                // READ COMMITTED so the state read after the lock wait is current; a durable
                // commit whatever the server's default (an unflushed commit could be lost after
                // a checkpoint signed it); a bounded wait for a peer that holds the lock.
                // One round trip for the three (the writer's every transaction pays it).
                conn.build_transaction().read_committed().run(|c| {
                    c.batch_execute(&format!(
                        "SET LOCAL synchronous_commit = on; SET LOCAL lock_timeout = '10s'; \
                         SELECT pg_advisory_xact_lock({SEQUENCER_LOCK_KEY});"
                    ))?;
                    f(&mut Repo::Postgres(c))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend_by_scheme() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://a.db").unwrap(),
            DatabaseUrl::Sqlite("a.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/a.db").unwrap(),
            DatabaseUrl::Sqlite("/tmp/a.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:a.db").unwrap(),
            DatabaseUrl::Sqlite("a.db".into())
        );
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u@h/db").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        for bad in [
            "a.db",
            "postgress://x",
            "sqlite://",
            "sqlite::memory:",
            "sqlite://file::memory:",
            "sqlite://file:a.db?mode=memory",
            "sqlite://a.db?cache=shared",
            "mysql://x",
            "",
        ] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
