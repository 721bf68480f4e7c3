//! The typed requests of PROTOCOL.md sections 2 and 3, parsed from a frame with
//! every spelling the existing frontend uses. Validation that needs no database
//! happens here; each error names the field.

use serde_json::{Map, Value};

use super::{
    ProtocolError,
    fields::{Fields, at_most, invalid, json_len, limits},
};
use crate::model::{
    AgentStatus, FunctionType, NewAgent, NewContract, NewFunction, NewNotification, NewSchedule,
    NotificationType, ScheduleKind, ScheduleType, abi, is_address,
};

/// A request about one agent: the agent it names (`None`: the path channel)
/// and what it asks.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRequest<T> {
    pub agent_id: Option<String>,
    pub body: T,
}

/// A request about one agent and nothing else.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRef {
    pub agent_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Execute {
    pub agent_id: Option<String>,
    /// `{functions, contract}` as the execution view sends them; informational.
    pub data: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subscribe {
    pub agent_id: Option<String>,
    pub since: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListRuns {
    pub agent_id: Option<String>,
    pub limit: Option<u64>,
    /// The last run of the previous page (its `next_cursor`).
    pub cursor: Option<String>,
}

/// The execution view's type-less frames: `{action, agentId, config?}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Start,
    Stop,
    UpdateConfig { description: String },
}

pub(super) fn create_contract(f: &Fields) -> Result<AgentRequest<NewContract>, ProtocolError> {
    let address = f
        .string(&["address", "contract_id", "contractId", "contract_address"])?
        .filter(|a| !a.trim().is_empty())
        .ok_or_else(|| invalid("address is required"))?;
    let address = address.trim().to_string();
    if !is_address(&address) {
        return Err(invalid(format!(
            "address `{address}` is not 0x followed by 40 hex digits"
        )));
    }
    let chain_id = f
        .u64(&["chain_id", "chainId"])?
        .ok_or_else(|| invalid("chain_id is required"))?;
    let chain_id = i64::try_from(chain_id)
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| invalid("chain_id must be a positive integer"))?;
    let abi = match f.get(&["abi"]) {
        None => Value::Array(Vec::new()),
        // The frontend sends the ABI as a JSON string of an array.
        Some(Value::String(text)) => serde_json::from_str::<Value>(text)
            .map_err(|e| invalid(format!("abi is not valid JSON: {e}")))?,
        Some(other) => other.clone(),
    };
    if !abi.is_array() {
        return Err(invalid(
            "abi must be a JSON array (or a string holding one)",
        ));
    }
    let deployed_at = f
        .string(&["deployed_at", "deployedAt"])?
        .filter(|d| !d.is_empty());
    if let Some(at) = &deployed_at
        && chrono::DateTime::parse_from_rfc3339(at).is_err()
    {
        return Err(invalid(format!(
            "deployed_at `{at}` is not an ISO-8601 date-time"
        )));
    }
    let owner_address = f
        .string(&["owner_address", "ownerAddress"])?
        .filter(|o| !o.is_empty());
    at_most("abi", json_len(&abi), limits::CONTRACT_ABI)?;
    let agent_id = f.agent_id()?;
    let body = NewContract {
        address,
        chain_id,
        name: f.string(&["name"])?.unwrap_or_default(),
        contract_type: f.string(&["type", "contract_type"])?.unwrap_or_default(),
        abi,
        deployed_at,
        owner_address,
    };
    at_most("name", body.name.len(), limits::NAME)?;
    at_most("type", body.contract_type.len(), limits::NAME)?;
    Ok(AgentRequest { agent_id, body })
}

pub(super) fn create_agent(f: &Fields) -> Result<AgentRequest<NewAgent>, ProtocolError> {
    let contract_id = f.required_string(&["contractId", "contract_id", "contractAddress"])?;
    let status = match f.string(&["status"])? {
        None => AgentStatus::Paused,
        Some(s) => AgentStatus::parse(&s)
            .ok_or_else(|| invalid(format!("status `{s}` is not \"active\" or \"paused\"")))?,
    };
    let gas_limit = decimal(f, &["gas_limit", "gasLimit"], "300000", false)?;
    let max_priority_fee = decimal(f, &["max_priority_fee", "maxPriorityFee"], "1.5", true)?;
    let max_value_wei = wei(f, &["max_value_wei", "maxValueWei"])?;
    let max_value_wei_per_day = wei(f, &["max_value_wei_per_day", "maxValueWeiPerDay"])?;
    let contract_state = f
        .object(&["contract_state", "contractState"])?
        .map(Value::Object)
        .unwrap_or_else(|| Value::Object(Map::new()));
    let policy = match f.get(&["policy"]) {
        None => None,
        Some(p @ Value::Object(_)) => Some(p.clone()),
        Some(_) => return Err(invalid("policy must be an object")),
    };
    let agent_id = f.agent_id()?;
    let body = NewAgent {
        contract_id: contract_id.trim().to_string(),
        name: f.string(&["name"])?.unwrap_or_default(),
        description: f.string(&["description"])?.unwrap_or_default(),
        status,
        gas_limit,
        max_priority_fee,
        owner: f.string(&["owner"])?.filter(|o| !o.is_empty()),
        contract_state,
        policy,
        max_value_wei,
        max_value_wei_per_day,
    };
    check_agent_sizes(&body)?;
    Ok(AgentRequest { agent_id, body })
}

