//! The agent manager: every command on agents, whichever door it comes in by
//! (WebSocket or REST). A command is one store transaction holding its changes
//! and its events; the events are published to the hub after the commit.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{
    model::{
        Agent, AgentDetails, AgentStatus, Contract, Function, Notification, Run, Schedule, now,
    },
    schedule,
};
use crate::{
    hub::{Event, Hub},
    protocol::{
        ErrorCode, ProtocolError,
        events::{self, EventFrame, Status},
        requests::{
            CreateAgent, CreateContract, CreateFunction, CreateNotification, CreateSchedule,
        },
    },
    store::{AgentUpdate, Store, StoreError, StoreTx, StoredEvent, StreamBounds},
};

pub type Result<T> = std::result::Result<T, ProtocolError>;

/// Logs the cause and tells the client only that it was internal.
fn internal(error: StoreError) -> ProtocolError {
    tracing::error!(%error, "store operation failed");
    ProtocolError::new(
        ErrorCode::Internal,
        "internal error: the change was not saved",
    )
}

fn not_found(agent_id: &str) -> ProtocolError {
    ProtocolError::new(ErrorCode::NotFound, format!("agent {agent_id} not found"))
}

/// What `execute` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub run_id: String,
    pub ok: bool,
    pub message: String,
    pub results: Vec<Value>,
    pub logs: Vec<Value>,
}

#[derive(Debug, Clone)]
pub struct Manager {
    store: Store,
    hub: Arc<Hub>,
}

/// A transaction and the events it will publish once committed.
struct Change {
    tx: StoreTx,
    events: Vec<StoredEvent>,
}

impl Change {
    async fn emit(&mut self, agent_id: &str, event: EventFrame) -> Result<()> {
        let stored = self
            .tx
            .append_event(agent_id, event)
            .await
            .map_err(internal)?;
        self.events.push(stored);
        Ok(())
    }
}

