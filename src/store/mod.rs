//! Persistence: every SQL statement of the server lives under this module.
//!
//! One implementation for both databases through sqlx's `Any` driver: SQLite
//! (the default, an embedded file in WAL mode) and PostgreSQL. The schema uses
//! only types both share (text, bigint, boolean); times are RFC 3339 text and
//! JSON documents are text. Migrations are embedded and run at start.

mod actions;
mod agents;
mod events;
mod runs;
mod spending;

use std::sync::Arc;

use anyhow::Context;
use sqlx::{
    Any, AnyPool, Executor, Transaction,
    any::{AnyConnectOptions, AnyPoolOptions},
};
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use agents::AgentUpdate;

/// How long a statement may run, unless configured.
const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Embedded migrations (`migrations/`), shared by both databases.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A failed store operation, with what the client may be told.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database, shared by every handler.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time; taking turns here, before BEGIN, avoids
    /// SQLITE_BUSY errors from transactions that read and then write.
    write_lock: Option<Arc<Mutex<()>>>,
}

/// One write transaction: a command's changes and its events commit together or
/// not at all (dropping it rolls back).
pub struct StoreTx {
    tx: Transaction<'static, Any>,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl Store {
    /// Connects to `url` with the default statement timeout.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        Self::connect_with(url, DEFAULT_TIMEOUT).await
    }

    /// Connects to `url` (`sqlite://file.db`, a bare file path, or
    /// `postgres://…`), creating a SQLite file if missing, and migrates. No
    /// statement (PostgreSQL) and no wait for SQLite's write lock lasts longer
    /// than `timeout`: a stuck database fails a command instead of holding it.
    pub async fn connect_with(url: &str, timeout: std::time::Duration) -> anyhow::Result<Store> {
        let millis = timeout.as_millis().clamp(1, u32::MAX as u128);
        sqlx::any::install_default_drivers();
        let (url, backend) = normalize_url(url);
        let options: AnyConnectOptions = url
            .parse()
            .with_context(|| format!("DATABASE_URL is not a database URL ({})", redact(&url)))?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            })
            .acquire_timeout(std::time::Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    let settings = match backend {
                        // FULL: a committed action row survives a power loss,
                        // not only a process crash (it may stand for a
                        // broadcast transaction).
                        Backend::Sqlite => vec![
                            "PRAGMA journal_mode = WAL".to_string(),
                            "PRAGMA synchronous = FULL".to_string(),
                            "PRAGMA foreign_keys = ON".to_string(),
                            format!("PRAGMA busy_timeout = {millis}"),
                        ],
                        Backend::Postgres => vec![
                            format!("SET statement_timeout = {millis}"),
                            format!("SET lock_timeout = {millis}"),
                        ],
                    };
                    for setting in settings {
                        conn.execute(sqlx::AssertSqlSafe(setting)).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("connecting to the database {}", redact(&url)))?;
        MIGRATOR
            .run(&pool)
            .await
            .context("running database migrations")?;
        Ok(Store {
            pool,
            backend,
            write_lock: (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(()))),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A round trip to the database, for readiness.
    pub async fn check(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<StoreTx> {
        let turn = self.write_turn().await;
        Ok(StoreTx {
            tx: self.pool.begin().await?,
            _turn: turn,
        })
    }

    /// This writer's turn on SQLite (see `write_lock`); nothing on PostgreSQL.
    async fn write_turn(&self) -> Option<OwnedMutexGuard<()>> {
        match &self.write_lock {
            Some(lock) => Some(Arc::clone(lock).lock_owned().await),
            None => None,
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl StoreTx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// Accepts the spellings users write: a bare path means a SQLite file, created
/// when missing.
fn normalize_url(url: &str) -> (String, Backend) {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return (url.to_string(), Backend::Postgres);
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let mut url = format!("sqlite://{path}");
    if !path.contains("mode=") && path != ":memory:" {
        url.push(if path.contains('?') { '&' } else { '?' });
        url.push_str("mode=rwc");
    }
    (url, Backend::Sqlite)
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Parses a JSON column.
fn json(column: &str, text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_default_to_a_created_sqlite_file() {
        assert_eq!(
            normalize_url("agentport.db"),
            ("sqlite://agentport.db?mode=rwc".into(), Backend::Sqlite)
        );
        assert_eq!(
            normalize_url("sqlite:///tmp/a.db").0,
            "sqlite:///tmp/a.db?mode=rwc"
        );
        assert_eq!(normalize_url("postgres://u@h/db").1, Backend::Postgres);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://me:secret@host/db"),
            "postgres://me:***@host/db"
        );
        assert_eq!(redact("sqlite://a.db"), "sqlite://a.db");
    }
}
