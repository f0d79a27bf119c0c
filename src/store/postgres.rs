//! PostgreSQL: for larger installs and for several hub processes on one
//! database. Workers claim with `FOR UPDATE SKIP LOCKED`, and writers of one
//! workspace serialise on a transaction-scoped advisory lock, which keeps
//! identity resolution race-free and the change feed in commit order.

use std::str::FromStr;

use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Postgres};

type Db = Postgres;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");
const BACKEND: &str = "postgres";

const CLAIM_SQL: &str = "UPDATE inbox SET status = 'processing', lease_token = $1, lease_until = $2, \
       attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM inbox \
       WHERE (status = 'pending' AND available_at <= $3) OR (status = 'processing' AND lease_until <= $3) \
       ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) \
     RETURNING id, workspace_id, connection_id, platform, topic, body, attempts, lease_token";

pub struct SqlStore {
    write: Pool<Db>,
    read: Pool<Db>,
}

impl SqlStore {
    pub async fn connect(url: &str) -> Result<SqlStore, sqlx::Error> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect_with(options)
            .await?;
        Ok(SqlStore {
            write: pool.clone(),
            read: pool,
        })
    }
}

async fn begin_write_tx(pool: &Pool<Db>) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

async fn lock_workspace(
    tx: &mut sqlx::Transaction<'static, Db>,
    workspace_id: &str,
) -> Result<(), sqlx::Error> {
    let digest = Sha256::digest(workspace_id.as_bytes());
    let key = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

include!("sql.rs");
