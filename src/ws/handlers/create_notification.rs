//! `create_notification`: sets one of the agent's notification channels.

use serde_json::{Value, json};

use super::success;
use crate::{
    protocol::{ProtocolError, requests::CreateNotification},
    ws::session::Session,
};

pub async fn handle(
    session: &mut Session,
    request: CreateNotification,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let agent_id = session.agent_id(&request.agent_id);
    session.follow(&agent_id).await?;
    let notification = session
        .state
        .manager
        .create_notification(&agent_id, &request)
        .await?;
    session.send(success(
        "create_notification_response",
        json!({"notification": notification, "agent_id": agent_id}),
        id,
    ));
    Ok(())
}
