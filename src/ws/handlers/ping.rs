//! `ping` → `pong` with the same `data`: the cheapest round trip, used to measure
//! the server and to keep proxies from timing a quiet connection out.

use serde_json::Value;

use crate::{
    protocol::{Frame, ProtocolError},
    ws::session::Session,
};

pub fn handle(session: &Session, data: Value, id: Option<&Value>) -> Result<(), ProtocolError> {
    session.send(Frame::reply("pong", data, id));
    Ok(())
}
