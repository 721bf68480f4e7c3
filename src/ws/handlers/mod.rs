//! One module per message type. A handler gets the session and its parsed
//! request, queues its replies, and returns the error to report, if any; the
//! dispatcher turns that error into `<type>_response {status:"error"}` and an
//! `error` frame.

pub mod action;
pub mod configure_agent;
pub mod create_agent;
pub mod create_contract;
pub mod create_function;
pub mod create_notification;
pub mod create_schedule;
pub mod execute;
pub mod get_agent;
pub mod lifecycle;
pub mod list_runs;
pub mod ping;
pub mod subscribe;

use serde_json::{Value, json};

use crate::protocol::Frame;

/// `{status: "success", …fields}` as the reply type `kind`.
pub(crate) fn success(kind: &'static str, fields: Value, id: Option<&Value>) -> Frame {
    let mut data = json!({"status": "success"});
    if let (Value::Object(data), Value::Object(fields)) = (&mut data, fields) {
        data.extend(fields);
    }
    Frame::reply(kind, data, id)
}
