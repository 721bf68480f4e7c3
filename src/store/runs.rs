//! Runs of agents: one row per cycle, from trigger to outcome.

use serde_json::Value;
use sqlx::{Row, any::AnyRow};

use super::{Result, Store, StoreError, StoreTx, json};
use crate::model::{PageCursor, Run, RunStatus, Trigger};

fn run(row: &AnyRow) -> Result<Run> {
    let request: Option<String> = row.try_get("request")?;
    let result: Option<String> = row.try_get("result")?;
    let trigger: String = row.try_get("run_trigger")?;
    let status: String = row.try_get("status")?;
    Ok(Run {
        run_id: row.try_get("run_id")?,
        agent_id: row.try_get("agent_id")?,
        trigger: Trigger::parse(&trigger)
            .ok_or_else(|| StoreError::Corrupt(format!("run trigger `{trigger}`")))?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("run status `{status}`")))?,
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
        .bind(run.trigger.as_str())
        .bind(run.status.as_str())
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
        status: RunStatus,
        result: Option<&Value>,
        error: Option<&str>,
        finished_at: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE runs SET status = $2, result = $3, error = $4, finished_at = $5 WHERE run_id = $1",
        )
        .bind(run_id)
        .bind(status.as_str())
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
        let _turn = self.write_turn().await;
        // A run that sent a transaction is completed from the chain instead.
        Ok(sqlx::query(
            "UPDATE runs SET status = $2, finished_at = $1, \
             error = 'the server stopped during this run' WHERE status = $3 \
             AND NOT EXISTS (SELECT 1 FROM actions WHERE actions.run_id = runs.run_id)",
        )
        .bind(at)
        .bind(RunStatus::Interrupted.as_str())
        .bind(RunStatus::Running.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Applies run retention: at most `keep_per_agent` runs per agent (the
    /// newest), none started before `older_than`. A run still `running` stays.
    /// Returns how many were removed.
    pub async fn prune_runs(&self, keep_per_agent: u64, older_than: Option<&str>) -> Result<u64> {
        let _turn = self.write_turn().await;
        let mut removed = sqlx::query(
            "DELETE FROM runs WHERE status <> $2 AND NOT EXISTS (SELECT 1 FROM actions \
             WHERE actions.run_id = runs.run_id AND actions.state = 'sent') \
             AND run_id IN (SELECT run_id FROM \
             (SELECT run_id, ROW_NUMBER() OVER (PARTITION BY agent_id \
             ORDER BY started_at DESC, run_id) AS n FROM runs) ranked WHERE n > $1)",
        )
        .bind(keep_per_agent.min(i64::MAX as u64) as i64)
        .bind(RunStatus::Running.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if let Some(cutoff) = older_than {
            removed += sqlx::query(
                "DELETE FROM runs WHERE started_at < $1 AND status <> $2 AND NOT EXISTS \
                 (SELECT 1 FROM actions WHERE actions.run_id = runs.run_id \
                 AND actions.state = 'sent')",
            )
            .bind(cutoff)
            .bind(RunStatus::Running.as_str())
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(removed)
    }

    /// One run.
    pub async fn run(&self, run_id: &str) -> Result<Option<Run>> {
        sqlx::query(
            "SELECT run_id, agent_id, run_trigger, status, request, result, error, started_at, \
             finished_at FROM runs WHERE run_id = $1",
        )
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(run)
        .transpose()
    }

    /// Runs still marked `running`, of every agent.
    pub async fn running_runs(&self) -> Result<Vec<Run>> {
        sqlx::query(
            "SELECT run_id, agent_id, run_trigger, status, request, result, error, started_at, \
             finished_at FROM runs WHERE status = $1",
        )
        .bind(RunStatus::Running.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(run)
        .collect()
    }

    /// The agent's most recent runs, newest first.
    pub async fn runs(&self, agent_id: &str, limit: u32) -> Result<Vec<Run>> {
        self.runs_before(agent_id, None, limit).await
    }

    /// The agent's runs older than `before` (newest first), at most `limit`.
    pub async fn runs_before(
        &self,
        agent_id: &str,
        before: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Run>> {
        sqlx::query(
            "SELECT run_id, agent_id, run_trigger, status, request, result, error, started_at, \
             finished_at FROM runs WHERE agent_id = $1 AND ($3 IS NULL OR \
             (started_at, run_id) < ($3, $4)) \
             ORDER BY started_at DESC, run_id DESC LIMIT $2",
        )
        .bind(agent_id)
        .bind(i64::from(limit))
        .bind(before.map(|c| c.at.as_str()))
        .bind(before.map(|c| c.id.as_str()))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(run)
        .collect()
    }
}
