//! What an agent is made of, and the JSON shapes the frontend reads. The store
//! maps rows to these.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::names;

names! {
    /// Whether an agent runs on its schedule.
    pub enum AgentStatus {
        Active = "active",
        Paused = "paused" | "stopped" | "inactive",
    }
}

names! {
    /// What calling a function does: observe, or change state (with or without value).
    pub enum FunctionType {
        Read = "read",
        Write = "write",
        Payable = "payable",
    }
}

names! {
    /// Where a notification goes.
    pub enum NotificationType {
        Email = "email",
        Discord = "discord",
        Telegram = "telegram",
        Webhook = "webhook",
    }
}

impl NotificationType {
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

names! {
    /// How a schedule is written.
    pub enum ScheduleType {
        Cron = "cron",
        Interval = "interval",
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
    pub fn schedule_type(&self) -> ScheduleType {
        match self {
            ScheduleKind::Cron(_) => ScheduleType::Cron,
            ScheduleKind::Interval(_) => ScheduleType::Interval,
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
    /// Most wei one action may send (0: none).
    pub max_value_wei: String,
    /// Most wei the agent's actions may send per UTC day (0: none).
    pub max_value_wei_per_day: String,
    /// Set by `configure_agent`: the wizard finished.
    pub configured: bool,
    pub last_executed: Option<String>,
    #[serde(rename = "created_at")]
    pub created_at: String,
    #[serde(rename = "updated_at")]
    pub updated_at: String,
    /// Who created it (a token's or a JWT's subject); only they may replace it.
    pub created_by: Option<String>,
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
    pub schedule_type: ScheduleType,
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
            (Some(cron), _) if self.schedule_type == ScheduleType::Cron => {
                ScheduleKind::Cron(cron.clone())
            }
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

/// Everything about one agent, as `get_agent` and the REST API return it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgentDetails {
    pub agent: Agent,
    pub functions: Vec<Function>,
    pub schedule: Option<Schedule>,
    pub notifications: Vec<Notification>,
}

/// What an agent is doing now, as `get_agent` and the REST API report it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgentState {
    pub status: AgentStatus,
    pub running: bool,
    #[serde(rename = "lastExecuted")]
    pub last_executed: Option<String>,
    #[serde(rename = "nextExecution")]
    pub next_execution: Option<String>,
    pub configured: bool,
    /// The seq of the agent's latest event.
    pub last_seq: u64,
}

impl Agent {
    /// Whether it runs on its schedule.
    pub fn is_running(&self) -> bool {
        self.status == AgentStatus::Active
    }

    /// When its schedule fires next, if it is running and the schedule active.
    pub fn next_execution<'a>(&self, schedule: Option<&'a Schedule>) -> Option<&'a str> {
        schedule
            .filter(|s| s.is_active && self.is_running())
            .and_then(|s| s.next_execution.as_deref())
    }
}

/// What every subscriber of an agent may see of one part of it: events fan
/// out to viewers too.
pub trait Published: Serialize {
    fn published(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Published for Function {}
impl Published for Schedule {}

/// A notification's configuration holds addresses and webhook URLs (whose path
/// is often a token): published, and shown to viewers, with its values masked.
impl Published for Notification {
    fn published(&self) -> Value {
        serde_json::to_value(self.masked()).unwrap_or(Value::Null)
    }
}

impl Notification {
    /// The notification with every configuration value replaced by `***`.
    pub fn masked(&self) -> Notification {
        let configuration = match &self.configuration {
            Value::Object(map) => Value::Object(
                map.keys()
                    .map(|k| (k.clone(), Value::String("***".into())))
                    .collect(),
            ),
            _ => Value::Null,
        };
        Notification {
            configuration,
            ..self.clone()
        }
    }
}
