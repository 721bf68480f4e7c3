//! Commands that change an agent's configuration. Each is one transaction with
//! the `agent_updated` (and `status`) events it causes.

use serde_json::json;

use crate::{
    agents::{
        access::Access,
        manager::{Command, Context},
        recorder::{Change, Result, internal},
        schedule,
    },
    model::{
        Agent, AgentError, Caller, Contract, Function, NewAgent, NewContract, NewFunction,
        NewNotification, NewSchedule, Notification, NotificationType, Published, Schedule,
        format_time,
    },
    protocol::events,
    store::{AgentUpdate, StoreTx},
};

/// Registers a contract (address + chain); registering it again updates it.
#[derive(Debug, Clone)]
pub struct RegisterContract(pub NewContract);

impl Command for RegisterContract {
    type Output = Contract;

    fn access(&self) -> Access<'_> {
        Access::Register(&self.0.address)
    }

    async fn apply(self, ctx: &Context, _caller: &Caller) -> Result<Contract> {
        let allowed = &ctx.allowed_contracts;
        let address = &self.0.address;
        if !allowed.is_empty() && !allowed.iter().any(|c| c.eq_ignore_ascii_case(address)) {
            return Err(AgentError::Forbidden(format!(
                "contract {address} is not in AGENTPORT_CONTRACT_ALLOWLIST"
            )));
        }
        let mut change = ctx.rec.begin().await?;
        let contract = change.tx.upsert_contract(&self.0).await.map_err(internal)?;
        ctx.rec.commit(change, &contract.address).await?;
        Ok(contract)
    }
}

/// Creates agent `agent_id` on a registered contract, or updates it.
#[derive(Debug, Clone)]
pub struct CreateAgent {
    pub agent_id: String,
    pub agent: NewAgent,
}

impl Command for CreateAgent {
    type Output = Agent;

    fn access(&self) -> Access<'_> {
        Access::Create {
            agent_id: &self.agent_id,
            contract: &self.agent.contract_id,
        }
    }

    async fn apply(self, ctx: &Context, caller: &Caller) -> Result<Agent> {
        let Self { agent_id, agent } = self;
        let mut change = ctx.rec.begin().await?;
        let known = change.tx.contract_exists(&agent.contract_id).await;
        if !known.map_err(internal)? {
            return Err(AgentError::NotFound(format!(
                "contract {} is not registered: send create_contract first",
                agent.contract_id
            )));
        }
        within_quota(ctx, &mut change, &agent_id, caller).await?;
        let (agent, created) = change
            .tx
            .upsert_agent(&agent_id, &agent, &caller.subject)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                AgentError::Forbidden(format!(
                    "forbidden: agent {agent_id} belongs to someone else"
                ))
            })?;
        let what = if created { "created" } else { "agent" };
        let event = events::agent_updated(&agent_id, what, json!(agent));
        change.emit(&agent_id, event).await?;
        ctx.rec.commit(change, &agent.contract_id).await?;
        if agent.is_running() {
            ctx.runner.schedule(&agent_id);
        } else {
            ctx.runner.unschedule(&agent_id);
        }
        Ok(agent)
    }
}

/// A new agent counts against its creator's quota.
async fn within_quota(
    ctx: &Context,
    change: &mut Change,
    agent_id: &str,
    caller: &Caller,
) -> Result<()> {
    let cap = ctx.max_agents_per_owner;
    if cap == 0 || change.tx.agent(agent_id).await.map_err(internal)?.is_some() {
        return Ok(());
    }
    let owned = change.tx.agents_created_by(&caller.subject).await;
    if owned.map_err(internal)? >= cap {
        return Err(AgentError::Conflict(format!(
            "{} already has {cap} agents, the most one owner may create",
            caller.subject
        )));
    }
    Ok(())
}

/// Saves one part of an agent's configuration with `save` and emits its
/// `agent_updated` event; the caller may emit more, then commits.
async fn save_part<T: Published>(
    ctx: &Context,
    agent_id: &str,
    part: &str,
    save: impl AsyncFnOnce(&mut StoreTx) -> crate::store::Result<T>,
) -> Result<(Change, Agent, T)> {
    let mut change = ctx.rec.begin().await?;
    let agent = change.existing(agent_id).await?;
    let saved = save(&mut change.tx).await.map_err(internal)?;
    let event = events::agent_updated(agent_id, part, saved.published());
    change.emit(agent_id, event).await?;
    Ok((change, agent, saved))
}

/// Functions one agent may have: every run reads them all.
const MAX_FUNCTIONS: u64 = 100;

/// Adds a function to the agent (one per signature: adding it again updates it).
#[derive(Debug, Clone)]
pub struct AddFunction {
    pub agent_id: String,
    pub function: NewFunction,
}

impl Command for AddFunction {
    type Output = Function;

