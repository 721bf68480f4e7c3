//! Wire types of the agent WebSocket: what clients send, what the server answers,
//! error codes and close codes. Free of I/O so that every rule of PROTOCOL.md can
//! be unit-tested on plain strings.

mod close;
mod error;
pub mod events;
mod fields;
mod inbound;
mod outbound;
pub mod requests;

pub use close::CloseCode;
pub use error::{ErrorCode, ProtocolError};
pub use inbound::{Inbound, MessageType, Request};
pub use outbound::Frame;
