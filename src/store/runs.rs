//! Runs of agents: one row per cycle, from trigger to outcome.

use serde_json::Value;
use sqlx::{Row, any::AnyRow};

use super::{Result, Store, StoreTx, json};
use crate::agents::model::Run;

fn run(row: &AnyRow) -> Result<Run> {
    let request: Option<String> = row.try_get("request")?;
    let result: Option<String> = row.try_get("result")?;
    Ok(Run {
        run_id: row.try_get("run_id")?,
        agent_id: row.try_get("agent_id")?,
        trigger: row.try_get("run_trigger")?,
        status: row.try_get("status")?,
        request: request.map(|r| json("request", &r)).transpose()?,
        result: result.map(|r| json("result", &r)).transpose()?,
        error: row.try_get("error")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

impl StoreTx {
    pub async fn insert_run(&mut self, run: &Run) -> Result<()> {
        sqlx::query(
            "INSERT INTO runs (run_id, agent_id, run_trigger, status, request, result, error, \
             started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&run.run_id)
        .bind(&run.agent_id)
        .bind(&run.trigger)
        .bind(&run.status)
        .bind(run.request.as_ref().map(Value::to_string))
        .bind(run.result.as_ref().map(Value::to_string))
        .bind(&run.error)
        .bind(&run.started_at)
        .bind(&run.finished_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records how a run ended.
    pub async fn finish_run(
        &mut self,
        run_id: &str,
        status: &str,
        result: Option<&Value>,
        error: Option<&str>,
        finished_at: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE runs SET status = $2, result = $3, error = $4, finished_at = $5 WHERE run_id = $1",
        )
        .bind(run_id)
        .bind(status)
        .bind(result.map(Value::to_string))
        .bind(error)
        .bind(finished_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Marks runs left `running` by a crash or a kill as `interrupted`. Returns
    /// how many there were.
    pub async fn mark_interrupted_runs(&self, at: &str) -> Result<u64> {
        let _turn = match &self.write_lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        Ok(sqlx::query(
            "UPDATE runs SET status = 'interrupted', finished_at = $1, \
             error = 'the server stopped during this run' WHERE status = 'running'",
        )
        .bind(at)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The agent's most recent runs, newest first.
    pub async fn runs(&self, agent_id: &str, limit: u32) -> Result<Vec<Run>> {
        sqlx::query(
            "SELECT run_id, agent_id, run_trigger, status, request, result, error, started_at, \
             finished_at FROM runs WHERE agent_id = $1 ORDER BY started_at DESC, run_id LIMIT $2",
        )
        .bind(agent_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(run)
        .collect()
    }
}
