//! `websocket_execution` (alias `execute`): `processing` at once, then one
//! `execute_response` with the outcome, in the same shape for every failure.

use serde_json::{Value, json};

use crate::{
    agents::commands::Execute,
    protocol::{Frame, ProtocolError, requests},
    ws::session::Session,
};

pub async fn handle(
    session: &mut Session,
    request: requests::Execute,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    let agent_id = session.agent_id(&request.agent_id);
    let run_id = uuid::Uuid::new_v4().to_string();
    let command = Execute {
        agent_id: agent_id.clone(),
        run_id: run_id.clone(),
        params: request.data,
    };
    // Refused before "processing": a caller is never told a run started.
    let manager = &session.state.manager;
    manager.authorize(&session.caller, &command).await?;
    session.send(Frame::reply(
        "execute_response",
        json!({"status": "processing", "agent_id": agent_id, "run_id": run_id,
               "message": "Execution started"}),
        id,
    ));
    // The sender follows the agent, so the run's log events reach it; the
    // outcome goes through the same inbox, after them. The run goes on in the
    // background: this connection keeps serving requests meanwhile.
    let followed = session.follow(&agent_id).await;
    let deferred = session.subs.deferred();
    let (manager, caller) = (session.state.manager.clone(), session.caller.clone());
    let id = id.cloned();
    session.state.tasks.spawn(async move {
        let outcome = match followed {
            Ok(()) => manager.handle(&caller, command).await.map_err(Into::into),
            Err(error) => Err(error),
        };
        let reply = match outcome {
            Ok(run) => {
                json!({"status": if run.ok { "success" } else { "error" }, "agent_id": agent_id,
                       "run_id": run_id, "results": run.results, "message": run.message,
                       "logs": run.logs})
            }
            Err(ProtocolError { code, message }) => {
                json!({"status": "error", "agent_id": agent_id, "run_id": run_id,
                       "message": message, "code": code.as_str(), "logs": []})
            }
        };
        deferred
            .send(Frame::reply("execute_response", reply, id.as_ref()))
            .await;
    });
    Ok(())
}
