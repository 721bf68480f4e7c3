//! The domain: what an agent is made of, and the JSON shapes the frontend reads.
//! Free of I/O; the store maps rows to these, the protocol builds them from input.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Whether an agent runs on its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    Active,
    Paused,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Paused => "paused",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(AgentStatus::Active),
            "paused" | "stopped" | "inactive" => Some(AgentStatus::Paused),
            _ => None,
        }
    }
}

/// What calling a function does: observe, or change state (with or without value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FunctionType {
    Read,
    Write,
    Payable,
}

impl FunctionType {
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionType::Read => "read",
            FunctionType::Write => "write",
            FunctionType::Payable => "payable",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "read" => Some(FunctionType::Read),
            "write" => Some(FunctionType::Write),
            "payable" => Some(FunctionType::Payable),
            _ => None,
        }
    }
}

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationType {
    Email,
    Discord,
    Telegram,
    Webhook,
}

impl NotificationType {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationType::Email => "email",
            NotificationType::Discord => "discord",
            NotificationType::Telegram => "telegram",
            NotificationType::Webhook => "webhook",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "email" => Some(NotificationType::Email),
            "discord" => Some(NotificationType::Discord),
            "telegram" => Some(NotificationType::Telegram),
            "webhook" => Some(NotificationType::Webhook),
            _ => None,
        }
    }

    /// The configuration key that must be present, as the frontend spells it.
    pub fn required_key(self) -> &'static str {
        match self {
            NotificationType::Email => "emailAddress",
            NotificationType::Discord => "webhookUrl",
            NotificationType::Telegram => "chatId",
            NotificationType::Webhook => "url",
        }
    }
}

/// When an agent runs by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleKind {
    /// A 5-field cron expression, evaluated in UTC.
    Cron(String),
    /// Every this many seconds.
    Interval(u64),
}

impl ScheduleKind {
    pub fn type_str(&self) -> &'static str {
        match self {
            ScheduleKind::Cron(_) => "cron",
            ScheduleKind::Interval(_) => "interval",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Contract {
    pub contract_id: String,
    pub address: String,
    pub chain_id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub contract_type: String,
    #[schema(value_type = Object)]
    pub abi: Value,
    pub deployed_at: Option<String>,
    pub owner_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub agent_id: String,
    pub contract_id: String,
    pub name: String,
    pub description: String,
    pub status: AgentStatus,
    pub gas_limit: String,
    pub max_priority_fee: String,
    pub owner: Option<String>,
    #[schema(value_type = Object)]
    pub contract_state: Value,
    #[schema(value_type = Option<Object>)]
    pub policy: Option<Value>,
    /// Set by `configure_agent`: the wizard finished.
    pub configured: bool,
    pub last_executed: Option<String>,
    #[serde(rename = "created_at")]
    pub created_at: String,
    #[serde(rename = "updated_at")]
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Function {
    pub function_id: String,
    pub agent_id: String,
    pub function_name: String,
    pub function_signature: String,
    pub function_type: FunctionType,
    pub is_enabled: bool,
    #[schema(value_type = Object)]
    pub validation_rules: Value,
    #[schema(value_type = Option<Object>)]
    pub abi: Option<Value>,
    #[serde(rename = "created_at")]
    pub created_at: String,
    #[serde(rename = "updated_at")]
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub schedule_id: String,
    pub agent_id: String,
    pub schedule_type: String,
    pub cron_expression: Option<String>,
    pub interval_seconds: Option<u64>,
    pub is_active: bool,
    pub next_execution: Option<String>,
    #[serde(rename = "created_at")]
    pub created_at: String,
    #[serde(rename = "updated_at")]
    pub updated_at: String,
}

impl Schedule {
    pub fn kind(&self) -> ScheduleKind {
        match (&self.cron_expression, self.interval_seconds) {
            (Some(cron), _) if self.schedule_type == "cron" => ScheduleKind::Cron(cron.clone()),
            (_, Some(secs)) => ScheduleKind::Interval(secs),
            (Some(cron), None) => ScheduleKind::Cron(cron.clone()),
            (None, None) => ScheduleKind::Interval(60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub notification_id: String,
    pub agent_id: String,
    pub notification_type: NotificationType,
    #[schema(value_type = Object)]
    pub configuration: Value,
    pub is_enabled: bool,
    #[serde(rename = "created_at")]
    pub created_at: String,
    #[serde(rename = "updated_at")]
    pub updated_at: String,
}

/// One recorded run of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Run {
    pub run_id: String,
    pub agent_id: String,
    pub trigger: String,
    pub status: String,
    #[schema(value_type = Option<Object>)]
    pub request: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
}

/// Everything about one agent, as `get_agent` and the REST API return it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgentDetails {
    pub agent: Agent,
    pub functions: Vec<Function>,
    pub schedule: Option<Schedule>,
    pub notifications: Vec<Notification>,
}

/// The current time as the store and the wire write it: RFC 3339, UTC, millis.
pub fn now() -> String {
    format_time(chrono::Utc::now())
}

pub fn format_time(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `0x` followed by 40 hex digits.
pub fn is_address(value: &str) -> bool {
    value.len() == 42
        && value.starts_with("0x")
        && value[2..].bytes().all(|b| b.is_ascii_hexdigit())
}
