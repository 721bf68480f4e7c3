//! What a run did, call by call: the `results` and `logs` of `execute`
//! replies, of the run record and of notifications.

use serde::{Serialize, Serializer, ser::SerializeMap};
use serde_json::Value;

use super::executor::WriteOutcome;
use crate::model::{LogLevel, now};

/// What a run did, as `execute` answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunOutcome {
    pub run_id: String,
    pub ok: bool,
    pub message: String,
    pub results: Vec<ActionOutcome>,
    pub logs: Vec<LogLine>,
}

impl RunOutcome {
    /// A run that could not start.
    pub fn failed(run_id: &str, message: String) -> Self {
        Self {
            run_id: run_id.to_string(),
            ok: false,
            logs: vec![LogLine::new(LogLevel::Error, message.clone())],
            message,
            results: Vec::new(),
        }
    }
}

/// One line a run logged, as replies and the run record keep it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    pub timestamp: String,
    pub level: LogLevel,
    pub message: String,
}

impl LogLine {
    pub fn new(level: LogLevel, message: String) -> Self {
        Self {
            timestamp: now(),
            level,
            message,
        }
    }
}

/// One call of a run: `{function, params, result, success}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionOutcome {
    pub function: String,
    pub params: Value,
    pub result: CallResult,
    pub success: bool,
}

impl ActionOutcome {
    /// An outcome as it may leave the server: error texts redacted.
    pub fn new(function: &str, params: Value, result: CallResult) -> Self {
        let result = match result {
            CallResult::Failed(error) => {
                CallResult::Failed(crate::redact::clean(&error).into_owned())
            }
            other => other,
        };
        Self {
            function: function.to_string(),
            params,
            success: result.is_success(),
            result,
        }
    }
}

/// What became of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallResult {
    /// A read's decoded value.
    Read(Value),
    /// The call failed before it had a result (node down, bad arguments).
    Failed(String),
    /// The guard refused the action: nothing was sent.
    Rejected(String),
    /// A write was sent and has a receipt.
    Sent(WriteOutcome),
}

impl CallResult {
    fn is_success(&self) -> bool {
        match self {
            CallResult::Read(_) => true,
            CallResult::Failed(_) | CallResult::Rejected(_) => false,
            CallResult::Sent(outcome) => outcome.success,
        }
    }
}

/// The shapes clients read: the value, the error text, `{rejected}`, or the
/// transaction's `{tx_hash, status, gas_used, revert_reason}`.
impl Serialize for CallResult {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            CallResult::Read(value) => value.serialize(serializer),
            CallResult::Failed(error) => serializer.serialize_str(error),
            CallResult::Rejected(reason) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("rejected", reason)?;
                map.end()
            }
            CallResult::Sent(outcome) => outcome.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn results_keep_the_shapes_clients_read() {
        let rejected = ActionOutcome::new("f", json!([1]), CallResult::Rejected("no".into()));
        assert_eq!(
            serde_json::to_value(&rejected).unwrap(),
            json!({"function": "f", "params": [1], "result": {"rejected": "no"}, "success": false})
        );
        let sent = CallResult::Sent(WriteOutcome {
            tx_hash: "0x1".into(),
            success: false,
            gas_used: 21000,
            revert_reason: Some("why".into()),
            simulated: false,
        });
        assert_eq!(
            serde_json::to_value(&sent).unwrap(),
            json!({"tx_hash": "0x1", "status": "reverted", "gas_used": 21000, "revert_reason": "why"})
        );
        let read = ActionOutcome::new("g", json!([]), CallResult::Read(json!("5")));
        assert!(read.success);
    }
}
