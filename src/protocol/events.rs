//! Event frames: what subscribers of an agent receive when it changes. Each is
//! stored with the agent's next `seq` (added by the store) and replayed as is.

use serde_json::{Map, Value, json};

use crate::model::{AgentStatus, EventBody, EventKind, LogLevel};

/// An event before it is stored: its type and its frame without `seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFrame {
    pub kind: EventKind,
    pub frame: Map<String, Value>,
}

impl EventBody for EventFrame {
    fn kind(&self) -> EventKind {
        self.kind
    }

    /// The frame with its `seq`, as every subscriber and replay sends it.
    fn render(&self, seq: u64) -> String {
        let mut frame = self.frame.clone();
        frame.insert("seq".into(), Value::from(seq));
        Value::Object(frame).to_string()
    }
}

fn frame(kind: EventKind, top: Value, data: Value) -> EventFrame {
    let mut frame = match top {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    frame.insert("type".into(), Value::String(kind.as_str().into()));
    frame.insert("data".into(), data);
    EventFrame { kind, frame }
}

/// `agent_configured {status, agent_id, message}`: the wizard advances on it.
pub fn agent_configured(agent_id: &str) -> EventFrame {
    frame(
        EventKind::AgentConfigured,
        json!({"agent_id": agent_id}),
        json!({"status": "success", "agent_id": agent_id, "message": "Agent configured successfully"}),
    )
}

/// `agent_started`, `agent_stopped` or `agent_removed`, `{agent_id}`.
pub fn lifecycle(kind: EventKind, agent_id: &str) -> EventFrame {
    frame(
        kind,
        json!({"agent_id": agent_id}),
        json!({"agent_id": agent_id}),
    )
}

/// `agent_updated {agent_id, change, agent?}`: its configuration changed.
pub fn agent_updated(agent_id: &str, change: &str, detail: Value) -> EventFrame {
    frame(
        EventKind::AgentUpdated,
        json!({"agent_id": agent_id}),
        json!({"agent_id": agent_id, "change": change, change: detail}),
    )
}

/// What the execution view shows of an agent, read at the top level too.
#[derive(Debug, Clone, PartialEq)]
pub struct Status<'a> {
    pub agent_id: &'a str,
    pub status: AgentStatus,
    pub running: bool,
    pub last_executed: Option<&'a str>,
    pub next_execution: Option<&'a str>,
}

/// `status {running, lastExecuted, nextExecution, data:{agent_id, status, …}}`.
pub fn status(s: &Status) -> EventFrame {
    frame(
        EventKind::Status,
        json!({"agent_id": s.agent_id, "running": s.running,
               "lastExecuted": s.last_executed, "nextExecution": s.next_execution}),
        json!({"agent_id": s.agent_id, "status": s.status, "running": s.running,
               "lastExecuted": s.last_executed, "nextExecution": s.next_execution}),
    )
}

/// `log {message, logType, data:{agent_id, level, message, timestamp}}`.
pub fn log(agent_id: &str, level: LogLevel, message: &str, timestamp: &str) -> EventFrame {
    frame(
        EventKind::Log,
        json!({"agent_id": agent_id, "message": message, "logType": level}),
        json!({"agent_id": agent_id, "level": level, "message": message, "timestamp": timestamp}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_and_status_carry_their_fields_at_the_top_level_too() {
        let log = log("a", LogLevel::Error, "boom", "2024-01-01T00:00:00.000Z");
        assert_eq!(log.frame["message"], "boom");
        assert_eq!(log.frame["logType"], "error");
        assert_eq!(log.frame["data"]["level"], "error");
        let status = status(&Status {
            agent_id: "a",
            status: AgentStatus::Active,
            running: true,
            last_executed: None,
            next_execution: Some("2024-01-01T00:00:00.000Z"),
        });
        assert_eq!(status.frame["running"], true);
        assert_eq!(status.frame["nextExecution"], "2024-01-01T00:00:00.000Z");
        assert_eq!(status.frame["data"]["status"], "active");
        let rendered: Value = serde_json::from_str(&status.render(7)).unwrap();
        assert_eq!(rendered["seq"], 7);
        assert_eq!(rendered["type"], "status");
    }
}
