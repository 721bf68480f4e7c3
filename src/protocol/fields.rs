//! Reading request fields the way the frontend spells them: several accepted
//! names per field (snake_case and camelCase), in `data` or at the top level,
//! with errors that name the field.

use serde_json::{Map, Value};

use super::{ErrorCode, ProtocolError};

pub(crate) fn invalid(message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidField, message)
}

/// The fields of one request: its `data` object, then the frame's top level.
pub(crate) struct Fields<'a> {
    data: &'a Map<String, Value>,
    top: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    pub fn new(data: &'a Map<String, Value>, top: &'a Map<String, Value>) -> Self {
        Self { data, top }
    }

    /// The first of `names` present and not null in `data`.
    pub fn get(&self, names: &[&str]) -> Option<&'a Value> {
        names
            .iter()
            .find_map(|n| self.data.get(*n).filter(|v| !v.is_null()))
    }

    /// The agent a request is about (PROTOCOL.md §1): `data.agent_id`, then
    /// `data.agentId`, then the top-level `agent_id`, then `agentId`. `None` means
    /// the path channel.
    pub fn agent_id(&self) -> Result<Option<String>, ProtocolError> {
        let value = self
            .data
            .get("agent_id")
            .filter(|v| !v.is_null())
            .or_else(|| self.data.get("agentId").filter(|v| !v.is_null()))
            .or_else(|| self.top.get("agent_id").filter(|v| !v.is_null()))
            .or_else(|| self.top.get("agentId").filter(|v| !v.is_null()));
        match value {
            None => Ok(None),
            Some(Value::String(id)) if id.trim().is_empty() => Ok(None),
            Some(Value::String(id)) => {
                if id.len() > 200 {
                    return Err(invalid("agent_id is longer than 200 characters"));
                }
                Ok(Some(id.trim().to_string()))
            }
            Some(_) => Err(invalid("agent_id must be a string")),
        }
    }

    pub fn string(&self, names: &[&str]) -> Result<Option<String>, ProtocolError> {
        match self.get(names) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("{} must be a string", names[0]))),
        }
    }

    pub fn required_string(&self, names: &[&str]) -> Result<String, ProtocolError> {
        match self.string(names)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(invalid(format!("{} is required", names[0]))),
        }
    }

    pub fn bool(&self, names: &[&str], default: bool) -> Result<bool, ProtocolError> {
        match self.get(names) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s == "true" => Ok(true),
            Some(Value::String(s)) if s == "false" => Ok(false),
            Some(_) => Err(invalid(format!("{} must be true or false", names[0]))),
        }
    }

    /// A non-negative integer, as a JSON number or a string of digits.
    pub fn u64(&self, names: &[&str]) -> Result<Option<u64>, ProtocolError> {
        let bad = || invalid(format!("{} must be a non-negative integer", names[0]));
        match self.get(names) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    pub fn object(&self, names: &[&str]) -> Result<Option<Map<String, Value>>, ProtocolError> {
        match self.get(names) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o.clone())),
            Some(_) => Err(invalid(format!("{} must be an object", names[0]))),
        }
    }
}

/// Bounds on what a client may store: each field has a size that fits its use.
pub(crate) mod limits {
    pub const NAME: usize = 200;
    pub const DESCRIPTION: usize = 10_000;
    pub const SMALL_JSON: usize = 4 * 1024;
    pub const JSON: usize = 64 * 1024;
    pub const CONTRACT_ABI: usize = 512 * 1024;
}

/// `Err` when `field` is longer than `max` bytes (as text, JSON encoded).
pub(crate) fn at_most(field: &str, len: usize, max: usize) -> Result<(), ProtocolError> {
    if len > max {
        return Err(ProtocolError::new(
            ErrorCode::TooLarge,
            format!("{field} is longer than {max} bytes"),
        ));
    }
    Ok(())
}

/// The size of a JSON value as text.
pub(crate) fn json_len(value: &Value) -> usize {
    value.to_string().len()
}
