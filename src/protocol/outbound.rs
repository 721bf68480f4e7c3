//! Server frames, encoded once when built so that sending one is a copy of a
//! reference, whatever the number of sockets it goes to.

use serde_json::{Map, Value, json};

use super::ProtocolError;

/// One encoded server frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    kind: &'static str,
    text: String,
}

impl Frame {
    /// `{"type": kind, "data": data, "id"?: id}`.
    pub fn reply(kind: &'static str, data: Value, id: Option<&Value>) -> Frame {
        let mut object = Map::with_capacity(3);
        object.insert("type".into(), Value::String(kind.into()));
        object.insert("data".into(), data);
        Self::encode(kind, object, id)
    }

    /// An `error` frame. The legacy frontend reads `message` at the top level,
    /// native clients read `data.code`.
    pub fn error(error: &ProtocolError, id: Option<&Value>) -> Frame {
        Self::error_with(error, id, Value::Null)
    }

    /// An `error` frame with more fields in its `data` (an object).
    pub fn error_with(error: &ProtocolError, id: Option<&Value>, extra: Value) -> Frame {
        let mut data = json!({"message": error.message, "code": error.code.as_str(), "logs": []});
        if let (Value::Object(data), Value::Object(extra)) = (&mut data, extra) {
            data.extend(extra);
        }
        let mut object = Map::with_capacity(4);
        object.insert("type".into(), Value::String("error".into()));
        object.insert("message".into(), Value::String(error.message.clone()));
        object.insert("data".into(), data);
        Self::encode("error", object, id)
    }

    /// A `<type>_response` with `status: "error"`, naming the failed request.
    pub fn error_response(kind: &'static str, error: &ProtocolError, id: Option<&Value>) -> Frame {
        Self::reply(
            kind,
            json!({"status": "error", "message": error.message, "code": error.code.as_str()}),
            id,
        )
    }

    fn encode(kind: &'static str, mut object: Map<String, Value>, id: Option<&Value>) -> Frame {
        if let Some(id) = id {
            object.insert("id".into(), id.clone());
        }
        // Every reply passes the one redaction step (URL credentials, query
        // values, configured secrets).
        let text = Value::Object(object).to_string();
        Frame {
            kind,
            text: crate::redact::clean(&text).into_owned(),
        }
    }

    /// The frame's type, as a bounded metric label.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn into_text(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    fn parsed(frame: &Frame) -> Value {
        serde_json::from_str(frame.text()).unwrap()
    }

    #[test]
    fn reply_echoes_the_id() {
        let frame = Frame::reply("pong", json!({"a": 1}), Some(&json!("x")));
        assert_eq!(
            parsed(&frame),
            json!({"type": "pong", "data": {"a": 1}, "id": "x"})
        );
        assert_eq!(frame.kind(), "pong");
    }

    #[test]
    fn error_carries_message_at_top_level_and_code_in_data() {
        let error = ProtocolError::new(ErrorCode::InvalidJson, "Invalid JSON message");
        assert_eq!(
            parsed(&Frame::error(&error, None)),
            json!({
                "type": "error",
                "message": "Invalid JSON message",
                "data": {"message": "Invalid JSON message", "code": "invalid_json", "logs": []}
            })
        );
    }
}
