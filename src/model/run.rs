//! Runs of agents and the lines they log.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::names;

names! {
    /// Where a run is in its life. `Running` is the only state a run leaves.
    pub enum RunStatus {
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        /// The agent was stopped (or the server shut down) during the run.
        Cancelled = "cancelled",
        /// A run of the agent was in progress: this trigger did nothing.
        Skipped = "skipped",
        /// Found `running` after a restart: the process died during it.
        Interrupted = "interrupted",
    }
}

names! {
    /// What started a run.
    pub enum Trigger {
        /// `execute`, over the WebSocket or REST.
        Manual = "manual",
        /// The agent's own schedule.
        Schedule = "schedule",
    }
}

names! {
    /// How much a log line of a run matters (`logType` on the wire).
    pub enum LogLevel {
        Info = "info",
        Warning = "warning",
        Error = "error",
    }
}

/// One recorded run of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Run {
    pub run_id: String,
    pub agent_id: String,
    pub trigger: Trigger,
    pub status: RunStatus,
    #[schema(value_type = Option<Object>)]
    pub request: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
}

/// The most of a run's request kept in its record. A client may send up to
/// 64 KiB with every execute; keeping all of it in every run would let one
/// busy client fill the database, and nothing reads it back but a person.
pub const KEPT_REQUEST_BYTES: usize = 4 * 1024;

/// The request as it is recorded: whole when it is small, otherwise a
/// preview of its JSON text with its full size, marked `trimmed`.
pub fn trimmed_request(request: Option<&Value>) -> Option<Value> {
    let request = request?;
    let text = request.to_string();
    if text.len() <= KEPT_REQUEST_BYTES {
        return Some(request.clone());
    }
    let mut end = KEPT_REQUEST_BYTES / 2;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(serde_json::json!({
        "trimmed": true,
        "bytes": text.len(),
        "preview": &text[..end],
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_small_request_is_kept_whole() {
        let request = json!({"amount": "1", "to": "0xabc"});
        assert_eq!(trimmed_request(Some(&request)), Some(request));
        assert_eq!(trimmed_request(None), None);
    }

    #[test]
    fn a_large_request_is_kept_as_a_bounded_preview() {
        let request = json!({"note": "é".repeat(20_000)});
        let kept = trimmed_request(Some(&request)).unwrap();
        assert_eq!(kept["trimmed"], json!(true));
        assert_eq!(kept["bytes"], json!(request.to_string().len()));
        let preview = kept["preview"].as_str().unwrap();
        assert!(preview.len() <= KEPT_REQUEST_BYTES / 2);
        assert!(request.to_string().starts_with(preview));
        assert!(kept.to_string().len() < KEPT_REQUEST_BYTES);
    }
}
