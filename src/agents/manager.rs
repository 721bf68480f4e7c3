//! The agent manager: the one door into the domain. Every command arrives as a
//! typed value with its caller (`handle`), is authorized once, and runs in one
//! store transaction holding its changes and its events; the events are
//! published after the commit. The WebSocket and REST both come in here.

use std::{future::Future, sync::Arc};

use super::{
    access::{self, Access},
    feed::Feed,
    outbound::Targets,
    recorder::{Recorder, internal},
    runner::Runner,
};
use crate::{
    hub::Hub,
    model::{AgentError, Caller},
    store::Store,
};

/// One thing a caller asks of the domain.
pub trait Command: Send {
    type Output: Send;

    /// What the caller needs the right to do.
    fn access(&self) -> Access<'_>;

    /// Carries the command out for `caller`; authorization has already passed.
    fn apply(
        self,
        ctx: &Context,
        caller: &Caller,
    ) -> impl Future<Output = Result<Self::Output, AgentError>> + Send;
}

/// What commands work with.
#[derive(Debug, Clone)]
pub struct Context {
    pub(super) rec: Recorder,
    pub(super) runner: Arc<dyn Runner>,
    /// Contracts the signing key may call, lowercase; empty: any.
    pub(super) allowed_contracts: Arc<[String]>,
    /// Where notification URLs may point.
    pub(super) targets: Targets,
    /// Agents one subject may create (0: no limit).
    pub(super) max_agents_per_owner: u64,
}

/// What the domain enforces whatever clients ask.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Contracts the signing key may call, lowercase; empty: any.
    pub allowed_contracts: Vec<String>,
    pub targets: Targets,
    /// Agents one subject may create (0: no limit).
    pub max_agents_per_owner: u64,
}

#[derive(Debug, Clone)]
pub struct Manager {
    ctx: Context,
    feed: Feed,
}

impl Manager {
    pub fn new(store: Store, hub: Arc<Hub>, runner: Arc<dyn Runner>, rules: Rules) -> Self {
        let rec = Recorder { store, hub };
        Self {
            feed: Feed::new(rec.clone()),
            ctx: Context {
                rec,
                runner,
                allowed_contracts: rules.allowed_contracts.into(),
                targets: rules.targets,
                max_agents_per_owner: rules.max_agents_per_owner,
            },
        }
    }

    /// Whether `caller` may issue `command`, without carrying it out (for a
    /// reply that must not promise what will be refused).
    pub async fn authorize<C: Command>(
        &self,
        caller: &Caller,
        command: &C,
    ) -> Result<(), AgentError> {
        access::authorize(&self.ctx.rec.store, caller, command.access()).await
    }

    /// Authorizes `command` for `caller`, then carries it out.
    pub async fn handle<C: Command>(
        &self,
        caller: &Caller,
        command: C,
    ) -> Result<C::Output, AgentError> {
        access::authorize(&self.ctx.rec.store, caller, command.access()).await?;
        command.apply(&self.ctx, caller).await
    }

    /// The read side of agents' event streams: follow, replay, bounds.
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    /// A round trip to the database, for readiness.
    pub async fn check(&self) -> Result<(), AgentError> {
        self.ctx
            .rec
            .store
            .check()
            .await
            .map_err(|e| AgentError::Unavailable(format!("database: {e}")))
    }

    /// Applies run retention (see `Store::prune_runs`).
    pub async fn prune_runs(
        &self,
        keep_per_agent: u64,
        older_than: Option<&str>,
    ) -> Result<u64, AgentError> {
        let store = &self.ctx.rec.store;
        store
            .prune_runs(keep_per_agent, older_than)
            .await
            .map_err(internal)
    }

    /// Applies event retention: at most `keep_per_agent` events per agent, none
    /// older than `older_than` (RFC 3339). Returns how many were removed.
    pub async fn prune_events(
        &self,
        keep_per_agent: Option<u64>,
        older_than: Option<&str>,
    ) -> Result<u64, AgentError> {
        self.ctx
            .rec
            .store
            .prune_events(keep_per_agent, older_than)
            .await
            .map_err(internal)
    }
}
