//! The agent manager: every command on agents, whichever door it comes in by
//! (WebSocket or REST). A command is one store transaction holding its changes
//! and its events; the events are published to the hub after the commit.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{
    model::{Agent, AgentDetails, AgentStatus, Contract, Function, Notification, Run, Schedule},
    recorder::{Change, Recorder, Result, internal, not_found, status_of},
    runtime::{Runtime, RuntimeSettings},
    schedule,
};
use crate::{
    hub::Hub,
    protocol::{
        ErrorCode, ProtocolError,
        events::{self, EventFrame},
        requests::{
            CreateAgent, CreateContract, CreateFunction, CreateNotification, CreateSchedule,
        },
    },
    store::{AgentUpdate, Store, StoreTx, StoredEvent, StreamBounds},
};

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
    rec: Recorder,
    runtime: Runtime,
}

impl Manager {
    pub fn new(store: Store, hub: Arc<Hub>, runtime: RuntimeSettings) -> Self {
        let rec = Recorder { store, hub };
        let runtime = Runtime::new(rec.clone(), runtime);
        Self { rec, runtime }
    }

    pub fn store(&self) -> &Store {
        &self.rec.store
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.rec.hub
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    async fn begin(&self) -> Result<Change> {
        self.rec.begin().await
    }

    async fn commit(&self, change: Change, contract: &str) -> Result<()> {
        self.rec.commit(change, contract).await
    }

    async fn existing(change: &mut Change, agent_id: &str) -> Result<Agent> {
        change.existing(agent_id).await
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
        if agent.status == AgentStatus::Active {
            self.runtime.schedule(agent_id);
        } else {
            self.runtime.unschedule(agent_id);
        }
        Ok(agent)
    }

    /// Saves one part of an agent's configuration with `save` and emits its
    /// `agent_updated` event; the caller may emit more, then commits.
    async fn save_part<T: serde::Serialize>(
        &self,
        agent_id: &str,
        part: &str,
        save: impl AsyncFnOnce(&mut StoreTx) -> crate::store::Result<T>,
    ) -> Result<(Change, Agent, T)> {
        let mut change = self.begin().await?;
        let agent = Self::existing(&mut change, agent_id).await?;
        let saved = save(&mut change.tx).await.map_err(internal)?;
        change
            .emit(
                agent_id,
                events::agent_updated(agent_id, part, json!(saved)),
            )
            .await?;
        Ok((change, agent, saved))
    }

    pub async fn create_function(
        &self,
        agent_id: &str,
        request: &CreateFunction,
    ) -> Result<Function> {
        let (change, agent, saved) = self
            .save_part(agent_id, "function", async |tx| {
                tx.upsert_function(agent_id, request).await
            })
            .await?;
        self.commit(change, &agent.contract_id).await?;
        Ok(saved)
    }

    pub async fn create_schedule(
        &self,
        agent_id: &str,
        request: &CreateSchedule,
    ) -> Result<Schedule> {
        let next = request
            .is_active
            .then(|| schedule::next_after(&request.kind, chrono::Utc::now()))
            .flatten()
            .map(super::model::format_time);
        let (mut change, agent, saved) = self
            .save_part(agent_id, "schedule", async |tx| {
                tx.upsert_schedule(agent_id, request, next.as_deref()).await
            })
            .await?;
        change
            .emit(agent_id, status_of(&agent, Some(&saved)))
            .await?;
        self.commit(change, &agent.contract_id).await?;
        if agent.status == AgentStatus::Active {
            self.runtime.schedule(agent_id);
        }
        Ok(saved)
    }

    pub async fn create_notification(
        &self,
        agent_id: &str,
        request: &CreateNotification,
    ) -> Result<Notification> {
        let (change, agent, saved) = self
            .save_part(agent_id, "notification", async |tx| {
                tx.upsert_notification(agent_id, request).await
            })
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

    /// Makes the agent active and schedules it.
    pub async fn start(&self, agent_id: &str) -> Result<Agent> {
        let update = AgentUpdate {
            status: Some(AgentStatus::Active),
            ..Default::default()
        };
        let agent = self
            .update_with_status(agent_id, update, "agent_started")
            .await?;
        self.runtime.schedule(agent_id);
        Ok(agent)
    }

    /// Pauses the agent: its timer stops, a run in progress stops at a safe point.
    pub async fn stop(&self, agent_id: &str) -> Result<Agent> {
        let update = AgentUpdate {
            status: Some(AgentStatus::Paused),
            ..Default::default()
        };
        self.runtime.unschedule(agent_id);
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
        let schedule = change.tx.schedule(agent_id).await.map_err(internal)?;
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
        let schedule = self.rec.store.schedule(agent_id).await.map_err(internal)?;
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
        self.runtime.unschedule(agent_id);
        change.tx.delete_agent(agent_id).await.map_err(internal)?;
        change
            .emit(agent_id, events::lifecycle("agent_removed", agent_id))
            .await?;
        self.commit(change, &agent.contract_id).await
    }

    /// Runs one cycle now and returns its outcome. `params` are the execution
    /// view's `{functions, contract}` (argument values for read functions).
    pub async fn execute(&self, agent_id: &str, run_id: &str, params: Value) -> Result<Execution> {
        if self
            .rec
            .store
            .agent(agent_id)
            .await
            .map_err(internal)?
            .is_none()
        {
            return Err(not_found(agent_id));
        }
        Ok(self
            .runtime
            .run(agent_id, run_id, "manual", Some(params))
            .await)
    }

    pub async fn details(&self, agent_id: &str) -> Result<AgentDetails> {
        self.rec
            .store
            .agent_details(agent_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found(agent_id))
    }

    pub async fn runs(&self, agent_id: &str, limit: u32) -> Result<Vec<Run>> {
        if self
            .rec
            .store
            .agent(agent_id)
            .await
            .map_err(internal)?
            .is_none()
        {
            return Err(not_found(agent_id));
        }
        self.rec.store.runs(agent_id, limit).await.map_err(internal)
    }

    pub async fn agents(&self) -> Result<Vec<Agent>> {
        self.rec.store.agents().await.map_err(internal)
    }

    pub async fn agents_of_contract(&self, address: &str) -> Result<Vec<Agent>> {
        self.rec
            .store
            .agents_of_contract(address)
            .await
            .map_err(internal)
    }

    pub async fn functions(&self, agent_id: &str) -> Result<Vec<Function>> {
        self.rec.store.functions(agent_id).await.map_err(internal)
    }

    pub async fn events_since(
        &self,
        agent_id: &str,
        since: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        self.rec
            .store
            .events_since(agent_id, since, limit)
            .await
            .map_err(internal)
    }

    pub async fn stream_bounds(&self, agent_id: &str) -> Result<StreamBounds> {
        self.rec
            .store
            .stream_bounds(agent_id)
            .await
            .map_err(internal)
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
