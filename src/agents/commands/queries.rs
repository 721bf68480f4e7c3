//! Reads: an agent with everything about it, its runs, lists of agents.

use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    agents::{
        access::Access,
        manager::{Command, Context},
        recorder::{Result, internal},
    },
    model::{
        Agent, AgentDetails, AgentError, AgentState, Caller, Function, Notification, PageCursor,
        Role, Run,
    },
};

/// An agent, its functions, schedule and notifications, and what it is doing.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgentView {
    #[serde(flatten)]
    pub details: AgentDetails,
    pub state: AgentState,
}

/// Everything about one agent (`get_agent`).
#[derive(Debug, Clone)]
pub struct Describe {
    pub agent_id: String,
}

impl Command for Describe {
    type Output = AgentView;

    fn access(&self) -> Access<'_> {
        Access::Read(&self.agent_id)
    }

    async fn apply(self, ctx: &Context, caller: &Caller) -> Result<AgentView> {
        let store = &ctx.rec.store;
        let mut details = store
            .agent_details(&self.agent_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| AgentError::agent_not_found(&self.agent_id))?;
        let bounds = store
            .stream_bounds(&self.agent_id)
            .await
            .map_err(internal)?;
        let agent = &details.agent;
        let state = AgentState {
            status: agent.status,
            running: agent.is_running(),
            last_executed: agent.last_executed.clone(),
            next_execution: agent
                .next_execution(details.schedule.as_ref())
                .map(str::to_string),
            configured: agent.configured,
            last_seq: bounds.last_seq,
        };
        // Viewers may not change notifications, nor read where they go.
        if caller.role < Role::Operator {
            let masked = details.notifications.iter().map(Notification::masked);
            details.notifications = masked.collect();
        }
        Ok(AgentView { details, state })
    }
}

/// The agent's most recent runs, newest first, a page at a time.
#[derive(Debug, Clone)]
pub struct ListRuns {
    pub agent_id: String,
    pub limit: u32,
    /// Where the page starts (`None`: the newest first).
    pub before: Option<PageCursor>,
}

/// Runs, and where the next page starts (`None`: last; otherwise an encoded
/// [`PageCursor`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RunPage {
    pub runs: Vec<Run>,
    pub next: Option<String>,
}

impl Command for ListRuns {
    type Output = RunPage;

    fn access(&self) -> Access<'_> {
        Access::Read(&self.agent_id)
    }

    async fn apply(self, ctx: &Context, _caller: &Caller) -> Result<RunPage> {
        let store = &ctx.rec.store;
        if store
            .agent(&self.agent_id)
            .await
            .map_err(internal)?
            .is_none()
        {
            return Err(AgentError::agent_not_found(&self.agent_id));
        }
        let runs = store
            .runs_before(&self.agent_id, self.before.as_ref(), self.limit)
            .await
            .map_err(internal)?;
        // A full page may have more behind it.
        let next = (runs.len() == self.limit as usize)
            .then(|| runs.last().map(|r| PageCursor::after_run(r).encode()))
            .flatten();
        Ok(RunPage { runs, next })
    }
}

/// A page of agents, in creation order, after the cursor `after`.
#[derive(Debug, Clone)]
pub struct ListAgents {
    pub after: Option<PageCursor>,
    pub limit: u32,
}

/// Agents the caller may see, and where the next page starts (`None`: last;
/// otherwise an encoded [`PageCursor`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentPage {
    pub agents: Vec<Agent>,
    pub next: Option<String>,
}

impl AgentPage {
    /// A page read with `limit`: a full one may have a successor. The cursor
    /// is taken before filtering what the caller sees, so a page of hidden
    /// agents still leads on.
    fn of(caller: &Caller, page: Vec<Agent>, limit: u32) -> AgentPage {
        let full = page.len() == limit as usize;
        let next = full
            .then(|| page.last().map(|a| PageCursor::after_agent(a).encode()))
            .flatten();
        AgentPage {
            agents: visible(caller, page),
            next,
        }
    }
}

impl Command for ListAgents {
    type Output = AgentPage;

    fn access(&self) -> Access<'_> {
        Access::List
    }

    async fn apply(self, ctx: &Context, caller: &Caller) -> Result<AgentPage> {
        let store = &ctx.rec.store;
        let page = store.agents(self.after.as_ref(), self.limit).await;
        Ok(AgentPage::of(caller, page.map_err(internal)?, self.limit))
    }
}

/// A page of the agents acting on a contract address (any case, any chain).
#[derive(Debug, Clone)]
pub struct AgentsOfContract {
    pub address: String,
    pub after: Option<PageCursor>,
    pub limit: u32,
}

impl Command for AgentsOfContract {
    type Output = AgentPage;

    fn access(&self) -> Access<'_> {
        Access::List
    }

    async fn apply(self, ctx: &Context, caller: &Caller) -> Result<AgentPage> {
        let store = &ctx.rec.store;
        let page = store.agents_of_contract(&self.address, self.after.as_ref(), self.limit);
        Ok(AgentPage::of(
            caller,
            page.await.map_err(internal)?,
            self.limit,
        ))
    }
}

/// An agent's functions (none when there is no such agent).
#[derive(Debug, Clone)]
pub struct ListFunctions {
    pub agent_id: String,
}

impl Command for ListFunctions {
    type Output = Vec<Function>;

    fn access(&self) -> Access<'_> {
        Access::Read(&self.agent_id)
    }

    async fn apply(self, ctx: &Context, _caller: &Caller) -> Result<Vec<Function>> {
        ctx.rec
            .store
            .functions(&self.agent_id)
            .await
            .map_err(internal)
    }
}

/// The agents of a list that the caller may see.
fn visible(caller: &Caller, agents: Vec<Agent>) -> Vec<Agent> {
    agents
        .into_iter()
        .filter(|a| caller.sees(&a.agent_id, Some(&a.contract_id)))
        .collect()
}
