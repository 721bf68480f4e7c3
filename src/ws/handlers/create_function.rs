//! `create_function`: adds a function to the agent (unique per signature).

use serde_json::Value;

use super::save_part;
use crate::{
    agents::commands::AddFunction,
    model::NewFunction,
    protocol::{ProtocolError, requests::AgentRequest},
    ws::session::Session,
};

pub async fn handle(
    session: &mut Session,
    request: AgentRequest<NewFunction>,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let reply = ("create_function_response", "function");
    save_part(session, request, id, reply, |agent_id, function| {
        AddFunction { agent_id, function }
    })
    .await
}
