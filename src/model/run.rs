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
