//! Plain HTTP endpoints on the same port as the WebSocket.

pub mod api;
mod error;
mod health;
pub mod legacy;
mod metrics;

pub use health::{health, ready};
pub use metrics::{metrics, record_request};
