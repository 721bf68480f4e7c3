//! Commits a command's changes together with its events, then publishes the
//! events: used by the manager (commands) and the runtime (runs).

use std::sync::Arc;

use super::model::{Agent, Schedule};
use crate::{
    hub::{Event, Hub},
    protocol::{
        ErrorCode, ProtocolError,
        events::{self, EventFrame, Status},
    },
    store::{Store, StoreError, StoreTx, StoredEvent},
};

pub type Result<T> = std::result::Result<T, ProtocolError>;

/// Logs the cause and tells the client only that it was internal.
pub fn internal(error: StoreError) -> ProtocolError {
    tracing::error!(%error, "store operation failed");
    ProtocolError::new(
        ErrorCode::Internal,
        "internal error: the change was not saved",
    )
}

pub fn not_found(agent_id: &str) -> ProtocolError {
    ProtocolError::new(ErrorCode::NotFound, format!("agent {agent_id} not found"))
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

impl Change {
    pub async fn emit(&mut self, agent_id: &str, event: EventFrame) -> Result<()> {
        let stored = self
            .tx
            .append_event(agent_id, event)
            .await
            .map_err(internal)?;
        self.events.push(stored);
        Ok(())
    }

    pub async fn existing(&mut self, agent_id: &str) -> Result<Agent> {
        self.tx
            .agent(agent_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found(agent_id))
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
            self.hub
                .publish(Arc::new(Event::from_stored(event)), contract);
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

/// The `status` event of an agent as it is now.
pub fn status_of(agent: &Agent, schedule: Option<&Schedule>) -> EventFrame {
    let running = agent.status == super::model::AgentStatus::Active;
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
