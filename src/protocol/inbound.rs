//! Parsing of client frames: `{"type": string, "data": object, "id"?: scalar, ...}`.

use serde_json::{Map, Value};

use super::{
    ErrorCode, ProtocolError,
    fields::{Fields, invalid},
    requests::{
        self, Action, AgentRef, CreateAgent, CreateContract, CreateFunction, CreateNotification,
        CreateSchedule, Execute, ListRuns, Subscribe,
    },
};

/// One parsed client frame. `request` is `Err` when the frame is well-formed JSON
/// but cannot be served; `id` and `kind` are still known then, so the error reply
/// echoes the id and names the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub id: Option<Value>,
    /// The message type as sent (`"action"` for the type-less action frames,
    /// `"invalid_json"` / `"unknown"` when there is none to name). Bounded: usable
    /// as a metric label.
    pub kind: &'static str,
    pub request: Result<Request, ProtocolError>,
}

/// A request the server knows how to handle, one variant per message type.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `ping` → `pong` with the same `data`.
    Ping {
        data: Value,
    },
    CreateContract(CreateContract),
    CreateAgent(CreateAgent),
    CreateFunction(CreateFunction),
    CreateSchedule(CreateSchedule),
    CreateNotification(CreateNotification),
    ConfigureAgent(AgentRef),
    /// `websocket_execution` or its alias `execute`.
    Execute(Execute),
    StartAgent(AgentRef),
    StopAgent(AgentRef),
    RemoveAgent(AgentRef),
    /// A type-less `{action, agentId}` frame of the execution view.
    Action {
        action: Action,
        agent_id: Option<String>,
    },
    Subscribe(Subscribe),
    Unsubscribe(AgentRef),
    GetAgent(AgentRef),
    ListRuns(ListRuns),
}

/// Every message type with a typed reply, as a static string.
const TYPES: &[&str] = &[
    "ping",
    "create_contract",
    "create_agent",
    "create_function",
    "create_schedule",
    "create_notification",
    "configure_agent",
    "websocket_execution",
    "execute",
    "start_agent",
    "stop_agent",
    "remove_agent",
    "subscribe",
    "unsubscribe",
    "get_agent",
    "list_runs",
];

/// The reply type of a request type: `<type>_response`, except that both
/// spellings of execute answer `execute_response`.
pub fn response_type(kind: &str) -> &'static str {
    match kind {
        "create_contract" => "create_contract_response",
        "create_agent" => "create_agent_response",
        "create_function" => "create_function_response",
        "create_schedule" => "create_schedule_response",
        "create_notification" => "create_notification_response",
        "configure_agent" => "configure_agent_response",
        "websocket_execution" | "execute" => "execute_response",
        "start_agent" => "start_agent_response",
        "stop_agent" => "stop_agent_response",
        "remove_agent" => "remove_agent_response",
        "subscribe" => "subscribe_response",
        "unsubscribe" => "unsubscribe_response",
        "get_agent" => "get_agent_response",
        "list_runs" => "list_runs_response",
        _ => "error",
    }
}

impl Inbound {
    /// Parses one text frame. Never fails: every malformed frame becomes an
    /// `Err` request with the error the client should read.
    pub fn parse(text: &str) -> Inbound {
        let rejected = |kind, error| Inbound {
            id: None,
            kind,
            request: Err(error),
        };
        let object = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => object,
            // Valid JSON that is not an object is as unusable as invalid JSON.
            Ok(_) | Err(_) => {
                return rejected(
                    "invalid_json",
                    ProtocolError::new(ErrorCode::InvalidJson, "Invalid JSON message"),
                );
            }
        };
        let id = match object.get("id") {
            None | Some(Value::Null) => None,
            Some(Value::Object(_) | Value::Array(_)) => {
                return rejected(
                    "invalid",
                    ProtocolError::new(
                        ErrorCode::InvalidField,
                        "id must be a string, number or boolean",
                    ),
                );
            }
            Some(scalar) => Some(scalar.clone()),
        };
        let kind = match object.get("type") {
            Some(Value::String(kind)) => TYPES.iter().copied().find(|t| *t == kind),
            None | Some(Value::Null) if object.contains_key("action") => Some("action"),
            _ => None,
        };
        let Some(kind) = kind else {
            return Inbound {
                id,
                kind: "unknown",
                request: Err(unknown_type(object.get("type"))),
            };
        };
        Inbound {
            id,
            kind,
            request: Request::parse(kind, &object),
        }
    }
}

impl Request {
    /// Parses a REST body as the `data` of a request of type `kind`, with the
    /// same fields and validation as over the WebSocket.
    pub fn from_body(
        kind: &'static str,
        body: Map<String, Value>,
    ) -> Result<Request, ProtocolError> {
        let mut top = Map::new();
        top.insert("data".into(), Value::Object(body));
        Request::parse(kind, &top)
    }

