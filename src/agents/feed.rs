//! The read side of agents' event streams, for sessions: follow a topic, read
//! stored events back, know a stream's bounds. Authorized like commands, so a
//! caller never follows or replays an agent it may not read.

use super::{
    access::{self, Access},
    recorder::Recorder,
};
use crate::{
    hub::{Subscriber, Topic},
    model::{AgentError, Caller, StoredEvent, StreamBounds},
    store::StoreError,
};

/// The most agents a contract channel follows (and replays) by itself. Events
/// of any later agent of the contract still arrive through the contract topic.
pub const CONTRACT_CHANNEL_AGENTS: u32 = 1000;

#[derive(Debug, Clone)]
pub struct Feed {
    rec: Recorder,
}

impl Feed {
    pub(super) fn new(rec: Recorder) -> Self {
        Self { rec }
    }

    /// Starts handing `topic`'s live events to `subscriber` (named `id`).
    pub async fn subscribe(
        &self,
        caller: &Caller,
        topic: Topic,
        id: u64,
        subscriber: Subscriber,
    ) -> Result<(), AgentError> {
        // A contract's events are filtered per agent on delivery (`visible`).
        let access = match &topic {
            Topic::Agent(agent_id) => Access::Read(agent_id),
            Topic::Contract(_) => Access::List,
        };
        self.authorize(caller, access).await?;
        self.rec.hub.subscribe(topic, id, subscriber);
        Ok(())
    }

    pub fn unsubscribe(&self, topic: &Topic, id: u64) {
        self.rec.hub.unsubscribe(topic, id);
    }

    /// Returns once every event committed before this call is in its
    /// subscribers' inboxes (the hub hands events over in the background).
    pub async fn settled(&self) {
        self.rec.hub.settled().await;
    }

    /// Stored events of `agent_id` with seq > `since`, oldest first, at most `limit`.
    pub async fn events_since(
        &self,
        caller: &Caller,
        agent_id: &str,
        since: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, AgentError> {
        self.authorize(caller, Access::Read(agent_id)).await?;
        let store = &self.rec.store;
        store
            .events_since(agent_id, since, limit)
            .await
            .map_err(unreadable)
    }

    pub async fn bounds(
        &self,
        caller: &Caller,
        agent_id: &str,
    ) -> Result<StreamBounds, AgentError> {
        self.authorize(caller, Access::Read(agent_id)).await?;
        self.rec
            .store
            .stream_bounds(agent_id)
            .await
            .map_err(unreadable)
    }

    /// The ids of the agents acting on a contract address, that the caller may
    /// read: the first [`CONTRACT_CHANNEL_AGENTS`] created, so one channel
    /// cannot make a session follow without bound.
    pub async fn agents_of_contract(
        &self,
        caller: &Caller,
        address: &str,
    ) -> Result<Vec<String>, AgentError> {
        self.authorize(caller, Access::List).await?;
        let store = &self.rec.store;
        let agents = store.agents_of_contract(address, None, CONTRACT_CHANNEL_AGENTS);
        let agents = agents.await;
        let agents = agents.map_err(unreadable)?.into_iter();
        Ok(agents
            .filter(|a| caller.sees(&a.agent_id, Some(&a.contract_id)))
            .map(|a| a.agent_id)
            .collect())
    }

    /// Whether `caller` may read the agent; a refusal is an answer, not an error.
    pub async fn may_read(&self, caller: &Caller, agent_id: &str) -> Result<bool, AgentError> {
        match self.authorize(caller, Access::Read(agent_id)).await {
            Ok(()) => Ok(true),
            Err(AgentError::Forbidden(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Whether an event of `agent_id` (acting on `contract`) may reach `caller`.
    pub fn visible(caller: &Caller, agent_id: &str, contract: &str) -> bool {
        caller.sees(agent_id, Some(contract))
    }

    async fn authorize(&self, caller: &Caller, access: Access<'_>) -> Result<(), AgentError> {
        access::authorize(&self.rec.store, caller, access).await
    }
}

fn unreadable(error: StoreError) -> AgentError {
    tracing::error!(%error, "reading the event stream failed");
    AgentError::Internal("internal error while reading events".into())
}
