//! The single entry point from a text frame to the handler of its message type.

use std::time::Instant;

use serde_json::{Value, json};

use super::{
    handlers::{self, lifecycle::Lifecycle},
    session::Session,
};
use crate::{
    protocol::{Frame, Inbound, MessageType, ProtocolError, Request},
    telemetry::{self, names},
};

/// Parses one text frame and runs the handler of its type. Every outcome sends
/// the client something: a reply, or an error naming the request; the session
/// goes on.
pub async fn handle_message(session: &mut Session, text: &str) {
    let started = Instant::now();
    let Inbound {
        id,
        kind,
        message_type,
        request,
    } = Inbound::parse(text);
    telemetry::frames_in(kind).increment(1);
    let outcome = match request {
        Ok(request) => route(session, request, id.as_ref()).await,
        Err(error) => Err(error),
    };
    if let Err(error) = outcome {
        report(session, message_type, &error, id.as_ref());
    }
    telemetry::handling_seconds(kind).record(started.elapsed().as_secs_f64());
}

async fn route(
    session: &mut Session,
    request: Request,
    id: Option<&Value>,
) -> Result<(), ProtocolError> {
    use handlers::*;
    match request {
        Request::Ping { data } => ping::handle(session, data, id),
        Request::CreateContract(r) => create_contract::handle(session, r, id).await,
        Request::CreateAgent(r) => create_agent::handle(session, r, id).await,
        Request::CreateFunction(r) => create_function::handle(session, r, id).await,
        Request::CreateSchedule(r) => create_schedule::handle(session, r, id).await,
        Request::CreateNotification(r) => create_notification::handle(session, r, id).await,
        Request::ConfigureAgent(r) => configure_agent::handle(session, r, id).await,
        Request::Execute(r) => execute::handle(session, r, id).await,
        Request::StartAgent(r) => lifecycle::handle(session, Lifecycle::Start, r, id).await,
        Request::StopAgent(r) => lifecycle::handle(session, Lifecycle::Stop, r, id).await,
        Request::RemoveAgent(r) => lifecycle::handle(session, Lifecycle::Remove, r, id).await,
        Request::Action { action, agent_id } => action::handle(session, action, agent_id).await,
        Request::Subscribe(r) => subscribe::subscribe(session, r, id).await,
        Request::Unsubscribe(r) => subscribe::unsubscribe(session, r, id).await,
        Request::GetAgent(r) => get_agent::handle(session, r, id).await,
        Request::ListRuns(r) => list_runs::handle(session, r, id).await,
    }
}

/// A failed request gets `<type>_response {status:"error", message}` (what the
/// wizard waits for) and an `error` frame whose message starts with the type.
/// Frames with no type to name get the `error` frame alone.
fn report(
    session: &Session,
    message_type: Option<MessageType>,
    error: &ProtocolError,
    id: Option<&Value>,
) {
    metrics::counter!(names::WS_ERRORS, "code" => error.code.as_str()).increment(1);
    let Some(message_type) = message_type else {
        session.send(Frame::error(error, id));
        return;
    };
    let kind = message_type.as_str();
    let named = ProtocolError::new(error.code, format!("{kind}: {}", error.message));
    let Some(reply) = message_type.response_type() else {
        // The type-less action frames are named in the message; a bad ping is not.
        let error = if message_type == MessageType::Action {
            &named
        } else {
            error
        };
        session.send(Frame::error(error, id));
        return;
    };
    let executes = [MessageType::WebsocketExecution, MessageType::Execute];
    let response = if executes.contains(&message_type) {
        // The one shape of every execute outcome.
        Frame::reply(
            reply,
            json!({"status": "error", "agent_id": Value::Null, "run_id": Value::Null,
                   "message": error.message, "code": error.code.as_str(), "logs": []}),
            id,
        )
    } else {
        Frame::error_response(reply, error, id)
    };
    session.send(response);
    session.send(Frame::error(&named, id));
}
