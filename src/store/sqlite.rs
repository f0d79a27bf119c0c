//! SQLite: the embedded default. WAL mode, one writer connection (SQLite
//! allows one writer at a time anyway, so queueing in the pool beats busy
//! retries), and a pool of readers that never block on it.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};

type Db = Sqlite;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");
const BACKEND: &str = "sqlite";

/// One writer means leases need no row locks: the claim is a single UPDATE.
const CLAIM_SQL: &str = "UPDATE inbox SET status = 'processing', lease_token = $1, lease_until = $2, \
       attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM inbox \
       WHERE (status = 'pending' AND available_at <= $3) OR (status = 'processing' AND lease_until <= $3) \
       ORDER BY id LIMIT $4) \
     RETURNING id, workspace_id, connection_id, platform, topic, body, attempts, lease_token";

pub struct SqlStore {
    write: Pool<Db>,
    read: Pool<Db>,
}

impl SqlStore {
    pub async fn connect(url: &str) -> Result<SqlStore, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Durable at commit in WAL mode without fsyncing every read.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
            }
        }
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        // Readers open the file the writer created; they set no pragmas that write.
        let read_options = SqliteConnectOptions::from_str(url)?
            .read_only(true)
            .busy_timeout(Duration::from_secs(10));
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(read_options)
            .await?;
        Ok(SqlStore { write, read })
    }
}

/// `BEGIN IMMEDIATE` takes the write lock up front, so a transaction that
/// reads before it writes cannot fail on upgrade when another process (a CLI
/// command beside a running hub) wrote in between.
async fn begin_write_tx(pool: &Pool<Db>) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// The single writer already serialises everything.
async fn lock_workspace(
    _tx: &mut sqlx::Transaction<'static, Db>,
    _workspace_id: &str,
) -> Result<(), sqlx::Error> {
    Ok(())
}

include!("sql.rs");
