//! A PostgreSQL schema of its own for one test, on the server this machine kind
//! runs (127.0.0.1:5432, database `test`; `AGENTPORT_TEST_POSTGRES` overrides),
//! dropped when the test ends. Several test runs can share the server.

use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};

pub fn base_url() -> String {
    std::env::var("AGENTPORT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

pub struct PgSchema {
    pub name: String,
    /// A URL whose connections use only this schema.
    pub url: String,
}

impl PgSchema {
    pub async fn create() -> PgSchema {
        let base = base_url();
        let mut conn = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&base))
            .await
            .unwrap_or_else(|_| panic!("PostgreSQL at {base} did not answer within 10 s"))
            .unwrap_or_else(|e| panic!("PostgreSQL at {base} is needed for this test: {e}"));
        let name = format!("agentport_test_{}", uuid::Uuid::new_v4().simple());
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .await
            .unwrap();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        PgSchema { name, url }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop may run inside a runtime: clean up from a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&base_url()).await {
                    // Never wait forever on a lock a leftover connection holds.
                    let _ = conn.execute("SET lock_timeout = '20s'").await;
                    let sql = format!("DROP SCHEMA IF EXISTS {name} CASCADE");
                    let _ = conn.execute(sqlx::AssertSqlSafe(sql)).await;
                }
            });
        })
        .join();
    }
}