    fn parse(kind: &'static str, top: &Map<String, Value>) -> Result<Request, ProtocolError> {
        let empty = Map::new();
        let data = match top.get("data") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(data)) => data,
            Some(_) => return Err(invalid("data must be an object")),
        };
        let f = Fields::new(data, top);
        Ok(match kind {
            "ping" => Request::Ping {
                data: Value::Object(data.clone()),
            },
            "create_contract" => Request::CreateContract(requests::create_contract(&f)?),
            "create_agent" => Request::CreateAgent(requests::create_agent(&f)?),
            "create_function" => Request::CreateFunction(requests::create_function(&f)?),
            "create_schedule" => Request::CreateSchedule(requests::create_schedule(&f)?),
            "create_notification" => {
                Request::CreateNotification(requests::create_notification(&f)?)
            }
            "configure_agent" => Request::ConfigureAgent(requests::agent_ref(&f)?),
            "websocket_execution" | "execute" => Request::Execute(Execute {
                agent_id: f.agent_id()?,
                data: Value::Object(data.clone()),
            }),
            "start_agent" => Request::StartAgent(requests::agent_ref(&f)?),
            "stop_agent" => Request::StopAgent(requests::agent_ref(&f)?),
            "remove_agent" => Request::RemoveAgent(requests::agent_ref(&f)?),
            "subscribe" => Request::Subscribe(requests::subscribe(&f)?),
            "unsubscribe" => Request::Unsubscribe(requests::agent_ref(&f)?),
            "get_agent" => Request::GetAgent(requests::agent_ref(&f)?),
            "list_runs" => Request::ListRuns(requests::list_runs(&f)?),
            "action" => Request::Action {
                action: requests::action(top)?,
                agent_id: f.agent_id()?,
            },
            _ => unreachable!("every listed type is parsed"),
        })
    }
}

/// The old server's wording, which clients may match on: the type as it printed
/// it, `None` when missing.
fn unknown_type(kind: Option<&Value>) -> ProtocolError {
    let shown = match kind {
        None | Some(Value::Null) => "None".to_string(),
        Some(Value::String(kind)) => kind.clone(),
        Some(other) => other.to_string(),
    };
    ProtocolError::new(
        ErrorCode::UnknownType,
        format!("Unknown message type: {shown}"),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn error_of(text: &str) -> ProtocolError {
        Inbound::parse(text).request.unwrap_err()
    }

    #[test]
    fn ping_keeps_its_data_and_id() {
        let inbound = Inbound::parse(r#"{"type":"ping","id":7,"data":{"t":1}}"#);
        assert_eq!(inbound.id, Some(json!(7)));
        assert_eq!(
            inbound.request,
            Ok(Request::Ping {
                data: json!({"t": 1})
            })
        );
    }

    #[test]
    fn ping_without_data_answers_an_empty_object() {
        let inbound = Inbound::parse(r#"{"type":"ping"}"#);
        assert_eq!(inbound.request, Ok(Request::Ping { data: json!({}) }));
    }

    #[test]
    fn invalid_json_and_non_objects_are_invalid_json() {
        for text in ["{", "", "[1,2]", "42", "\"ping\""] {
            let error = error_of(text);
            assert_eq!(error.code, ErrorCode::InvalidJson, "{text}");
            assert_eq!(error.message, "Invalid JSON message");
        }
    }

    #[test]
    fn unknown_and_missing_types_are_named_like_the_old_server() {
        assert_eq!(
            error_of(r#"{"type":"fly"}"#).message,
            "Unknown message type: fly"
        );
        assert_eq!(
            error_of(r#"{"data":{}}"#).message,
            "Unknown message type: None"
        );
        assert_eq!(
            error_of(r#"{"type":null}"#).message,
            "Unknown message type: None"
        );
        assert_eq!(error_of(r#"{"type":5}"#).message, "Unknown message type: 5");
        assert_eq!(error_of(r#"{"type":"fly"}"#).code, ErrorCode::UnknownType);
    }

    #[test]
    fn id_is_echoed_on_errors_but_must_be_a_scalar() {
        let inbound = Inbound::parse(r#"{"type":"fly","id":"a"}"#);
        assert_eq!(inbound.id, Some(json!("a")));
        assert_eq!(
            error_of(r#"{"type":"ping","id":{}}"#).code,
            ErrorCode::InvalidField
        );
        assert_eq!(
            error_of(r#"{"type":"ping","data":[1]}"#).code,
            ErrorCode::InvalidField
        );
    }
}
