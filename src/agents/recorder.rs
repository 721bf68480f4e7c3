//! Commits a command's changes together with its events, then publishes the
//! events: used by the commands and by runs.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;

use crate::{
    hub::{Event, Hub},
    model::{Agent, AgentError, EventBody, EventKind, Schedule, StoredEvent},
    protocol::events::{self, EventFrame, Status},
    store::{Store, StoreError, StoreTx},
};

pub type Result<T, E = AgentError> = std::result::Result<T, E>;

/// Logs the cause and tells the caller only that it was internal.
pub fn internal(error: StoreError) -> AgentError {
    tracing::error!(%error, "store operation failed");
    AgentError::Internal("internal error: the change was not saved".into())
}

#[derive(Debug, Clone)]
pub struct Recorder {
    pub store: Store,
    pub hub: Arc<Hub>,
}

/// A transaction and the events it will publish once committed.
pub struct Change {
    pub tx: StoreTx,
    events: Vec<StoredEvent>,
}

/// An event as it may leave the server: rendered, then redacted.
struct Redacted(EventFrame);

impl EventBody for Redacted {
    fn kind(&self) -> EventKind {
        self.0.kind()
    }

    fn render(&self, seq: u64) -> String {
        crate::redact::clean(&self.0.render(seq)).into_owned()
    }
}

impl Change {
    pub async fn emit(&mut self, agent_id: &str, event: EventFrame) -> Result<()> {
        let stored = self
            .tx
            .append_event(agent_id, Redacted(event))
            .await
            .map_err(internal)?;
        self.events.push(stored);
        Ok(())
    }

    /// The agent as this transaction sees it; not found is an error.
    pub async fn existing(&mut self, agent_id: &str) -> Result<Agent> {
        self.tx
            .agent(agent_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| AgentError::agent_not_found(agent_id))
    }

    /// Emits the agent's `status` as this transaction sees it.
    pub async fn emit_status(&mut self, agent: &Agent) -> Result<()> {
        let schedule = self.tx.schedule(&agent.agent_id).await.map_err(internal)?;
        self.emit(&agent.agent_id, status_of(agent, schedule.as_ref()))
            .await
    }

    /// Emits the agent's `status`, unless its timer is about to: a running
    /// agent with an active schedule gets it from the timer as it arms, with
    /// the next fire time (one `status`, not two).
    pub async fn emit_status_unless_armed(&mut self, agent: &Agent) -> Result<()> {
        let schedule = self.tx.schedule(&agent.agent_id).await.map_err(internal)?;
        if agent.is_running() && schedule.as_ref().is_some_and(|s| s.is_active) {
            return Ok(());
        }
        self.emit(&agent.agent_id, status_of(agent, schedule.as_ref()))
            .await
    }
}

impl Recorder {
    pub async fn begin(&self) -> Result<Change> {
        Ok(Change {
            tx: self.store.begin().await.map_err(internal)?,
            events: Vec::new(),
        })
    }

    /// Commits, then hands the events to the hub (never before: a subscriber
    /// must be able to read back from the store whatever it was sent).
    pub async fn commit(&self, change: Change, contract: &str) -> Result<()> {
        change.tx.commit().await.map_err(internal)?;
        for event in change.events {
            self.hub.publish(Arc::new(event_of(event, contract))).await;
        }
        Ok(())
    }

    /// Stores and publishes one event of an agent on its own.
    pub async fn emit(&self, agent: &Agent, event: EventFrame) -> Result<()> {
        let mut change = self.begin().await?;
        change.emit(&agent.agent_id, event).await?;
        self.commit(change, &agent.contract_id).await
    }
}

/// A stored event as the hub shares it.
pub fn event_of(stored: StoredEvent, contract: &str) -> Event {
    Event {
        agent_id: stored.agent_id,
        contract: contract.to_ascii_lowercase(),
        seq: stored.seq,
        kind: stored.kind,
        text: Utf8Bytes::from(stored.text),
    }
}

/// The `status` event of an agent as it is now.
pub fn status_of(agent: &Agent, schedule: Option<&Schedule>) -> EventFrame {
    events::status(&Status {
        agent_id: &agent.agent_id,
        status: agent.status,
        running: agent.is_running(),
        last_executed: agent.last_executed.as_deref(),
        next_execution: agent.next_execution(schedule),
    })
}
