//! agentport: hosts autonomous agents and serves HTTP health checks, REST and the
//! agent WebSocket on one port. See ARCHITECTURE.md for the map of modules.

pub mod agents;
pub mod app;
pub mod auth;
pub mod config;
pub mod http;
pub mod hub;
pub mod limits;
pub mod model;
pub mod origins;
pub mod protocol;
pub mod redact;
pub mod registry;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod ws;

pub use app::{App, run};
pub use config::Config;
