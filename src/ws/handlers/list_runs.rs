//! `list_runs {agent_id, limit?, cursor?}`: the agent's runs, newest first, a
//! page at a time (`next_cursor` of a reply is the `cursor` of the next).

use serde_json::{Value, json};

use super::success;
use crate::{
    agents::commands::ListRuns,
    model::PageCursor,
    protocol::{ProtocolError, requests},
    ws::session::Session,
};

/// Default and largest number of runs per reply.
const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 500;

pub async fn handle(
    session: &mut Session,
    request: requests::ListRuns,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let agent_id = session.agent_id(&request.agent_id);
    let limit = request.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as u32;
    let command = ListRuns {
        agent_id: agent_id.clone(),
        limit,
        before: request
            .cursor
            .as_deref()
            .map(PageCursor::decode)
            .transpose()?,
    };
    let page = session.handle(command).await?;
    session.send(success(
        "list_runs_response",
        json!({"agent_id": agent_id, "runs": page.runs, "next_cursor": page.next}),
        id,
    ));
    Ok(())
}