fn check_agent_sizes(agent: &NewAgent) -> Result<(), ProtocolError> {
    at_most("name", agent.name.len(), limits::NAME)?;
    at_most("description", agent.description.len(), limits::DESCRIPTION)?;
    let owner = agent.owner.as_deref().map_or(0, str::len);
    at_most("owner", owner, limits::NAME)?;
    at_most(
        "contract_state",
        json_len(&agent.contract_state),
        limits::JSON,
    )?;
    let policy = agent.policy.as_ref().map_or(0, json_len);
    at_most("policy", policy, limits::JSON)
}

/// An amount of wei: a whole number that fits in 256 bits, 0 when left out.
fn wei(f: &Fields, names: &[&str]) -> Result<String, ProtocolError> {
    let text = decimal(f, names, "0", false)?;
    let value: alloy::primitives::U256 = text
        .parse()
        .map_err(|_| invalid(format!("{} `{text}` is too large", names[0])))?;
    Ok(value.to_string())
}

/// A number sent as a string (or a JSON number): digits, with a fraction when
/// `fraction` is allowed.
fn decimal(
    f: &Fields,
    names: &[&str],
    default: &str,
    fraction: bool,
) -> Result<String, ProtocolError> {
    let text = match f.get(names) {
        None => return Ok(default.to_string()),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(default.to_string()),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(invalid(format!(
                "{} must be a number in a string",
                names[0]
            )));
        }
    };
    // Gas is a count of units and fees are gwei, exact to the wei: more digits
    // than that cannot be used (and are not echoed back).
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    if int.len() > 20 || frac.len() > 9 {
        return Err(invalid(format!(
            "{} has too many digits (at most 20, and 9 after the point)",
            names[0]
        )));
    }
    let valid = match text.split_once('.') {
        None => !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()),
        Some((int, frac)) => {
            fraction
                && !int.is_empty()
                && !frac.is_empty()
                && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        }
    };
    if !valid {
        let what = if fraction {
            "a decimal number"
        } else {
            "a whole number"
        };
        return Err(invalid(format!("{} `{text}` is not {what}", names[0])));
    }
    if !fraction && text.parse::<u64>().is_err() {
        return Err(invalid(format!("{} must fit in 64 bits", names[0])));
    }
    Ok(text)
}

pub(super) fn create_function(f: &Fields) -> Result<AgentRequest<NewFunction>, ProtocolError> {
    let function_name = f.required_string(&["function_name", "functionName"])?;
    let signature = f.required_string(&["function_signature", "functionSignature"])?;
    let type_text = f.required_string(&["function_type", "functionType"])?;
    let function_type = FunctionType::parse(&type_text).ok_or_else(|| {
        invalid(format!(
            "function_type `{type_text}` is not \"read\", \"write\" or \"payable\""
        ))
    })?;
    let abi = match f.get(&["abi"]) {
        None => None,
        Some(Value::String(text)) if text.trim().is_empty() => None,
        // Tolerate the contract's way (a JSON string) here too.
        Some(Value::String(text)) => Some(
            serde_json::from_str::<Value>(text)
                .map_err(|e| invalid(format!("abi is not valid JSON: {e}")))?,
        ),
        Some(other) => Some(other.clone()),
    };
    let function_signature =
        abi::check_function(function_name.trim(), &signature, abi.as_ref()).map_err(invalid)?;
    let validation_rules = f
        .object(&["validation_rules", "validationRules"])?
        .unwrap_or_default();
    for (input, rules) in &validation_rules {
        if !rules.is_object() {
            return Err(invalid(format!(
                "validation_rules.{input} must be an object like {{\"min\": 0, \"max\": 10}}"
            )));
        }
    }
    let agent_id = f.agent_id()?;
    let body = NewFunction {
        function_name: function_name.trim().to_string(),
        function_signature,
        function_type,
        is_enabled: f.bool(&["is_enabled", "isEnabled"], true)?,
        validation_rules: Value::Object(validation_rules),
        abi,
    };
    at_most("function_name", body.function_name.len(), limits::NAME)?;
    at_most(
        "validation_rules",
        json_len(&body.validation_rules),
        limits::JSON,
    )?;
    at_most("abi", body.abi.as_ref().map_or(0, json_len), limits::JSON)?;
    Ok(AgentRequest { agent_id, body })
}

