//! The local runner: one timer task per active agent of this process (interval
//! or cron), runs on demand, at most one run per agent at a time, resumption
//! after a restart.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{FutureExt, future::BoxFuture};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use super::cycle::RuntimeSettings;
use super::{
    cycle::{self, Env},
    outcome::{LogLine, RunOutcome},
    recorder::Recorder,
    runner::{Placement, RunRequest, Runner},
    schedule,
};
use crate::{
    hub::Hub,
    model::{LogLevel, Run, RunStatus, Trigger, format_time, now},
    protocol::events,
    store::Store,
};

#[derive(Debug, Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    rec: Recorder,
    settings: RuntimeSettings,
    placement: Arc<dyn Placement>,
    slots: Mutex<HashMap<String, Slot>>,
    /// Runs in progress at once, over every agent.
    runs: Arc<tokio::sync::Semaphore>,
    /// Timers, runs and notifications: shutdown waits for them.
    tasks: TaskTracker,
    /// Cancelled at shutdown.
    stop: CancellationToken,
}

/// One agent's timer and run in progress.
#[derive(Debug, Default)]
struct Slot {
    timer: Option<CancellationToken>,
    run: Option<CancellationToken>,
}

impl Runner for Runtime {
    /// (Re)starts the agent's timer from its stored schedule, if it runs here.
    fn schedule(&self, agent_id: &str) {
        let inner = &self.inner;
        if inner.stop.is_cancelled() || !inner.placement.runs_here(agent_id) {
            return;
        }
        let token = inner.stop.child_token();
        let previous = self
            .slots()
            .entry(agent_id.to_string())
            .or_default()
            .timer
            .replace(token.clone());
        if let Some(previous) = previous {
            previous.cancel();
        }
        let runtime = self.clone();
        let agent_id = agent_id.to_string();
        inner
            .tasks
            .spawn(async move { runtime.timer(agent_id, token).await });
    }

    fn unschedule(&self, agent_id: &str) {
        let mut slots = self.slots();
        if let Some(slot) = slots.get_mut(agent_id) {
            if let Some(timer) = slot.timer.take() {
                timer.cancel();
            }
            match &slot.run {
                Some(run) => run.cancel(),
                // Nothing left of the agent here: the map shrinks.
                None => {
                    slots.remove(agent_id);
                }
            }
        }
    }

    fn run(&self, request: RunRequest) -> BoxFuture<'_, RunOutcome> {
        self.run_now(request).boxed()
    }
}

impl Runtime {
    pub fn new(
        store: Store,
        hub: Arc<Hub>,
        settings: RuntimeSettings,
        placement: Arc<dyn Placement>,
    ) -> Self {
        let settings_runs = settings
            .max_concurrent_runs
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        Self {
            inner: Arc::new(Inner {
                rec: Recorder { store, hub },
                settings,
                placement,
                slots: Mutex::new(HashMap::new()),
                runs: Arc::new(tokio::sync::Semaphore::new(settings_runs)),
                tasks: TaskTracker::new(),
                stop: CancellationToken::new(),
            }),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.inner.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the agent has a timer running (for tests and status).
    pub fn is_scheduled(&self, agent_id: &str) -> bool {
        self.slots()
            .get(agent_id)
            .and_then(|s| s.timer.as_ref())
            .is_some_and(|t| !t.is_cancelled())
    }

    /// At start: runs a crash left `running` become `interrupted`, and every
    /// active agent of this process is scheduled again.
    pub async fn resume(&self) -> anyhow::Result<()> {
        let store = &self.inner.rec.store;
        // A node that is down does not hold the start: the periodic pass goes on.
        if tokio::time::timeout(Duration::from_secs(30), self.reconcile())
            .await
            .is_err()
        {
            tracing::warn!("reconciling at start took too long; it goes on in the background");
        }
        let interrupted = store.mark_interrupted_runs(&now()).await?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "runs interrupted by the last stop were marked as such"
            );
        }
        let agents = store.active_agents().await?;
        for agent in &agents {
            self.schedule(&agent.agent_id);
        }
        tracing::info!(agents = agents.len(), "active agents scheduled");
        let runtime = self.clone();
        self.inner
            .tasks
            .spawn(async move { runtime.reconcile_every().await });
        Ok(())
    }

    /// Settles what the chain decided for actions still `sent`, and completes
    /// runs cut by a crash once their actions are final.
    async fn reconcile(&self) {
        let inner = &self.inner;
        let Some(executor) = &inner.settings.executor else {
            return;
        };
        let busy = self
            .slots()
            .iter()
            .filter(|(_, slot)| slot.run.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        let settled = super::reconcile::actions(&inner.rec, executor, &busy).await;
        super::reconcile::runs(&inner.rec, &settled, &busy).await;
    }

    /// Reconciles every `reconcile_every` until shutdown.
    async fn reconcile_every(self) {
        let every = self
            .inner
            .settings
            .reconcile_every
            .max(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = self.inner.stop.cancelled() => return,
                _ = tokio::time::sleep(every) => self.reconcile().await,
            }
        }
    }

