//! The agent domain: the manager that authorizes and carries out commands, the
//! read side of event streams, and the runtime that runs agents (one cycle:
//! policies, guard, executors, notifications).
//!
//! Inside, imports go one way: `manager`/`commands` and `runtime` use the
//! `runner` seam; `runtime` uses `cycle`; `cycle` uses `policy`, `guard`,
//! `executor`, `notify`; all of them use `recorder` and `outcome`.

pub mod access;
pub mod commands;
mod cycle;
pub mod executor;
pub mod feed;
pub mod guard;
pub mod manager;
pub mod notify;
pub mod outbound;
pub mod outcome;
pub mod policy;
pub mod reconcile;
mod recorder;
pub mod retry;
pub mod runner;
pub mod runtime;
pub mod schedule;

pub use manager::{Command, Manager};
pub use outcome::RunOutcome;
pub use runtime::Runtime;
