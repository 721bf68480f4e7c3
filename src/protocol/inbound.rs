//! Parsing of client frames: `{"type": string, "data": object, "id"?: scalar, ...}`.

use serde_json::{Map, Value};

use super::{ErrorCode, ProtocolError};

/// One parsed client frame. `request` is `Err` when the frame is well-formed JSON
/// but cannot be served; `id` is still known then, so the error reply echoes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub id: Option<Value>,
    pub request: Result<Request, ProtocolError>,
}

/// A request the server knows how to handle, one variant per message type.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `ping` → `pong` with the same `data`.
    Ping { data: Value },
}

impl Request {
    /// The message type, as a bounded metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Ping { .. } => "ping",
        }
    }
}

impl Inbound {
    /// Parses one text frame. Never fails: every malformed frame becomes an
    /// `Err` request with the error the client should read.
    pub fn parse(text: &str) -> Inbound {
        let object = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => object,
            // Valid JSON that is not an object is as unusable as invalid JSON.
            Ok(_) | Err(_) => {
                return Inbound {
                    id: None,
                    request: Err(ProtocolError::new(
                        ErrorCode::InvalidJson,
                        "Invalid JSON message",
                    )),
                };
            }
        };
        let id = match object.get("id") {
            None | Some(Value::Null) => None,
            Some(Value::Object(_) | Value::Array(_)) => {
                return Inbound {
                    id: None,
                    request: Err(ProtocolError::new(
                        ErrorCode::InvalidField,
                        "id must be a string, number or boolean",
                    )),
                };
            }
            Some(scalar) => Some(scalar.clone()),
        };
        Inbound {
            id,
            request: Request::from_object(object),
        }
    }
}

impl Request {
    fn from_object(mut object: Map<String, Value>) -> Result<Request, ProtocolError> {
        let kind = match object.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            other => return Err(unknown_type(other)),
        };
        match kind {
            "ping" => {
                let data = match object.remove("data") {
                    None | Some(Value::Null) => Value::Object(Map::new()),
                    Some(data @ Value::Object(_)) => data,
                    Some(_) => {
                        return Err(ProtocolError::new(
                            ErrorCode::InvalidField,
                            "ping: data must be an object",
                        ));
                    }
                };
                Ok(Request::Ping { data })
            }
            _ => Err(unknown_type(object.get("type"))),
        }
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
