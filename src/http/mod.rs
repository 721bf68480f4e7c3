//! Plain HTTP endpoints on the same port as the WebSocket.

pub mod api;
mod error;
mod guard;
mod health;
pub mod legacy;
mod metrics;

pub use guard::{known_host, redacted, same_site_writes, take_path_token};
pub use health::{health, ready};
pub use metrics::{metrics, record_request};
