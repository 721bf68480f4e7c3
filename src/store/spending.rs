//! Wei reserved by agents' actions per UTC day, for their daily limits.

use super::{Result, StoreTx};

impl StoreTx {
    /// What the agent's actions reserved on `day` (decimal wei), if anything.
    pub async fn spent(&mut self, agent_id: &str, day: &str) -> Result<Option<String>> {
        use sqlx::Row;
        let row =
            sqlx::query("SELECT spent_wei FROM agent_spending WHERE agent_id = $1 AND day = $2")
                .bind(agent_id)
                .bind(day)
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(row.map(|r| r.try_get("spent_wei")).transpose()?)
    }

    /// Sets what the agent's actions reserved on `day`.
    pub async fn set_spent(&mut self, agent_id: &str, day: &str, wei: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO agent_spending (agent_id, day, spent_wei) VALUES ($1, $2, $3) \
             ON CONFLICT (agent_id, day) DO UPDATE SET spent_wei = excluded.spent_wei",
        )
        .bind(agent_id)
        .bind(day)
        .bind(wei)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
