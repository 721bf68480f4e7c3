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

use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    agents::Command,
    protocol::{Frame, ProtocolError, requests::AgentRequest},
    ws::session::Session,
};

/// `{status: "success", …fields}` as the reply type `kind`.
pub(crate) fn success(kind: &'static str, fields: Value, id: Option<&Value>) -> Frame {
    let mut data = json!({"status": "success"});
    if let (Value::Object(data), Value::Object(fields)) = (&mut data, fields) {
        data.extend(fields);
    }
    Frame::reply(kind, data, id)
}

/// Saves one part of an agent's configuration: follows the agent, carries out
/// the command `make` builds, replies `{status, <part>: saved, agent_id}`.
pub(crate) async fn save_part<T, C>(
    session: &mut Session,
    request: AgentRequest<T>,
    id: Option<&Value>,
    (reply, part): (&'static str, &str),
    make: impl FnOnce(String, T) -> C,
) -> Result<(), ProtocolError>
where
    C: Command,
    C::Output: Serialize,
{
    let agent_id = session.agent_id(&request.agent_id);
    session.follow(&agent_id).await?;
    let saved = session.handle(make(agent_id.clone(), request.body)).await?;
    let mut fields = serde_json::Map::new();
    fields.insert(part.into(), json!(saved));
    fields.insert("agent_id".into(), json!(agent_id));
    session.send(success(reply, Value::Object(fields), id));
    Ok(())
}
