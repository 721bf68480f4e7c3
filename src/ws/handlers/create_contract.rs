//! `create_contract`: registers a contract (address + chain); re-sending updates it.

use serde_json::{Value, json};

use super::success;
use crate::{
    agents::commands::RegisterContract,
    model::NewContract,
    protocol::{ProtocolError, requests::AgentRequest},
    ws::session::Session,
};

pub async fn handle(
    session: &mut Session,
    request: AgentRequest<NewContract>,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    if let Some(agent_id) = &request.agent_id {
        session.follow(agent_id).await?;
    }
    let contract = session.handle(RegisterContract(request.body)).await?;
    session.send(success(
        "create_contract_response",
        json!({"contract": contract}),
        id,
    ));
    Ok(())
}
