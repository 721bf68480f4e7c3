//! Every command of the domain, one type each, carried out by
//! `Manager::handle`: `configure` changes what an agent is, `lifecycle` what it
//! does, `queries` reads.

mod configure;
mod lifecycle;
mod queries;

pub use configure::{
    AddFunction, Configure, CreateAgent, RegisterContract, SetNotification, SetSchedule,
    UpdateDescription,
};
pub use lifecycle::{Execute, Remove, Start, Stop};
pub use queries::{
    AgentPage, AgentView, AgentsOfContract, Describe, ListAgents, ListFunctions, ListRuns, RunPage,
};
