//! `subscribe {agent_id, since?}` and `unsubscribe {agent_id}`: add or drop an
//! agent's events on this connection. With `since`, the stored events after it
//! are replayed first, then the live ones, with no gap and no duplicate.

use serde_json::{Value, json};

use super::success;
use crate::{
    hub::Topic,
    protocol::{
        ProtocolError,
        requests::{AgentRef, Subscribe},
    },
    ws::session::Session,
};

pub async fn subscribe(
    session: &mut Session,
    request: Subscribe,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let agent_id = session.agent_id(&request.agent_id);
    let feed = session.state.manager.feed();
    let bounds = feed.bounds(&session.caller, &agent_id).await?;
    session.send(success(
        "subscribe_response",
        json!({"agent_id": agent_id, "last_seq": bounds.last_seq, "oldest_seq": bounds.oldest_seq}),
        id,
    ));
    match request.since {
        Some(since) => session.replay(&agent_id, since).await,
        None => session.follow(&agent_id).await,
    }
}

pub async fn unsubscribe(
    session: &mut Session,
    request: AgentRef,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let agent_id = session.agent_id(&request.agent_id);
    let was = session.subs.remove(&Topic::Agent(agent_id.clone()));
    session.send(success(
        "unsubscribe_response",
        json!({"agent_id": agent_id, "subscribed": was}),
        id,
    ));
    Ok(())
}
