//! The seam between commands and whoever runs agents. Today one process runs
//! every active agent (`runtime::Runtime`, called directly); with replicas, the
//! runner of an agent is the replica holding its lease, commands reach it over
//! the bus, and a run's outcome comes back the same way.

use std::fmt::Debug;

use futures_util::future::BoxFuture;
use serde_json::Value;

pub use super::outcome::RunOutcome;
use crate::model::Trigger;

/// Runs agents, wherever they run.
pub trait Runner: Send + Sync + Debug {
    /// The agent became active or its schedule changed: (re)arm its timer.
    fn schedule(&self, agent_id: &str);
    /// The agent stopped or is gone: disarm its timer, cut its run short.
    fn unschedule(&self, agent_id: &str);
    /// Runs one cycle now (or records it as skipped if one is in progress);
    /// resolves with the outcome, for whoever asked.
    fn run(&self, request: RunRequest) -> BoxFuture<'_, RunOutcome>;
}

/// Which agents this process runs.
pub trait Placement: Send + Sync + Debug {
    fn runs_here(&self, agent_id: &str) -> bool;
}

/// One process runs every agent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Everything;

impl Placement for Everything {
    fn runs_here(&self, _agent_id: &str) -> bool {
        true
    }
}

/// A run to do now.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    pub agent_id: String,
    pub run_id: String,
    pub trigger: Trigger,
    /// The execution view's `{functions, contract}` (argument values of reads).
    pub params: Option<Value>,
}
