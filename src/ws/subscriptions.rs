//! Which agents' events a session follows, and their delivery in seq order:
//! no gap (a missing seq is read back from the store), no duplicate (a seq
//! already sent is dropped), whatever order the hub hands them over in.
//!
//! The common case, the next seq of an agent the session is up to date with,
//! goes from the hub straight into the session's outbox: no hop through the
//! session's task. Anything else (a gap, an agent seen for the first time, a
//! removal) is handed to the session, and later events queue behind it until
//! it is handled, so that the order holds.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
};

use super::{
    outbox::Outbox,
    queue::{Queue, Refused},
};
use crate::{
    agents::feed::Feed,
    hub::{Event, Inbox, Subscriber, Topic},
    model::{Caller, EventKind, is_address},
    protocol::{CloseCode, ErrorCode, Frame, ProtocolError},
    registry::{Control, Ending},
};
use axum::extract::ws::Utf8Bytes;
use serde_json::json;

/// Events read from the store per query during replays and gap fills.
const PAGE: u32 = 500;

/// Agents (and contracts) one connection may follow at once: each costs a hub
/// entry, and a client must not grow the server without bound.
const MAX_TOPICS: usize = 1024;

/// What reaches a session's inbox: an event from the hub, or a reply finished
/// in the background (a run's outcome, after the run's own events).
#[derive(Debug)]
pub enum Delivery {
    Event(Arc<Event>),
    /// Boxed: every slot of every session's inbox is sized for the larger variant.
    Reply(Box<Frame>),
}

/// Where a session stands in each agent's stream, shared by the hub's fast
/// path and the session's task.
#[derive(Default)]
struct Positions {
    /// The last seq sent to the client, per agent.
    delivered: HashMap<String, u64>,
    /// Events handed to the session's task and not yet handled: while any
    /// wait, later ones queue behind them.
    queued: usize,
    /// Set while the session sends stored events (replay, gap fill), which
    /// the hub must not overtake.
    reading: bool,
}

/// A session's inbox as the hub sees it: full means the client does not keep
/// up, and it is closed with 1013 (it resumes with `since`).
struct SessionInbox {
    queue: Arc<Queue<Delivery>>,
    outbox: Outbox,
    caller: Caller,
    positions: Mutex<Positions>,
    control: Control,
}

impl SessionInbox {
    fn positions(&self) -> MutexGuard<'_, Positions> {
        self.positions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends the event at once when it is the next one of an agent the client
    /// is up to date with; drops one already sent. `None`: the session decides.
    fn send_in_order(&self, positions: &mut Positions, event: &Event) -> Option<bool> {
        if positions.queued > 0 || positions.reading || event.kind == EventKind::AgentRemoved {
            return None;
        }
        let last = positions.delivered.get_mut(&event.agent_id)?;
        if event.seq <= *last {
            return Some(true);
        }
        if event.seq != *last + 1 || !Feed::visible(&self.caller, &event.agent_id, &event.contract)
        {
            return None;
        }
        *last = event.seq;
        // A full outbox ends the session itself (1013).
        self.outbox
            .send_text(event.kind.as_str(), event.text.clone());
        Some(true)
    }
}

impl Inbox for SessionInbox {
    fn offer(&self, event: &Arc<Event>) -> bool {
        let mut positions = self.positions();
        if let Some(taken) = self.send_in_order(&mut positions, event) {
            return taken;
        }
        match self.queue.try_push(Delivery::Event(Arc::clone(event)), 0) {
            Ok(()) => {
                positions.queued += 1;
                true
            }
            Err(Refused::Full(_)) => false,
            Err(Refused::Closed(_)) => true,
        }
    }

    fn overflowed(&self) {
        self.control.end(Ending::Server(
            CloseCode::TryAgainLater,
            "slow consumer: reconnect with since",
        ));
    }
}

pub struct Subscriptions {
    session: u64,
    caller: Caller,
    feed: Feed,
    inbox: Arc<SessionInbox>,
    topics: HashSet<Topic>,
    /// Agents whose stored events must still be replayed (`?since=`).
    pending_replay: Vec<(String, u64)>,
}

impl Subscriptions {
    pub fn new(session: u64, caller: Caller, feed: Feed, outbox: Outbox, capacity: usize) -> Self {
        let inbox = SessionInbox {
            queue: Arc::new(Queue::new(capacity, usize::MAX)),
            control: outbox.control().clone(),
            outbox,
            caller: caller.clone(),
            positions: Mutex::default(),
        };
        Self {
            session,
            caller,
            feed,
            inbox: Arc::new(inbox),
            topics: HashSet::new(),
            pending_replay: Vec::new(),
        }
    }

