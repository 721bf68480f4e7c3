//! `create_notification`: sets one of the agent's notification channels.

use serde_json::Value;

use super::save_part;
use crate::{
    agents::commands::SetNotification,
    model::NewNotification,
    protocol::{ProtocolError, requests::AgentRequest},
    ws::session::Session,
};

pub async fn handle(
    session: &mut Session,
    request: AgentRequest<NewNotification>,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let reply = ("create_notification_response", "notification");
    save_part(session, request, id, reply, |agent_id, notification| {
        SetNotification {
            agent_id,
            notification,
        }
    })
    .await
}
