//! `create_function`: adds a function to the agent (unique per signature).

use serde_json::{Value, json};

use super::success;
use crate::{
    protocol::{ProtocolError, requests::CreateFunction},
    ws::session::Session,
};

pub async fn handle(
    session: &mut Session,
    request: CreateFunction,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let agent_id = session.agent_id(&request.agent_id);
    session.follow(&agent_id).await?;
    let function = session
        .state
        .manager
        .create_function(&agent_id, &request)
        .await?;
    session.send(success(
        "create_function_response",
        json!({"function": function, "agent_id": agent_id}),
        id,
    ));
    Ok(())
}
