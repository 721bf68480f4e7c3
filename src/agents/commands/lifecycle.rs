//! Commands that change what an agent does: start, stop, remove, run now.

use serde_json::Value;

use super::configure::update;
use crate::{
    agents::{
        access::Access,
        manager::{Command, Context},
        recorder::{Result, internal},
        runner::{RunOutcome, RunRequest},
    },
    model::{Agent, AgentError, AgentStatus, Caller, EventKind, Trigger},
    protocol::events,
    store::AgentUpdate,
};

/// Sets the agent's status with its lifecycle event and `status`.
async fn set_status(
    ctx: &Context,
    agent_id: &str,
    status: AgentStatus,
    kind: EventKind,
) -> Result<Agent> {
    let set = AgentUpdate {
        status: Some(status),
        ..Default::default()
    };
    update(ctx, agent_id, set, async |change, agent| {
        let id = &agent.agent_id;
        change.emit(id, events::lifecycle(kind, id)).await?;
        change.emit_status_unless_armed(agent).await
    })
    .await
}

/// Makes the agent active and schedules it.
#[derive(Debug, Clone)]
pub struct Start {
    pub agent_id: String,
}

impl Command for Start {
    type Output = Agent;

    fn access(&self) -> Access<'_> {
        Access::Operate(&self.agent_id)
    }

    async fn apply(self, ctx: &Context, _caller: &Caller) -> Result<Agent> {
        let id = &self.agent_id;
        let agent = set_status(ctx, id, AgentStatus::Active, EventKind::AgentStarted).await?;
        ctx.runner.schedule(id);
        Ok(agent)
    }
}

/// Pauses the agent: its timer stops, a run in progress stops at a safe point.
#[derive(Debug, Clone)]
pub struct Stop {
    pub agent_id: String,
}

impl Command for Stop {
    type Output = Agent;

    fn access(&self) -> Access<'_> {
        Access::Operate(&self.agent_id)
    }

    async fn apply(self, ctx: &Context, _caller: &Caller) -> Result<Agent> {
        let id = &self.agent_id;
        ctx.runner.unschedule(id);
        set_status(ctx, id, AgentStatus::Paused, EventKind::AgentStopped).await
    }
}

/// Deletes the agent, its configuration and its stored events (its seq goes
/// on, so followers see `agent_removed` after what they had).
#[derive(Debug, Clone)]
pub struct Remove {
    pub agent_id: String,
}

impl Command for Remove {
    type Output = ();

    fn access(&self) -> Access<'_> {
        Access::Remove(&self.agent_id)
    }

    async fn apply(self, ctx: &Context, _caller: &Caller) -> Result<()> {
        let id = &self.agent_id;
        let mut change = ctx.rec.begin().await?;
        let agent = change.existing(id).await?;
        ctx.runner.unschedule(id);
        change.tx.delete_agent(id).await.map_err(internal)?;
        // Its history goes with it: whoever creates this id next starts clean.
        change.tx.delete_events(id).await.map_err(internal)?;
        let event = events::lifecycle(EventKind::AgentRemoved, id);
        change.emit(id, event).await?;
        ctx.rec.commit(change, &agent.contract_id).await
    }
}

/// Runs one cycle now and returns its outcome. `params` are the execution
/// view's `{functions, contract}` (argument values for read functions).
#[derive(Debug, Clone)]
pub struct Execute {
    pub agent_id: String,
    pub run_id: String,
    pub params: Value,
}

impl Command for Execute {
    type Output = RunOutcome;

    fn access(&self) -> Access<'_> {
        Access::Operate(&self.agent_id)
    }

    async fn apply(self, ctx: &Context, _caller: &Caller) -> Result<RunOutcome> {
        let known = ctx
            .rec
            .store
            .agent(&self.agent_id)
            .await
            .map_err(internal)?;
        if known.is_none() {
            return Err(AgentError::agent_not_found(&self.agent_id));
        }
        let request = RunRequest {
            agent_id: self.agent_id,
            run_id: self.run_id,
            trigger: Trigger::Manual,
            params: Some(self.params),
        };
        Ok(ctx.runner.run(request).await)
    }
}
