//! Contracts, agents and their configuration: functions, schedule, notifications.

use serde_json::Value;
use sqlx::{Any, Executor, Row, any::AnyRow};

use super::{Result, Store, StoreError, StoreTx, json};
use crate::model::{
    Agent, AgentDetails, AgentStatus, Contract, Function, FunctionType, NewAgent, NewContract,
    NewFunction, NewNotification, NewSchedule, Notification, NotificationType, PageCursor,
    Schedule, ScheduleKind, ScheduleType, now,
};

/// The columns every agent query returns, in the order `agent()` reads them.
macro_rules! agent_columns {
    () => {
        "agent_id, contract_id, name, description, status, gas_limit, max_priority_fee, owner, \
         contract_state, policy, configured, last_executed, created_at, updated_at, created_by, \
         max_value_wei, max_value_wei_per_day"
    };
}

fn agent(row: &AnyRow) -> Result<Agent> {
    let status: String = row.try_get("status")?;
    let policy: Option<String> = row.try_get("policy")?;
    Ok(Agent {
        agent_id: row.try_get("agent_id")?,
        contract_id: row.try_get("contract_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        status: AgentStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("agent status `{status}`")))?,
        gas_limit: row.try_get("gas_limit")?,
        max_priority_fee: row.try_get("max_priority_fee")?,
        owner: row.try_get("owner")?,
        contract_state: json(
            "contract_state",
            &row.try_get::<String, _>("contract_state")?,
        )?,
        policy: policy.map(|p| json("policy", &p)).transpose()?,
        configured: flag(row, "configured")?,
        last_executed: row.try_get("last_executed")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        created_by: row.try_get("created_by")?,
        max_value_wei: row.try_get("max_value_wei")?,
        max_value_wei_per_day: row.try_get("max_value_wei_per_day")?,
    })
}

fn contract(row: &AnyRow) -> Result<Contract> {
    let address: String = row.try_get("address")?;
    Ok(Contract {
        contract_id: address.clone(),
        address,
        chain_id: row.try_get("chain_id")?,
        name: row.try_get("name")?,
        contract_type: row.try_get("contract_type")?,
        abi: json("abi", &row.try_get::<String, _>("abi")?)?,
        deployed_at: row.try_get("deployed_at")?,
        owner_address: row.try_get("owner_address")?,
    })
}

fn function(row: &AnyRow) -> Result<Function> {
    let kind: String = row.try_get("function_type")?;
    let abi: Option<String> = row.try_get("abi")?;
    Ok(Function {
        function_id: row.try_get("function_id")?,
        agent_id: row.try_get("agent_id")?,
        function_name: row.try_get("function_name")?,
        function_signature: row.try_get("function_signature")?,
        function_type: FunctionType::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("function type `{kind}`")))?,
        is_enabled: flag(row, "is_enabled")?,
        validation_rules: json(
            "validation_rules",
            &row.try_get::<String, _>("validation_rules")?,
        )?,
        abi: abi.map(|a| json("abi", &a)).transpose()?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn schedule(row: &AnyRow) -> Result<Schedule> {
    let interval: Option<i64> = row.try_get("interval_seconds")?;
    let kind: String = row.try_get("schedule_type")?;
    Ok(Schedule {
        schedule_id: row.try_get("schedule_id")?,
        agent_id: row.try_get("agent_id")?,
        schedule_type: ScheduleType::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("schedule type `{kind}`")))?,
        cron_expression: row.try_get("cron_expression")?,
        interval_seconds: interval.map(|s| s.max(0) as u64),
        is_active: flag(row, "is_active")?,
        next_execution: row.try_get("next_execution")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn notification(row: &AnyRow) -> Result<Notification> {
    let kind: String = row.try_get("notification_type")?;
    Ok(Notification {
        notification_id: row.try_get("notification_id")?,
        agent_id: row.try_get("agent_id")?,
        notification_type: NotificationType::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("notification type `{kind}`")))?,
        configuration: json("configuration", &row.try_get::<String, _>("configuration")?)?,
        is_enabled: flag(row, "is_enabled")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

async fn get_agent<'e, E: Executor<'e, Database = Any>>(e: E, id: &str) -> Result<Option<Agent>> {
    sqlx::query(concat!(
        "SELECT ",
        agent_columns!(),
        " FROM agents WHERE agent_id = $1"
    ))
    .bind(id)
    .fetch_optional(e)
    .await?
    .as_ref()
    .map(agent)
    .transpose()
}

/// Flags are stored as 0/1 (see the migration).
fn flag(row: &AnyRow, column: &str) -> Result<bool> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

async fn get_schedule<'e, E: Executor<'e, Database = Any>>(
    e: E,
    agent_id: &str,
) -> Result<Option<Schedule>> {
    sqlx::query(
        "SELECT schedule_id, agent_id, schedule_type, cron_expression, interval_seconds, \
         is_active, next_execution, created_at, updated_at FROM schedules WHERE agent_id = $1",
    )
    .bind(agent_id)
    .fetch_optional(e)
    .await?
    .as_ref()
    .map(schedule)
    .transpose()
}

fn text(value: &Value) -> String {
    value.to_string()
}

impl Store {
    pub async fn agent(&self, id: &str) -> Result<Option<Agent>> {
        get_agent(&self.pool, id).await
    }

    /// At most `limit` agents, in creation order, after the agent `after`.
    /// A page of agents in creation order, after `after`, at most `limit`.
    pub async fn agents(&self, after: Option<&PageCursor>, limit: u32) -> Result<Vec<Agent>> {
        self.agents_page(None, after, limit).await
    }

    /// The agents acting on a contract address (any case, any chain), a page
    /// at a time like [`Store::agents`].
    pub async fn agents_of_contract(
        &self,
        address: &str,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Agent>> {
        let address = address.to_ascii_lowercase();
        self.agents_page(Some(&address), after, limit).await
    }

    async fn agents_page(
        &self,
        contract_lc: Option<&str>,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Agent>> {
        sqlx::query(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE ($1 IS NULL OR contract_lc = $1) \
             AND ($2 IS NULL OR (created_at, agent_id) > ($2, $3)) \
             ORDER BY created_at, agent_id LIMIT $4"
        ))
        .bind(contract_lc)
        .bind(after.map(|c| c.at.as_str()))
        .bind(after.map(|c| c.id.as_str()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(agent)
        .collect()
    }

    /// The agents that run on their schedule (status active).
    pub async fn active_agents(&self) -> Result<Vec<Agent>> {
        sqlx::query(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE status = 'active' ORDER BY created_at, agent_id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(agent)
        .collect()
    }

    pub async fn contracts_at(&self, address: &str) -> Result<Vec<Contract>> {
        sqlx::query(
            "SELECT address, chain_id, name, contract_type, abi, deployed_at, owner_address \
             FROM contracts WHERE address_lc = $1 ORDER BY chain_id",
        )
        .bind(address.to_ascii_lowercase())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(contract)
        .collect()
    }

    pub async fn functions(&self, agent_id: &str) -> Result<Vec<Function>> {
        sqlx::query(
            "SELECT function_id, agent_id, function_name, function_signature, function_type, \
             is_enabled, validation_rules, abi, created_at, updated_at \
             FROM functions WHERE agent_id = $1 ORDER BY created_at, function_signature",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(function)
        .collect()
    }

    pub async fn schedule(&self, agent_id: &str) -> Result<Option<Schedule>> {
        get_schedule(&self.pool, agent_id).await
    }

    pub async fn notifications(&self, agent_id: &str) -> Result<Vec<Notification>> {
        sqlx::query(
            "SELECT notification_id, agent_id, notification_type, configuration, is_enabled, \
             created_at, updated_at FROM notifications WHERE agent_id = $1 \
             ORDER BY created_at, notification_type",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(notification)
        .collect()
    }

    /// How many functions the agent has, and whether one has `signature`.
    pub async fn function_count(&self, agent_id: &str, signature: &str) -> Result<(u64, bool)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, SUM(CASE WHEN function_signature = $2 THEN 1 ELSE 0 END) AS same \
             FROM functions WHERE agent_id = $1",
        )
        .bind(agent_id)
        .bind(signature)
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = row.try_get("n")?;
        let same: Option<i64> = row.try_get("same")?;
        Ok((n.max(0) as u64, same.unwrap_or(0) > 0))
    }

    /// The agent with its functions, schedule and notifications.
    pub async fn agent_details(&self, id: &str) -> Result<Option<AgentDetails>> {
        let Some(agent) = self.agent(id).await? else {
            return Ok(None);
        };
        Ok(Some(AgentDetails {
            functions: self.functions(id).await?,
            schedule: self.schedule(id).await?,
            notifications: self.notifications(id).await?,
            agent,
        }))
    }
}

impl StoreTx {
    pub async fn agent(&mut self, id: &str) -> Result<Option<Agent>> {
        get_agent(&mut *self.tx, id).await
    }

    /// The agent's schedule as this transaction sees it (no second connection).
    pub async fn schedule(&mut self, agent_id: &str) -> Result<Option<Schedule>> {
        get_schedule(&mut *self.tx, agent_id).await
    }

    /// How many agents `created_by` has created (and not removed).
    pub async fn agents_created_by(&mut self, created_by: &str) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM agents WHERE created_by = $1")
            .bind(created_by)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.try_get::<i64, _>("n")?.max(0) as u64)
    }

    /// Whether a contract with this address (any case, any chain) is registered.
    pub async fn contract_exists(&mut self, address: &str) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM contracts WHERE address_lc = $1")
            .bind(address.to_ascii_lowercase())
            .fetch_optional(&mut *self.tx)
            .await?
            .is_some())
    }

    /// Creates the contract, or updates the one with the same address and chain.
    pub async fn upsert_contract(&mut self, c: &NewContract) -> Result<Contract> {
        let at = now();
        let row = sqlx::query(
            "INSERT INTO contracts (address_lc, chain_id, address, name, contract_type, abi, \
             deployed_at, owner_address, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
             ON CONFLICT (address_lc, chain_id) DO UPDATE SET address = excluded.address, \
             name = excluded.name, contract_type = excluded.contract_type, abi = excluded.abi, \
             deployed_at = excluded.deployed_at, owner_address = excluded.owner_address, \
             updated_at = excluded.updated_at \
             RETURNING address, chain_id, name, contract_type, abi, deployed_at, owner_address",
        )
        .bind(c.address.to_ascii_lowercase())
        .bind(c.chain_id)
        .bind(&c.address)
        .bind(&c.name)
        .bind(&c.contract_type)
        .bind(text(&c.abi))
        .bind(&c.deployed_at)
        .bind(&c.owner_address)
        .bind(&at)
        .fetch_one(&mut *self.tx)
        .await?;
        contract(&row)
    }

    /// Creates the agent `id` for `created_by`, or updates it (keeping its
    /// creator, creation time, runs and configured flag). Returns the agent and
    /// whether it is new; `None` when it belongs to another creator (checked in
    /// the statement itself, so a concurrent creator cannot be overwritten).
    pub async fn upsert_agent(
        &mut self,
        id: &str,
        a: &NewAgent,
        created_by: &str,
    ) -> Result<Option<(Agent, bool)>> {
        let existed = self.agent(id).await?.is_some();
        let at = now();
        let row = sqlx::query(concat!(
            "INSERT INTO agents (agent_id, contract_id, contract_lc, name, description, status, \
             gas_limit, max_priority_fee, owner, contract_state, policy, configured, \
             created_at, updated_at, created_by, max_value_wei, max_value_wei_per_day) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, $12, $13, $14, $15) \
             ON CONFLICT (agent_id) DO UPDATE SET contract_id = excluded.contract_id, \
             contract_lc = excluded.contract_lc, name = excluded.name, \
             description = excluded.description, status = excluded.status, \
             gas_limit = excluded.gas_limit, max_priority_fee = excluded.max_priority_fee, \
             owner = excluded.owner, contract_state = excluded.contract_state, \
             policy = COALESCE(excluded.policy, agents.policy), updated_at = excluded.updated_at, \
             max_value_wei = excluded.max_value_wei, \
             max_value_wei_per_day = excluded.max_value_wei_per_day \
             WHERE agents.created_by IS NULL OR agents.created_by = excluded.created_by \
             RETURNING ",
            agent_columns!()
        ))
        .bind(id)
        .bind(&a.contract_id)
        .bind(a.contract_id.to_ascii_lowercase())
        .bind(&a.name)
        .bind(&a.description)
        .bind(a.status.as_str())
        .bind(&a.gas_limit)
        .bind(&a.max_priority_fee)
        .bind(&a.owner)
        .bind(text(&a.contract_state))
        .bind(a.policy.as_ref().map(text))
        .bind(&at)
        .bind(created_by)
        .bind(&a.max_value_wei)
        .bind(&a.max_value_wei_per_day)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|row| Ok((agent(&row)?, !existed))).transpose()
    }

    /// Sets fields of an agent; `None` leaves a field as it is. Returns the
    /// updated agent, or `None` when there is no such agent.
    pub async fn update_agent(
        &mut self,
        id: &str,
        update: AgentUpdate<'_>,
    ) -> Result<Option<Agent>> {
        let row = sqlx::query(concat!(
            "UPDATE agents SET status = COALESCE($2, status), \
             description = COALESCE($3, description), \
             configured = CASE WHEN $4 = 1 THEN 1 ELSE configured END, \
             policy = COALESCE($5, policy), updated_at = $6 WHERE agent_id = $1 RETURNING ",
            agent_columns!()
        ))
        .bind(id)
        .bind(update.status.map(AgentStatus::as_str))
        .bind(update.description)
        .bind(i64::from(update.configured))
        .bind(update.policy.map(text))
        .bind(now())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(agent).transpose()
    }

    /// Records when the agent last ran.
    pub async fn set_last_executed(&mut self, id: &str, at: &str) -> Result<()> {
        sqlx::query("UPDATE agents SET last_executed = $2 WHERE agent_id = $1")
            .bind(id)
            .bind(at)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Records when the agent's schedule fires next.
    pub async fn set_next_execution(&mut self, id: &str, next: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE schedules SET next_execution = $2 WHERE agent_id = $1")
            .bind(id)
            .bind(next)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Deletes the agent and (by cascade) its configuration and runs. Its event
    /// stream is kept. Returns whether it existed.
    pub async fn delete_agent(&mut self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM agents WHERE agent_id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Creates the function, or updates the one with the same signature.
    pub async fn upsert_function(&mut self, agent_id: &str, f: &NewFunction) -> Result<Function> {
        let at = now();
        let row = sqlx::query(
            "INSERT INTO functions (function_id, agent_id, function_name, function_signature, \
             function_type, is_enabled, validation_rules, abi, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
             ON CONFLICT (agent_id, function_signature) DO UPDATE SET \
             function_name = excluded.function_name, function_type = excluded.function_type, \
             is_enabled = excluded.is_enabled, validation_rules = excluded.validation_rules, \
             abi = excluded.abi, updated_at = excluded.updated_at \
             RETURNING function_id, agent_id, function_name, function_signature, function_type, \
             is_enabled, validation_rules, abi, created_at, updated_at",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(agent_id)
        .bind(&f.function_name)
        .bind(&f.function_signature)
        .bind(f.function_type.as_str())
        .bind(i64::from(f.is_enabled))
        .bind(text(&f.validation_rules))
        .bind(f.abi.as_ref().map(text))
        .bind(&at)
        .fetch_one(&mut *self.tx)
        .await?;
        function(&row)
    }

    /// Sets the agent's one schedule, replacing any previous one.
    pub async fn upsert_schedule(
        &mut self,
        agent_id: &str,
        s: &NewSchedule,
        next_execution: Option<&str>,
    ) -> Result<Schedule> {
        let at = now();
        let (cron, interval) = match &s.kind {
            ScheduleKind::Cron(expression) => (Some(expression.as_str()), None),
            ScheduleKind::Interval(secs) => (None, Some(*secs as i64)),
        };
        let row = sqlx::query(
            "INSERT INTO schedules (schedule_id, agent_id, schedule_type, cron_expression, \
             interval_seconds, is_active, next_execution, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
             ON CONFLICT (agent_id) DO UPDATE SET schedule_type = excluded.schedule_type, \
             cron_expression = excluded.cron_expression, \
             interval_seconds = excluded.interval_seconds, is_active = excluded.is_active, \
             next_execution = excluded.next_execution, updated_at = excluded.updated_at \
             RETURNING schedule_id, agent_id, schedule_type, cron_expression, interval_seconds, \
             is_active, next_execution, created_at, updated_at",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(agent_id)
        .bind(s.kind.schedule_type().as_str())
        .bind(cron)
        .bind(interval)
        .bind(i64::from(s.is_active))
        .bind(next_execution)
        .bind(&at)
        .fetch_one(&mut *self.tx)
        .await?;
        schedule(&row)
    }

    /// Creates the notification, or updates the agent's one of the same type.
    pub async fn upsert_notification(
        &mut self,
        agent_id: &str,
        n: &NewNotification,
    ) -> Result<Notification> {
        let at = now();
        let row = sqlx::query(
            "INSERT INTO notifications (notification_id, agent_id, notification_type, \
             configuration, is_enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (agent_id, notification_type) DO UPDATE SET \
             configuration = excluded.configuration, is_enabled = excluded.is_enabled, \
             updated_at = excluded.updated_at \
             RETURNING notification_id, agent_id, notification_type, configuration, is_enabled, \
             created_at, updated_at",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(agent_id)
        .bind(n.notification_type.as_str())
        .bind(text(&n.configuration))
        .bind(i64::from(n.is_enabled))
        .bind(&at)
        .fetch_one(&mut *self.tx)
        .await?;
        notification(&row)
    }
}

/// Fields of an agent that commands change; `None` keeps the current value.
#[derive(Debug, Default, Clone, Copy)]
pub struct AgentUpdate<'a> {
    pub status: Option<AgentStatus>,
    pub description: Option<&'a str>,
    pub configured: bool,
    pub policy: Option<&'a Value>,
}
