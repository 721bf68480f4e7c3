//! Parsing of client frames: `{"type": string, "data": object, "id"?: scalar, ...}`.

use serde_json::{Map, Value};

use super::{
    ErrorCode, ProtocolError,
    fields::{Fields, at_most, invalid, json_len, limits},
    requests::{self, Action, AgentRef, AgentRequest, Execute, ListRuns, Subscribe},
};
use crate::model::{NewAgent, NewContract, NewFunction, NewNotification, NewSchedule, names};

/// One parsed client frame. `request` is `Err` when the frame is well-formed JSON
/// but cannot be served; `id` and `kind` are still known then, so the error reply
/// echoes the id and names the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub id: Option<Value>,
    /// The message type as sent (`"action"` for the type-less action frames,
    /// `"invalid_json"` / `"unknown"` / `"invalid"` when there is none to name).
    /// Bounded: usable as a metric label.
    pub kind: &'static str,
    /// The message type, when the frame names one the server knows.
    pub message_type: Option<MessageType>,
    pub request: Result<Request, ProtocolError>,
}

/// A request the server knows how to handle, one variant per message type.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `ping` → `pong` with the same `data`.
    Ping {
        data: Value,
    },
    CreateContract(AgentRequest<NewContract>),
    CreateAgent(AgentRequest<NewAgent>),
    CreateFunction(AgentRequest<NewFunction>),
    CreateSchedule(AgentRequest<NewSchedule>),
    CreateNotification(AgentRequest<NewNotification>),
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

names! {
    /// Every message type a client may send: the one table of names. Its
    /// parser is `Request::parse`, its handler the `ws::handlers` module of
    /// the same name.
    pub enum MessageType {
        Ping = "ping",
        CreateContract = "create_contract",
        CreateAgent = "create_agent",
        CreateFunction = "create_function",
        CreateSchedule = "create_schedule",
        CreateNotification = "create_notification",
        ConfigureAgent = "configure_agent",
        WebsocketExecution = "websocket_execution",
        Execute = "execute",
        StartAgent = "start_agent",
        StopAgent = "stop_agent",
        RemoveAgent = "remove_agent",
        Subscribe = "subscribe",
        Unsubscribe = "unsubscribe",
        GetAgent = "get_agent",
        ListRuns = "list_runs",
        /// The execution view's frames, which have `action` and no `type`.
        Action = "action",
    }
}

impl MessageType {
    /// The type a failure of this request is answered with, besides the
    /// `error` frame: `<type>_response`, except that both spellings of execute
    /// answer `execute_response`. `None`: the `error` frame alone.
    pub fn response_type(self) -> Option<&'static str> {
        Some(match self {
            MessageType::Ping | MessageType::Action => return None,
            MessageType::CreateContract => "create_contract_response",
            MessageType::CreateAgent => "create_agent_response",
            MessageType::CreateFunction => "create_function_response",
            MessageType::CreateSchedule => "create_schedule_response",
            MessageType::CreateNotification => "create_notification_response",
            MessageType::ConfigureAgent => "configure_agent_response",
            MessageType::WebsocketExecution | MessageType::Execute => "execute_response",
            MessageType::StartAgent => "start_agent_response",
            MessageType::StopAgent => "stop_agent_response",
            MessageType::RemoveAgent => "remove_agent_response",
            MessageType::Subscribe => "subscribe_response",
            MessageType::Unsubscribe => "unsubscribe_response",
            MessageType::GetAgent => "get_agent_response",
            MessageType::ListRuns => "list_runs_response",
        })
    }
}

impl Inbound {
    /// Parses one text frame. Never fails: every malformed frame becomes an
    /// `Err` request with the error the client should read.
    pub fn parse(text: &str) -> Inbound {
        let rejected = |kind, error| Inbound {
            id: None,
            kind,
            message_type: None,
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
        let message_type = match object.get("type") {
            Some(Value::String(kind)) => {
                MessageType::parse(kind).filter(|t| *t != MessageType::Action)
            }
            None | Some(Value::Null) if object.contains_key("action") => Some(MessageType::Action),
            _ => None,
        };
        let Some(message_type) = message_type else {
            return Inbound {
                id,
                kind: "unknown",
                message_type: None,
                request: Err(unknown_type(object.get("type"))),
            };
        };
        Inbound {
            id,
            kind: message_type.as_str(),
            message_type: Some(message_type),
            request: Request::parse(message_type, &object),
        }
    }
}

impl Request {
    /// Parses a REST body as the `data` of a request of type `kind`, with the
    /// same fields and validation as over the WebSocket.
    pub fn from_body(
        kind: MessageType,
        body: Map<String, Value>,
    ) -> Result<Request, ProtocolError> {
        let mut top = Map::new();
        top.insert("data".into(), Value::Object(body));
        Request::parse(kind, &top)
    }

    fn parse(kind: MessageType, top: &Map<String, Value>) -> Result<Request, ProtocolError> {
        let empty = Map::new();
        let data = match top.get("data") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(data)) => data,
            Some(_) => return Err(invalid("data must be an object")),
        };
        let f = Fields::new(data, top);
        use MessageType as T;
        Ok(match kind {
            T::Ping => Request::Ping {
                data: Value::Object(data.clone()),
            },
            T::CreateContract => Request::CreateContract(requests::create_contract(&f)?),
            T::CreateAgent => Request::CreateAgent(requests::create_agent(&f)?),
            T::CreateFunction => Request::CreateFunction(requests::create_function(&f)?),
            T::CreateSchedule => Request::CreateSchedule(requests::create_schedule(&f)?),
            T::CreateNotification => {
                Request::CreateNotification(requests::create_notification(&f)?)
            }
            T::ConfigureAgent => Request::ConfigureAgent(requests::agent_ref(&f)?),
            T::WebsocketExecution | T::Execute => {
                // Stored with the run: bounded.
                let data = Value::Object(data.clone());
                at_most("data", json_len(&data), limits::JSON)?;
                Request::Execute(Execute {
                    agent_id: f.agent_id()?,
                    data,
                })
            }
            T::StartAgent => Request::StartAgent(requests::agent_ref(&f)?),
            T::StopAgent => Request::StopAgent(requests::agent_ref(&f)?),
            T::RemoveAgent => Request::RemoveAgent(requests::agent_ref(&f)?),
            T::Subscribe => Request::Subscribe(requests::subscribe(&f)?),
            T::Unsubscribe => Request::Unsubscribe(requests::agent_ref(&f)?),
            T::GetAgent => Request::GetAgent(requests::agent_ref(&f)?),
            T::ListRuns => Request::ListRuns(requests::list_runs(&f)?),
            T::Action => Request::Action {
                action: requests::action(top)?,
                agent_id: f.agent_id()?,
            },
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
    fn every_message_type_is_named_once_and_serializes_as_named() {
        for kind in MessageType::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert_eq!(MessageType::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(
            MessageType::Execute.response_type(),
            MessageType::WebsocketExecution.response_type()
        );
        assert_eq!(Inbound::parse(r#"{"type":"action"}"#).kind, "unknown");
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
