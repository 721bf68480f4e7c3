//! The single entry point from a text frame to the handler of its message type.

use std::time::Instant;

use serde_json::Value;

use super::{handlers, session::Session};
use crate::{
    protocol::{ErrorCode, Frame, Inbound, ProtocolError, Request},
    telemetry::names,
};

/// Parses one text frame and runs the handler of its type. Every outcome sends
/// the client something: a reply, or an `error` frame; the session goes on.
pub async fn handle_message(session: &mut Session, text: &str) {
    let started = Instant::now();
    let Inbound { id, request } = Inbound::parse(text);
    let kind = match &request {
        Ok(request) => request.kind(),
        Err(error) => match error.code {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnknownType => "unknown",
            _ => "invalid",
        },
    };
    metrics::counter!(names::WS_FRAMES_IN, "type" => kind).increment(1);

    let outcome = match request {
        Ok(Request::Ping { data }) => handlers::ping::handle(session, data, id.as_ref()),
        Err(error) => Err(error),
    };
    if let Err(error) = outcome {
        send_error(session, &error, id.as_ref());
    }
    metrics::histogram!(names::WS_HANDLE_SECONDS, "type" => kind)
        .record(started.elapsed().as_secs_f64());
}

fn send_error(session: &Session, error: &ProtocolError, id: Option<&Value>) {
    metrics::counter!(names::WS_ERRORS, "code" => error.code.as_str()).increment(1);
    session.send(Frame::error(error, id));
}