    fn positions(&self) -> MutexGuard<'_, Positions> {
        self.inbox.positions()
    }

    /// The session's outbox, which the hub's fast path also writes to.
    pub fn outbox(&self) -> &Outbox {
        &self.inbox.outbox
    }

    /// The last seq sent to the client of `agent_id`, if it follows it.
    fn delivered(&self, agent_id: &str) -> Option<u64> {
        self.positions().delivered.get(agent_id).copied()
    }

    /// Records that the client has everything of `agent_id` up to `seq`
    /// (never going back).
    fn advance(&self, agent_id: &str, seq: u64) {
        let mut positions = self.positions();
        let last = positions
            .delivered
            .entry(agent_id.to_string())
            .or_insert(seq);
        *last = (*last).max(seq);
    }

    /// Subscribes to the path channel before the upgrade completes, so that a
    /// client that sees its connection open misses no later event: the agent
    /// named by the channel and, for a contract address, every agent acting on
    /// it. With `since`, their stored events are replayed by `replay_pending`.
    pub async fn open_channel(
        &mut self,
        channel: &str,
        since: Option<u64>,
    ) -> Result<(), ProtocolError> {
        let mut agents = Vec::new();
        if is_address(channel) {
            self.follow_contract(channel).await?;
            let feed = &self.feed;
            agents.extend(feed.agents_of_contract(&self.caller, channel).await?);
        }
        // A channel naming an agent the caller may not see follows nothing.
        if !agents.iter().any(|a| a == channel) && self.may_read(channel).await? {
            agents.insert(0, channel.to_string());
        }
        for agent_id in agents {
            match since {
                None => self.follow(&agent_id).await?,
                Some(since) => {
                    self.add(Topic::Agent(agent_id.clone())).await?;
                    self.advance(&agent_id, since);
                    self.pending_replay.push((agent_id, since));
                }
            }
        }
        Ok(())
    }

    /// Whether this session's caller may read the agent.
    async fn may_read(&self, agent_id: &str) -> Result<bool, ProtocolError> {
        Ok(self.feed.may_read(&self.caller, agent_id).await?)
    }

    /// Replays what `open_channel` left to replay.
    pub async fn replay_pending(&mut self, outbox: &Outbox) -> Result<(), ProtocolError> {
        for (agent_id, since) in std::mem::take(&mut self.pending_replay) {
            self.replay(outbox, &agent_id, since).await?;
        }
        Ok(())
    }

    /// The next event handed over by the hub, or a deferred reply.
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.inbox.queue.pop().await
    }

    /// A handle to put a reply into this inbox later, behind the events that
    /// are published before it.
    pub fn deferred(&self) -> Deferred {
        Deferred {
            queue: Arc::clone(&self.inbox.queue),
            feed: self.feed.clone(),
        }
    }

    pub fn follows(&self, topic: &Topic) -> bool {
        self.topics.contains(topic)
    }

    /// Starts receiving a topic's live events; false if already followed.
    async fn add(&mut self, topic: Topic) -> Result<bool, ProtocolError> {
        if self.topics.contains(&topic) {
            return Ok(false);
        }
        if self.topics.len() >= MAX_TOPICS {
            return Err(ProtocolError::new(
                ErrorCode::TooLarge,
                format!("a connection follows at most {MAX_TOPICS} agents: unsubscribe first"),
            ));
        }
        let subscriber: Subscriber = self.inbox.clone();
        self.feed
            .subscribe(&self.caller, topic.clone(), self.session, subscriber)
            .await?;
        self.topics.insert(topic);
        Ok(true)
    }

    pub fn remove(&mut self, topic: &Topic) -> bool {
        self.feed.unsubscribe(topic, self.session);
        if let Topic::Agent(id) = topic {
            self.positions().delivered.remove(id);
        }
        self.topics.remove(topic)
    }

    /// Follows an agent from now on (no replay): live events after its current
    /// last seq are delivered.
    pub async fn follow(&mut self, agent_id: &str) -> Result<(), ProtocolError> {
        if !self.add(Topic::Agent(agent_id.to_string())).await? {
            return Ok(());
        }
        let bounds = self.feed.bounds(&self.caller, agent_id).await?;
        self.advance(agent_id, bounds.last_seq);
        Ok(())
    }

    /// Follows a contract address: live events of every agent acting on it.
    pub async fn follow_contract(&mut self, address: &str) -> Result<(), ProtocolError> {
        self.add(Topic::Contract(address.to_ascii_lowercase()))
            .await?;
        Ok(())
    }

    /// Follows an agent and first sends every stored event with seq > `since`.
    /// Live events arriving meanwhile wait in the inbox and are de-duplicated.
    pub async fn replay(
        &mut self,
        outbox: &Outbox,
        agent_id: &str,
        since: u64,
    ) -> Result<(), ProtocolError> {
        self.add(Topic::Agent(agent_id.to_string())).await?;
        let bounds = self.feed.bounds(&self.caller, agent_id).await?;
        if let Some(oldest) = bounds.truncated_after(since) {
            let error = ProtocolError::new(
                ErrorCode::HistoryTruncated,
                format!(
                    "events of agent {agent_id} after seq {since} are no longer kept; \
                     the oldest kept is {oldest}"
                ),
            );
            let extra = json!({"agent_id": agent_id, "oldest_seq": oldest});
            outbox.send(Frame::error_with(&error, None, extra));
        }
        // A replay never goes back before what this session already has.
        self.advance(agent_id, since);
        self.send_stored(outbox, agent_id, u64::MAX).await
    }

    /// Handles an event the hub could not send at once: sends it after any
    /// stored events it skipped over, then lets the hub's fast path go on.
    pub async fn deliver(&mut self, outbox: &Outbox, event: &Event) -> Result<(), ProtocolError> {
        let delivered = self.deliver_in_order(outbox, event).await;
        let mut positions = self.positions();
        positions.queued = positions.queued.saturating_sub(1);
        delivered
    }

    async fn deliver_in_order(
        &mut self,
        outbox: &Outbox,
        event: &Event,
    ) -> Result<(), ProtocolError> {
        // Checked on every event: an agent may have moved out of the caller's
        // scope since it was followed.
        if !Feed::visible(&self.caller, &event.agent_id, &event.contract) {
            return Ok(());
        }
        let last = match self.delivered(&event.agent_id) {
            Some(last) => last,
            // Queued before an unsubscribe.
            None if !self.follows(&Topic::Contract(event.contract.clone())) => return Ok(()),
            // First event of an agent seen through a contract topic: start here.
            None => {
                let start = event.seq.saturating_sub(1);
                self.advance(&event.agent_id, start);
                start
            }
        };
        if event.seq <= last {
            return Ok(());
        }
        if event.seq > last.saturating_add(1) {
            // Boxed: gap fills are rare, and every idle session's task would
            // otherwise be sized for a store read.
            Box::pin(self.send_stored(outbox, &event.agent_id, event.seq - 1)).await?;
        }
        let mut positions = self.positions();
        let last = positions
            .delivered
            .get_mut(&event.agent_id)
            .expect("inserted above");
        // Normally the next one; past a gap retention made unfillable, still send.
        if event.seq > *last {
            outbox.send_text(event.kind.as_str(), event.text.clone());
            *last = event.seq;
        }
        // An agent seen only through its contract is forgotten once removed:
        // the map follows the agents, not their history.
        if event.kind == EventKind::AgentRemoved
            && !self.topics.contains(&Topic::Agent(event.agent_id.clone()))
        {
            positions.delivered.remove(&event.agent_id);
        }
        Ok(())
    }

    /// Sends stored events after the agent's last delivered seq, up to `until`.
    async fn send_stored(
        &mut self,
        outbox: &Outbox,
        agent_id: &str,
        until: u64,
    ) -> Result<(), ProtocolError> {
        self.positions().reading = true;
        let sent = self.send_pages(outbox, agent_id, until).await;
        self.positions().reading = false;
        sent
    }

    async fn send_pages(
        &mut self,
        outbox: &Outbox,
        agent_id: &str,
        until: u64,
    ) -> Result<(), ProtocolError> {
        loop {
            let last = self.delivered(agent_id).unwrap_or(0);
            if last >= until {
                return Ok(());
            }
            let page = self
                .feed
                .events_since(&self.caller, agent_id, last, PAGE)
                .await?;
            let full = page.len() == PAGE as usize;
            for event in page {
                if event.seq > until {
                    return Ok(());
                }
                let kind = event.kind.as_str();
                if !outbox.send_paced(kind, Utf8Bytes::from(event.text)).await {
                    return Ok(());
                }
                self.advance(agent_id, event.seq);
            }
            if !full {
                return Ok(());
            }
        }
    }
}

/// Sends one reply through a session's inbox (see `Subscriptions::deferred`).
#[derive(Debug, Clone)]
pub struct Deferred {
    queue: Arc<Queue<Delivery>>,
    feed: Feed,
}

impl Deferred {
    /// Waits until the events committed before it are in the inbox, then for
    /// room; a session that is gone is not an error.
    pub async fn send(self, frame: Frame) {
        self.feed.settled().await;
        let reply = Delivery::Reply(Box::new(frame));
        let _ = self.queue.push(reply, 0, None).await;
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        self.inbox.queue.close();
        for topic in &self.topics {
            self.feed.unsubscribe(topic, self.session);
        }
    }
}