pub(super) fn create_schedule(f: &Fields) -> Result<AgentRequest<NewSchedule>, ProtocolError> {
    let kind_text = f.required_string(&["schedule_type", "scheduleType"])?;
    let kind = match ScheduleType::parse(&kind_text) {
        Some(ScheduleType::Cron) => {
            let expression = f
                .string(&["cron_expression", "cronExpression"])?
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .ok_or_else(|| invalid("cron_expression is required for a cron schedule"))?;
            check_cron(&expression)?;
            ScheduleKind::Cron(expression)
        }
        Some(ScheduleType::Interval) => {
            let secs = f
                .u64(&["interval_seconds", "intervalSeconds"])?
                .ok_or_else(|| invalid("interval_seconds is required for an interval schedule"))?;
            if secs == 0 || secs > 366 * 24 * 3600 {
                return Err(invalid("interval_seconds must be between 1 and 31622400"));
            }
            ScheduleKind::Interval(secs)
        }
        None => {
            return Err(invalid(format!(
                "schedule_type `{kind_text}` is not \"cron\" or \"interval\""
            )));
        }
    };
    Ok(AgentRequest {
        agent_id: f.agent_id()?,
        body: NewSchedule {
            kind,
            is_active: f.bool(&["is_active", "isActive"], true)?,
        },
    })
}

/// A 5-field cron expression (minute hour day-of-month month day-of-week).
pub fn check_cron(expression: &str) -> Result<croner::Cron, ProtocolError> {
    if expression.split_whitespace().count() != 5 {
        return Err(invalid(format!(
            "cron_expression `{expression}` must have 5 fields: minute hour day month weekday"
        )));
    }
    expression.parse::<croner::Cron>().map_err(|e| {
        invalid(format!(
            "cron_expression `{expression}` does not parse: {e}"
        ))
    })
}

pub(super) fn create_notification(
    f: &Fields,
) -> Result<AgentRequest<NewNotification>, ProtocolError> {
    let type_text = f.required_string(&["notification_type", "notificationType"])?;
    let notification_type = NotificationType::parse(&type_text).ok_or_else(|| {
        invalid(format!(
            "notification_type `{type_text}` is not email, discord, telegram or webhook"
        ))
    })?;
    let configuration = f
        .object(&["configuration", "config"])?
        .ok_or_else(|| invalid("configuration is required"))?;
    let size = json_len(&Value::Object(configuration.clone()));
    at_most("configuration", size, limits::SMALL_JSON)?;
    let key = notification_type.required_key();
    let value = configuration
        .get(key)
        .filter(|v| !v.is_null() && v.as_str() != Some(""))
        .ok_or_else(|| invalid(format!("configuration.{key} is required for {type_text}")))?;
    let text = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) if notification_type == NotificationType::Telegram => n.to_string(),
        _ => return Err(invalid(format!("configuration.{key} must be a string"))),
    };
    let valid = match notification_type {
        NotificationType::Email => {
            let parts: Vec<&str> = text.split('@').collect();
            parts.len() == 2 && !parts[0].is_empty() && parts[1].contains('.')
        }
        NotificationType::Discord | NotificationType::Webhook => {
            text.starts_with("https://") || text.starts_with("http://")
        }
        NotificationType::Telegram => !text.is_empty(),
    };
    if !valid {
        return Err(invalid(format!(
            "configuration.{key} `{text}` is not valid"
        )));
    }
    Ok(AgentRequest {
        agent_id: f.agent_id()?,
        body: NewNotification {
            notification_type,
            configuration: Value::Object(configuration),
            is_enabled: f.bool(&["is_enabled", "isEnabled"], true)?,
        },
    })
}

pub(super) fn agent_ref(f: &Fields) -> Result<AgentRef, ProtocolError> {
    Ok(AgentRef {
        agent_id: f.agent_id()?,
    })
}

pub(super) fn subscribe(f: &Fields) -> Result<Subscribe, ProtocolError> {
    Ok(Subscribe {
        agent_id: f.agent_id()?,
        since: f.u64(&["since"])?,
    })
}

pub(super) fn list_runs(f: &Fields) -> Result<ListRuns, ProtocolError> {
    let cursor = f.string(&["cursor"])?.filter(|c| !c.is_empty());
    at_most(
        "cursor",
        cursor.as_deref().map_or(0, str::len),
        limits::NAME,
    )?;
    Ok(ListRuns {
        agent_id: f.agent_id()?,
        limit: f.u64(&["limit"])?,
        cursor,
    })
}

/// `{action, agentId, config}` frames live at the top level.
pub(super) fn action(top: &Map<String, Value>) -> Result<Action, ProtocolError> {
    match top.get("action").and_then(Value::as_str) {
        Some("start") => Ok(Action::Start),
        Some("stop") => Ok(Action::Stop),
        Some("updateConfig") => {
            let description = top
                .get("config")
                .and_then(|c| c.get("description"))
                .ok_or_else(|| invalid("config.description is required"))?;
            match description {
                Value::String(d) => {
                    at_most("config.description", d.len(), limits::DESCRIPTION)?;
                    Ok(Action::UpdateConfig {
                        description: d.clone(),
                    })
                }
                _ => Err(invalid("config.description must be a string")),
            }
        }
        Some(other) => Err(invalid(format!(
            "action `{other}` is not start, stop or updateConfig"
        ))),
        None => Err(invalid("action must be a string")),
    }
}
