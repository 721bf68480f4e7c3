//! The agent domain: its model, ABI checks, schedules, and the manager that
//! carries out commands against the store and publishes their events.

pub mod abi;
pub mod manager;
pub mod model;
pub mod schedule;

pub use manager::Manager;
