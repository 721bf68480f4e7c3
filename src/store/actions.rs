//! Actions: the write-ahead record of signed transactions.

use sqlx::{Row, any::AnyRow};

use super::{Result, Store, StoreError, StoreTx};
use crate::model::{Action, ActionState, now};

/// The columns every action query returns, in the order `action()` reads them.
macro_rules! action_columns {
    () => {
        "action_id, run_id, agent_id, function, args, value_wei, nonce, tx_hash, state, \
         gas_used, block, created_at, from_address, raw_tx"
    };
}

fn action(row: &AnyRow) -> Result<Action> {
    let state: String = row.try_get("state")?;
    let number = |column: &str| -> Result<Option<u64>> {
        let value: Option<i64> = row.try_get(column)?;
        Ok(value.map(|v| v.max(0) as u64))
    };
    Ok(Action {
        action_id: row.try_get("action_id")?,
        run_id: row.try_get("run_id")?,
        agent_id: row.try_get("agent_id")?,
        function: row.try_get("function")?,
        args: row.try_get("args")?,
        value_wei: row.try_get("value_wei")?,
        nonce: number("nonce")?.unwrap_or(0),
        tx_hash: row.try_get("tx_hash")?,
        state: ActionState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("action state `{state}`")))?,
        gas_used: number("gas_used")?,
        block: number("block")?,
        created_at: row.try_get("created_at")?,
        from: row.try_get("from_address")?,
        raw_tx: row.try_get("raw_tx")?,
    })
}

impl StoreTx {
    pub async fn insert_action(&mut self, a: &Action) -> Result<()> {
        let at = now();
        sqlx::query(
            "INSERT INTO actions (action_id, run_id, agent_id, function, args, value_wei, nonce, \
             tx_hash, state, gas_used, block, created_at, updated_at, from_address, raw_tx) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14)",
        )
        .bind(&a.action_id)
        .bind(&a.run_id)
        .bind(&a.agent_id)
        .bind(&a.function)
        .bind(&a.args)
        .bind(&a.value_wei)
        .bind(a.nonce.min(i64::MAX as u64) as i64)
        .bind(&a.tx_hash)
        .bind(a.state.as_str())
        .bind(a.gas_used.map(|g| g.min(i64::MAX as u64) as i64))
        .bind(a.block.map(|b| b.min(i64::MAX as u64) as i64))
        .bind(&at)
        .bind(&a.from)
        .bind(&a.raw_tx)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records where the action of a transaction ended.
    pub async fn settle_action_by_hash(
        &mut self,
        tx_hash: &str,
        state: ActionState,
        gas_used: Option<u64>,
        block: Option<u64>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE actions SET state = $2, gas_used = $3, block = $4, updated_at = $5 \
             WHERE tx_hash = $1 AND state = $6",
        )
        .bind(tx_hash)
        .bind(state.as_str())
        .bind(gas_used.map(|g| g.min(i64::MAX as u64) as i64))
        .bind(block.map(|b| b.min(i64::MAX as u64) as i64))
        .bind(now())
        // Only from `sent`: a final state is never overwritten.
        .bind(ActionState::Sent.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Forgets a signed transaction the node refused: it never left.
    pub async fn withdraw_action(&mut self, tx_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM actions WHERE tx_hash = $1 AND state = $2")
            .bind(tx_hash)
            .bind(ActionState::Sent.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Actions not final yet, oldest nonce first.
    pub async fn unsettled_actions(&self) -> Result<Vec<Action>> {
        sqlx::query(concat!(
            "SELECT ",
            action_columns!(),
            " FROM actions WHERE state = $1 ORDER BY nonce, created_at"
        ))
        .bind(ActionState::Sent.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(action)
        .collect()
    }

    /// The actions of a run.
    pub async fn actions_of_run(&self, run_id: &str) -> Result<Vec<Action>> {
        sqlx::query(concat!(
            "SELECT ",
            action_columns!(),
            " FROM actions WHERE run_id = $1 ORDER BY created_at"
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(action)
        .collect()
    }

    /// Whether the agent has an action that is not final.
    pub async fn has_unsettled_action(&self, agent_id: &str) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM actions WHERE agent_id = $1 AND state = $2")
                .bind(agent_id)
                .bind(ActionState::Sent.as_str())
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }
}
