//! What commands create or change, already validated by whoever parsed them
//! (the wire, REST): the store writes these as they are.

use serde_json::Value;

use super::{AgentStatus, FunctionType, NotificationType, ScheduleKind};

#[derive(Debug, Clone, PartialEq)]
pub struct NewContract {
    pub address: String,
    pub chain_id: i64,
    pub name: String,
    pub contract_type: String,
    pub abi: Value,
    pub deployed_at: Option<String>,
    pub owner_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAgent {
    pub contract_id: String,
    pub name: String,
    pub description: String,
    pub status: AgentStatus,
    pub gas_limit: String,
    pub max_priority_fee: String,
    pub owner: Option<String>,
    pub contract_state: Value,
    pub policy: Option<Value>,
    /// Most wei one action may send, as decimal text (0: none).
    pub max_value_wei: String,
    /// Most wei the agent's actions may send per UTC day (0: none).
    pub max_value_wei_per_day: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewFunction {
    pub function_name: String,
    /// Normalized: no spaces, canonical types.
    pub function_signature: String,
    pub function_type: FunctionType,
    pub is_enabled: bool,
    pub validation_rules: Value,
    pub abi: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    pub kind: ScheduleKind,
    pub is_active: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub notification_type: NotificationType,
    pub configuration: Value,
    pub is_enabled: bool,
}