    /// Stops every timer and waits for runs in progress (they stop at their
    /// next safe point).
    pub async fn shutdown(&self) {
        self.inner.stop.cancel();
        for slot in self.slots().values() {
            if let Some(run) = &slot.run {
                run.cancel();
            }
        }
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    /// Runs one cycle now, unless one is in progress (then the trigger is
    /// recorded as skipped).
    async fn run_now(&self, request: RunRequest) -> RunOutcome {
        let agent_id = request.agent_id.clone();
        let token = {
            let mut slots = self.slots();
            let slot = slots.entry(agent_id.clone()).or_default();
            if slot.run.is_some() {
                None
            } else {
                let token = self.inner.stop.child_token();
                slot.run = Some(token.clone());
                Some(token)
            }
        };
        let Some(token) = token else {
            return self
                .skipped(request, "skipped: a run of this agent is in progress")
                .await;
        };
        let Ok(_permit) = Arc::clone(&self.inner.runs).try_acquire_owned() else {
            self.release(&agent_id);
            let why = "skipped: the server runs as many agents as it may at once";
            return self.skipped(request, why).await;
        };
        let inner = &self.inner;
        let env = Env {
            rec: &inner.rec,
            settings: &inner.settings,
            tasks: &inner.tasks,
            stop: &inner.stop,
        };
        let outcome = inner
            .tasks
            .track_future(cycle::run(&env, request, token))
            .await;
        self.release(&agent_id);
        outcome
    }

    /// The agent's run is over: its slot goes too when it has no timer.
    fn release(&self, agent_id: &str) {
        let mut slots = self.slots();
        if let Some(slot) = slots.get_mut(agent_id) {
            slot.run = None;
            if slot.timer.is_none() {
                slots.remove(agent_id);
            }
        }
    }

    async fn skipped(&self, request: RunRequest, message: &str) -> RunOutcome {
        let line = LogLine::new(LogLevel::Warning, message.into());
        let RunRequest {
            agent_id, run_id, ..
        } = request;
        let run = Run {
            run_id: run_id.clone(),
            agent_id: agent_id.clone(),
            trigger: request.trigger,
            status: RunStatus::Skipped,
            request: None,
            result: None,
            error: Some(message.into()),
            started_at: line.timestamp.clone(),
            finished_at: Some(line.timestamp.clone()),
        };
        let rec = &self.inner.rec;
        let event = events::log(&agent_id, line.level, message, &line.timestamp);
        if let Ok(mut change) = rec.begin().await
            && let Ok(agent) = change.existing(&agent_id).await
            && change.tx.insert_run(&run).await.is_ok()
            && change.emit(&agent_id, event).await.is_ok()
        {
            let _ = rec.commit(change, &agent.contract_id).await;
        }
        RunOutcome {
            run_id,
            ok: false,
            message: message.into(),
            results: Vec::new(),
            logs: vec![line],
        }
    }

    /// Fires the agent's schedule until cancelled or the schedule goes away.
    async fn timer(self, agent_id: String, token: CancellationToken) {
        tracing::debug!(agent = %agent_id, "timer started");
        let store = self.inner.rec.store.clone();
        loop {
            let schedule = match store.schedule(&agent_id).await {
                Ok(Some(s)) if s.is_active => s,
                Ok(_) => return,
                Err(error) => {
                    tracing::warn!(%error, agent = %agent_id, "reading a schedule failed; retrying");
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                    }
                }
            };
            let Some(next) = schedule::next_after(&schedule.kind(), chrono::Utc::now()) else {
                tracing::warn!(agent = %agent_id, "the schedule never fires");
                return;
            };
            tracing::debug!(agent = %agent_id, next = %format_time(next), "schedule armed");
            self.announce_next(&agent_id, Some(format_time(next))).await;
            let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let runtime = self.clone();
            let request = RunRequest {
                agent_id: agent_id.clone(),
                run_id: uuid::Uuid::new_v4().to_string(),
                trigger: Trigger::Schedule,
                params: None,
            };
            self.inner.tasks.spawn(async move {
                runtime.run_now(request).await;
            });
        }
    }

    /// Stores the next fire time and tells subscribers (`status`).
    async fn announce_next(&self, agent_id: &str, next: Option<String>) {
        let rec = &self.inner.rec;
        let Ok(mut change) = rec.begin().await else {
            return;
        };
        let Ok(agent) = change.existing(agent_id).await else {
            return;
        };
        let set = change
            .tx
            .set_next_execution(agent_id, next.as_deref())
            .await;
        // Read in the transaction: it already has the new next_execution.
        if set.is_ok() && change.emit_status(&agent).await.is_ok() {
            let _ = rec.commit(change, &agent.contract_id).await;
        }
    }
}
