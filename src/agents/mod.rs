//! The agent domain: its model, ABI checks, schedules, the manager that carries
//! out commands, and the runtime that runs agents (policies, guard, executors,
//! notifications).

pub mod abi;
mod cycle;
pub mod executor;
pub mod guard;
pub mod manager;
pub mod model;
pub mod notify;
pub mod policy;
mod recorder;
pub mod runtime;
pub mod schedule;

pub use manager::Manager;