impl Manager {
    pub fn new(store: Store, hub: Arc<Hub>) -> Self {
        Self { store, hub }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    async fn begin(&self) -> Result<Change> {
        Ok(Change {
            tx: self.store.begin().await.map_err(internal)?,
            events: Vec::new(),
        })
    }

    /// Commits, then hands the events to the hub (never before: a subscriber
    /// must be able to read back from the store whatever it was sent).
    async fn commit(&self, change: Change, contract: &str) -> Result<()> {
        change.tx.commit().await.map_err(internal)?;
        for event in change.events {
            self.hub
                .publish(Arc::new(Event::from_stored(event)), contract);
        }
        Ok(())
    }

    async fn existing(change: &mut Change, agent_id: &str) -> Result<Agent> {
        change
            .tx
            .agent(agent_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found(agent_id))
    }

    pub async fn create_contract(&self, request: &CreateContract) -> Result<Contract> {
        let mut change = self.begin().await?;
        let contract = change.tx.upsert_contract(request).await.map_err(internal)?;
        self.commit(change, &contract.address).await?;
        Ok(contract)
    }

    /// Creates or updates agent `agent_id` on a registered contract.
    pub async fn create_agent(&self, agent_id: &str, request: &CreateAgent) -> Result<Agent> {
        let mut change = self.begin().await?;
        if !change
            .tx
            .contract_exists(&request.contract_id)
            .await
            .map_err(internal)?
        {
            return Err(ProtocolError::new(
                ErrorCode::NotFound,
                format!(
                    "contract {} is not registered: send create_contract first",
                    request.contract_id
                ),
            ));
        }
        let (agent, created) = change
            .tx
            .upsert_agent(agent_id, request)
            .await
            .map_err(internal)?;
        let what = if created { "created" } else { "agent" };
        change
            .emit(
                agent_id,
                events::agent_updated(agent_id, what, json!(agent)),
            )
            .await?;
        self.commit(change, &agent.contract_id).await?;
        Ok(agent)
    }

    pub async fn create_function(
        &self,
        agent_id: &str,
        request: &CreateFunction,
    ) -> Result<Function> {
        let mut change = self.begin().await?;
        let agent = Self::existing(&mut change, agent_id).await?;
        let function = change
            .tx
            .upsert_function(agent_id, request)
            .await
            .map_err(internal)?;
        change
            .emit(
                agent_id,
                events::agent_updated(agent_id, "function", json!(function)),
            )
            .await?;
        self.commit(change, &agent.contract_id).await?;
        Ok(function)
    }

    pub async fn create_schedule(
        &self,
        agent_id: &str,
        request: &CreateSchedule,
    ) -> Result<Schedule> {
        let mut change = self.begin().await?;
        let agent = Self::existing(&mut change, agent_id).await?;
        let next = request
            .is_active
            .then(|| schedule::next_after(&request.kind, chrono::Utc::now()))
            .flatten()
            .map(super::model::format_time);
        let saved = change
            .tx
            .upsert_schedule(agent_id, request, next.as_deref())
            .await
            .map_err(internal)?;
        change
            .emit(
                agent_id,
                events::agent_updated(agent_id, "schedule", json!(saved)),
            )
            .await?;
        change
            .emit(agent_id, status_of(&agent, Some(&saved)))
            .await?;
        self.commit(change, &agent.contract_id).await?;
        Ok(saved)
    }

    pub async fn create_notification(
        &self,
        agent_id: &str,
        request: &CreateNotification,
    ) -> Result<Notification> {
        let mut change = self.begin().await?;
        let agent = Self::existing(&mut change, agent_id).await?;
        let saved = change
            .tx
            .upsert_notification(agent_id, request)
            .await
            .map_err(internal)?;
        change
            .emit(
                agent_id,
                events::agent_updated(agent_id, "notification", json!(saved)),
            )
            .await?;
        self.commit(change, &agent.contract_id).await?;
        Ok(saved)
    }

    /// Marks the agent's configuration complete (`agent_configured`).
    pub async fn configure(&self, agent_id: &str) -> Result<Agent> {
        self.update(
            agent_id,
            AgentUpdate {
                configured: true,
                ..Default::default()
            },
            |id, _| vec![events::agent_configured(id)],
        )
        .await
    }

    pub async fn start(&self, agent_id: &str) -> Result<Agent> {
        let update = AgentUpdate {
            status: Some(AgentStatus::Active),
            ..Default::default()
        };
        self.update_with_status(agent_id, update, "agent_started")
            .await
    }

    pub async fn stop(&self, agent_id: &str) -> Result<Agent> {
        let update = AgentUpdate {
            status: Some(AgentStatus::Paused),
            ..Default::default()
        };
        self.update_with_status(agent_id, update, "agent_stopped")
            .await
    }

    pub async fn update_description(&self, agent_id: &str, description: &str) -> Result<Agent> {
        let update = AgentUpdate {
            description: Some(description),
            ..Default::default()
        };
        let mut change = self.begin().await?;
        let agent = change
            .tx
            .update_agent(agent_id, update)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found(agent_id))?;
        change
            .emit(
                agent_id,
                events::agent_updated(agent_id, "description", json!(description)),
            )
            .await?;
        let schedule = self.store.schedule(agent_id).await.map_err(internal)?;
        change
            .emit(agent_id, status_of(&agent, schedule.as_ref()))
            .await?;
        self.commit(change, &agent.contract_id).await?;
        Ok(agent)
    }

    async fn update_with_status(
        &self,
        agent_id: &str,
        update: AgentUpdate<'_>,
        kind: &'static str,
    ) -> Result<Agent> {
        let schedule = self.store.schedule(agent_id).await.map_err(internal)?;
        self.update(agent_id, update, |id, agent| {
            vec![
                events::lifecycle(kind, id),
                status_of(agent, schedule.as_ref()),
            ]
        })
        .await
    }

