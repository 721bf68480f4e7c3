//! Event frames: what subscribers of an agent receive when it changes. Each is
//! stored with the agent's next `seq` (added by the store) and replayed as is.

use serde_json::{Map, Value, json};

/// An event before it is stored: its type and its frame without `seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFrame {
    pub kind: &'static str,
    pub frame: Map<String, Value>,
}

/// Every event type, so that a stored type maps back to a bounded metric label.
pub const EVENT_TYPES: &[&str] = &[
    "agent_configured",
    "agent_started",
    "agent_stopped",
    "agent_removed",
    "agent_updated",
    "status",
    "log",
];

pub fn label(kind: &str) -> &'static str {
    EVENT_TYPES
        .iter()
        .copied()
        .find(|k| *k == kind)
        .unwrap_or("event")
}

fn frame(kind: &'static str, top: Value, data: Value) -> EventFrame {
    let mut frame = match top {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    frame.insert("type".into(), Value::String(kind.into()));
    frame.insert("data".into(), data);
    EventFrame { kind, frame }
}

/// `agent_configured {status, agent_id, message}`: the wizard advances on it.
pub fn agent_configured(agent_id: &str) -> EventFrame {
    frame(
        "agent_configured",
        json!({"agent_id": agent_id}),
        json!({"status": "success", "agent_id": agent_id, "message": "Agent configured successfully"}),
    )
}

/// `agent_started`, `agent_stopped` or `agent_removed`, `{agent_id}`.
pub fn lifecycle(kind: &'static str, agent_id: &str) -> EventFrame {
    frame(
        kind,
        json!({"agent_id": agent_id}),
        json!({"agent_id": agent_id}),
    )
}

/// `agent_updated {agent_id, change, agent?}`: its configuration changed.
pub fn agent_updated(agent_id: &str, change: &str, detail: Value) -> EventFrame {
    frame(
        "agent_updated",
        json!({"agent_id": agent_id}),
        json!({"agent_id": agent_id, "change": change, change: detail}),
    )
}

/// What the execution view shows of an agent, read at the top level too.
#[derive(Debug, Clone, PartialEq)]
pub struct Status<'a> {
    pub agent_id: &'a str,
    pub status: &'a str,
    pub running: bool,
    pub last_executed: Option<&'a str>,
    pub next_execution: Option<&'a str>,
}

/// `status {running, lastExecuted, nextExecution, data:{agent_id, status, …}}`.
pub fn status(s: &Status) -> EventFrame {
    frame(
        "status",
        json!({"agent_id": s.agent_id, "running": s.running,
               "lastExecuted": s.last_executed, "nextExecution": s.next_execution}),
        json!({"agent_id": s.agent_id, "status": s.status, "running": s.running,
               "lastExecuted": s.last_executed, "nextExecution": s.next_execution}),
    )
}

/// `log {message, logType, data:{agent_id, level, message, timestamp}}`.
pub fn log(agent_id: &str, level: &str, message: &str, timestamp: &str) -> EventFrame {
    frame(
        "log",
        json!({"agent_id": agent_id, "message": message, "logType": level}),
        json!({"agent_id": agent_id, "level": level, "message": message, "timestamp": timestamp}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_and_status_carry_their_fields_at_the_top_level_too() {
        let log = log("a", "error", "boom", "2024-01-01T00:00:00.000Z");
        assert_eq!(log.frame["message"], "boom");
        assert_eq!(log.frame["logType"], "error");
        assert_eq!(log.frame["data"]["level"], "error");
        let status = status(&Status {
            agent_id: "a",
            status: "active",
            running: true,
            last_executed: None,
            next_execution: Some("2024-01-01T00:00:00.000Z"),
        });
        assert_eq!(status.frame["running"], true);
        assert_eq!(status.frame["nextExecution"], "2024-01-01T00:00:00.000Z");
        assert_eq!(status.frame["data"]["status"], "active");
        assert_eq!(label("status"), "status");
        assert_eq!(label("whatever"), "event");
    }
}
