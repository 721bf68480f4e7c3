//! Plain HTTP endpoints on the same port as the WebSocket.

mod health;
mod metrics;

pub use health::{health, ready};
pub use metrics::{metrics, record_request};