    async fn update(
        &self,
        agent_id: &str,
        update: AgentUpdate<'_>,
        events: impl FnOnce(&str, &Agent) -> Vec<EventFrame>,
    ) -> Result<Agent> {
        let mut change = self.begin().await?;
        let agent = change
            .tx
            .update_agent(agent_id, update)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found(agent_id))?;
        for event in events(agent_id, &agent) {
            change.emit(agent_id, event).await?;
        }
        self.commit(change, &agent.contract_id).await?;
        Ok(agent)
    }

    /// Deletes the agent and its configuration; its event stream stays readable.
    pub async fn remove(&self, agent_id: &str) -> Result<()> {
        let mut change = self.begin().await?;
        let agent = Self::existing(&mut change, agent_id).await?;
        change.tx.delete_agent(agent_id).await.map_err(internal)?;
        change
            .emit(agent_id, events::lifecycle("agent_removed", agent_id))
            .await?;
        self.commit(change, &agent.contract_id).await
    }

    /// Records an on-demand run. No runtime is attached yet: the run is stored
    /// as failed, with a log event saying so.
    pub async fn execute(&self, agent_id: &str, run_id: &str, request: Value) -> Result<Execution> {
        let mut change = self.begin().await?;
        let agent = Self::existing(&mut change, agent_id).await?;
        let started = now();
        let message = "no agent runtime is attached yet: the run was recorded but not executed";
        let run = Run {
            run_id: run_id.to_string(),
            agent_id: agent_id.to_string(),
            trigger: "manual".into(),
            status: "failed".into(),
            request: Some(request),
            result: None,
            error: Some(message.into()),
            started_at: started.clone(),
            finished_at: Some(started.clone()),
        };
        change.tx.insert_run(&run).await.map_err(internal)?;
        change
            .emit(agent_id, events::log(agent_id, "error", message, &started))
            .await?;
        self.commit(change, &agent.contract_id).await?;
        Ok(Execution {
            run_id: run.run_id,
            ok: false,
            message: message.into(),
            results: Vec::new(),
            logs: vec![json!({"timestamp": started, "level": "error", "message": message})],
        })
    }

    pub async fn details(&self, agent_id: &str) -> Result<AgentDetails> {
        self.store
            .agent_details(agent_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found(agent_id))
    }

    pub async fn runs(&self, agent_id: &str, limit: u32) -> Result<Vec<Run>> {
        if self
            .store
            .agent(agent_id)
            .await
            .map_err(internal)?
            .is_none()
        {
            return Err(not_found(agent_id));
        }
        self.store.runs(agent_id, limit).await.map_err(internal)
    }

    pub async fn agents(&self) -> Result<Vec<Agent>> {
        self.store.agents().await.map_err(internal)
    }

    pub async fn agents_of_contract(&self, address: &str) -> Result<Vec<Agent>> {
        self.store
            .agents_of_contract(address)
            .await
            .map_err(internal)
    }

    pub async fn functions(&self, agent_id: &str) -> Result<Vec<Function>> {
        self.store.functions(agent_id).await.map_err(internal)
    }

    pub async fn events_since(
        &self,
        agent_id: &str,
        since: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        self.store
            .events_since(agent_id, since, limit)
            .await
            .map_err(internal)
    }

    pub async fn stream_bounds(&self, agent_id: &str) -> Result<StreamBounds> {
        self.store.stream_bounds(agent_id).await.map_err(internal)
    }

    /// What `status` events say of the agent now, and where its stream is.
    pub async fn state(&self, details: &AgentDetails) -> Result<Value> {
        let bounds = self.stream_bounds(&details.agent.agent_id).await?;
        let status = status_of(&details.agent, details.schedule.as_ref());
        Ok(json!({
            "status": details.agent.status,
            "running": status.frame["running"],
            "lastExecuted": status.frame["lastExecuted"],
            "nextExecution": status.frame["nextExecution"],
            "configured": details.agent.configured,
            "last_seq": bounds.last_seq,
        }))
    }
}

/// The `status` event of an agent as it is now.
fn status_of(agent: &Agent, schedule: Option<&Schedule>) -> EventFrame {
    let running = agent.status == AgentStatus::Active;
    let next = schedule
        .filter(|s| s.is_active && running)
        .and_then(|s| s.next_execution.as_deref());
    events::status(&Status {
        agent_id: &agent.agent_id,
        status: agent.status.as_str(),
        running,
        last_executed: agent.last_executed.as_deref(),
        next_execution: next,
    })
}
