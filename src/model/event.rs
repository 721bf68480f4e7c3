//! Events: what subscribers of an agent receive when it changes.

use super::names;

names! {
    /// Every event type. Bounded, so usable as a metric label.
    pub enum EventKind {
        AgentConfigured = "agent_configured",
        AgentStarted = "agent_started",
        AgentStopped = "agent_stopped",
        AgentRemoved = "agent_removed",
        AgentUpdated = "agent_updated",
        Status = "status",
        Log = "log",
    }
}

/// An event before it is stored. The store gives it the agent's next seq and
/// keeps the text it renders with that seq, so that replays send exactly what
/// live subscribers got; how the text looks is the wire's business, not the
/// store's.
pub trait EventBody {
    fn kind(&self) -> EventKind;
    fn render(&self, seq: u64) -> String;
}

/// An event as stored and delivered: the exact frame text clients receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub agent_id: String,
    pub seq: u64,
    pub kind: EventKind,
    pub text: String,
}

/// What is known of an agent's stream: the last seq given out, and the oldest
/// seq still stored (older ones were removed by retention).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamBounds {
    pub last_seq: u64,
    pub oldest_seq: Option<u64>,
}

impl StreamBounds {
    /// The oldest seq kept, when events after `since` are no longer all kept.
    /// Saturating: a `since` of `u64::MAX` asks for nothing and loses nothing.
    pub fn truncated_after(&self, since: u64) -> Option<u64> {
        self.oldest_seq
            .filter(|oldest| since.saturating_add(1) < *oldest)
    }
}