    fn access(&self) -> Access<'_> {
        Access::Edit(&self.agent_id)
    }

    async fn apply(self, ctx: &Context, _caller: &Caller) -> Result<Function> {
        let id = &self.agent_id;
        let signature = &self.function.function_signature;
        let counted = ctx.rec.store.function_count(id, signature).await;
        let (count, known) = counted.map_err(internal)?;
        if count >= MAX_FUNCTIONS && !known {
            return Err(AgentError::Conflict(format!(
                "agent {id} has {MAX_FUNCTIONS} functions, the most one agent may have"
            )));
        }
        let (change, agent, saved) = save_part(ctx, id, "function", async |tx| {
            tx.upsert_function(id, &self.function).await
        })
        .await?;
        ctx.rec.commit(change, &agent.contract_id).await?;
        Ok(saved)
    }
}

/// Sets the agent's one schedule and (re)arms it if the agent is running.
#[derive(Debug, Clone)]
pub struct SetSchedule {
    pub agent_id: String,
    pub schedule: NewSchedule,
}

impl Command for SetSchedule {
    type Output = Schedule;

    fn access(&self) -> Access<'_> {
        Access::Edit(&self.agent_id)
    }

    async fn apply(self, ctx: &Context, _caller: &Caller) -> Result<Schedule> {
        let (id, request) = (&self.agent_id, &self.schedule);
        let next = request
            .is_active
            .then(|| schedule::next_after(&request.kind, chrono::Utc::now()))
            .flatten()
            .map(format_time);
        let (mut change, agent, saved) = save_part(ctx, id, "schedule", async |tx| {
            tx.upsert_schedule(id, request, next.as_deref()).await
        })
        .await?;
        change.emit_status_unless_armed(&agent).await?;
        ctx.rec.commit(change, &agent.contract_id).await?;
        if agent.is_running() {
            ctx.runner.schedule(id);
        }
        Ok(saved)
    }
}

/// Sets one of the agent's notification channels (one per type).
#[derive(Debug, Clone)]
pub struct SetNotification {
    pub agent_id: String,
    pub notification: NewNotification,
}

impl Command for SetNotification {
    type Output = Notification;

    fn access(&self) -> Access<'_> {
        Access::Edit(&self.agent_id)
    }

    async fn apply(self, ctx: &Context, _caller: &Caller) -> Result<Notification> {
        let id = &self.agent_id;
        check_target(ctx, &self.notification).await?;
        let (change, agent, saved) = save_part(ctx, id, "notification", async |tx| {
            tx.upsert_notification(id, &self.notification).await
        })
        .await?;
        ctx.rec.commit(change, &agent.contract_id).await?;
        Ok(saved)
    }
}

/// A webhook or Discord URL must point where the server may send.
async fn check_target(ctx: &Context, notification: &NewNotification) -> Result<()> {
    let kind = notification.notification_type;
    if !matches!(kind, NotificationType::Webhook | NotificationType::Discord) {
        return Ok(());
    }
    let key = kind.required_key();
    let url = notification.configuration.get(key).and_then(|v| v.as_str());
    let checked = ctx.targets.check_url(url.unwrap_or_default()).await;
    checked.map_err(|why| AgentError::Invalid(format!("configuration.{key} {why}")))
}

/// Applies `update` to an existing agent and emits what `events` says, in
/// one transaction.
pub(super) async fn update(
    ctx: &Context,
    agent_id: &str,
    update: AgentUpdate<'_>,
    events: impl AsyncFnOnce(&mut Change, &Agent) -> Result<()>,
) -> Result<Agent> {
    let mut change = ctx.rec.begin().await?;
    let agent = change
        .tx
        .update_agent(agent_id, update)
        .await
        .map_err(internal)?
        .ok_or_else(|| AgentError::agent_not_found(agent_id))?;
    events(&mut change, &agent).await?;
    ctx.rec.commit(change, &agent.contract_id).await?;
    Ok(agent)
}

/// Marks the agent's configuration complete (`agent_configured`).
#[derive(Debug, Clone)]
pub struct Configure {
    pub agent_id: String,
}

impl Command for Configure {
    type Output = Agent;

    fn access(&self) -> Access<'_> {
        Access::Edit(&self.agent_id)
    }

    async fn apply(self, ctx: &Context, _caller: &Caller) -> Result<Agent> {
        let set = AgentUpdate {
            configured: true,
            ..Default::default()
        };
        update(ctx, &self.agent_id, set, async |change, agent| {
            let event = events::agent_configured(&agent.agent_id);
            change.emit(&agent.agent_id, event).await
        })
        .await
    }
}

/// Changes the agent's description (its goal, for an LLM policy).
#[derive(Debug, Clone)]
pub struct UpdateDescription {
    pub agent_id: String,
    pub description: String,
}

impl Command for UpdateDescription {
    type Output = Agent;

    fn access(&self) -> Access<'_> {
        Access::Edit(&self.agent_id)
    }

    async fn apply(self, ctx: &Context, _caller: &Caller) -> Result<Agent> {
        let set = AgentUpdate {
            description: Some(&self.description),
            ..Default::default()
        };
        update(ctx, &self.agent_id, set, async |change, agent| {
            let id = &agent.agent_id;
            let detail = json!(self.description);
            let event = events::agent_updated(id, "description", detail);
            change.emit(id, event).await?;
            change.emit_status(agent).await
        })
        .await
    }
}
