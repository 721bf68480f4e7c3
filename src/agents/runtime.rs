//! Makes agents run: one timer task per active agent (interval or cron), runs on
//! demand, at most one run per agent at a time, resumption after a restart.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::Value;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    cycle,
    executor::Executor,
    manager::Execution,
    model::{Run, format_time, now},
    recorder::{Recorder, status_of},
    schedule,
};
use crate::protocol::events;

/// What the runtime is configured with.
#[derive(Debug, Default)]
pub struct RuntimeSettings {
    /// Where reads and writes go; `None`: runs can only say so.
    pub executor: Option<Executor>,
    /// Most actions one run may take unless the policy says otherwise.
    pub max_actions: usize,
    /// The LLM endpoint for `llm` policies, if a key is configured.
    pub llm: Option<super::policy::llm::LlmClient>,
    /// Where notifications are sent from.
    pub notifier: super::notify::Notifier,
}

#[derive(Debug, Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub rec: Recorder,
    pub settings: RuntimeSettings,
    slots: Mutex<HashMap<String, Slot>>,
    /// Timers, runs and notifications: shutdown waits for them.
    pub tasks: TaskTracker,
    /// Cancelled at shutdown.
    pub stop: CancellationToken,
}

/// One agent's timer and run in progress.
#[derive(Debug, Default)]
struct Slot {
    timer: Option<CancellationToken>,
    run: Option<CancellationToken>,
}

impl Runtime {
    pub fn new(rec: Recorder, settings: RuntimeSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                rec,
                settings,
                slots: Mutex::new(HashMap::new()),
                tasks: TaskTracker::new(),
                stop: CancellationToken::new(),
            }),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.inner.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// (Re)starts the agent's timer from its stored schedule.
    pub fn schedule(&self, agent_id: &str) {
        if self.inner.stop.is_cancelled() {
            return;
        }
        let token = self.inner.stop.child_token();
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
        self.inner
            .tasks
            .spawn(async move { runtime.timer(agent_id, token).await });
    }

    /// Stops the agent's timer, and its run in progress at the next safe point.
    pub fn unschedule(&self, agent_id: &str) {
        if let Some(slot) = self.slots().get_mut(agent_id) {
            if let Some(timer) = slot.timer.take() {
                timer.cancel();
            }
            if let Some(run) = &slot.run {
                run.cancel();
            }
        }
    }

    /// Whether the agent has a timer running (for tests and status).
    pub fn is_scheduled(&self, agent_id: &str) -> bool {
        self.slots()
            .get(agent_id)
            .and_then(|s| s.timer.as_ref())
            .is_some_and(|t| !t.is_cancelled())
    }

    /// At start: runs a crash left `running` become `interrupted`, and every
    /// active agent is scheduled again.
    pub async fn resume(&self) -> anyhow::Result<()> {
        let interrupted = self.inner.rec.store.mark_interrupted_runs(&now()).await?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "runs interrupted by the last stop were marked as such"
            );
        }
        let agents = self.inner.rec.store.active_agents().await?;
        for agent in &agents {
            self.schedule(&agent.agent_id);
        }
        tracing::info!(agents = agents.len(), "active agents scheduled");
        Ok(())
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
    pub async fn run(
        &self,
        agent_id: &str,
        run_id: &str,
        trigger: &str,
        params: Option<Value>,
    ) -> Execution {
        let token = {
            let mut slots = self.slots();
            let slot = slots.entry(agent_id.to_string()).or_default();
            if slot.run.is_some() {
                None
            } else {
                let token = self.inner.stop.child_token();
                slot.run = Some(token.clone());
                Some(token)
            }
        };
        let Some(token) = token else {
            return self.skipped(agent_id, run_id, trigger).await;
        };
        let execution = self
            .inner
            .tasks
            .track_future(cycle::run(
                &self.inner,
                agent_id,
                run_id,
                trigger,
                params,
                token,
            ))
            .await;
        if let Some(slot) = self.slots().get_mut(agent_id) {
            slot.run = None;
        }
        execution
    }

    async fn skipped(&self, agent_id: &str, run_id: &str, trigger: &str) -> Execution {
        let message = "skipped: a run of this agent is in progress";
        let at = now();
        let run = Run {
            run_id: run_id.to_string(),
            agent_id: agent_id.to_string(),
            trigger: trigger.to_string(),
            status: "skipped".into(),
            request: None,
            result: None,
            error: Some(message.into()),
            started_at: at.clone(),
            finished_at: Some(at.clone()),
        };
        let rec = &self.inner.rec;
        if let Ok(mut change) = rec.begin().await
            && let Ok(agent) = change.existing(agent_id).await
            && change.tx.insert_run(&run).await.is_ok()
            && change
                .emit(agent_id, events::log(agent_id, "warning", message, &at))
                .await
                .is_ok()
        {
            let _ = rec.commit(change, &agent.contract_id).await;
        }
        Execution {
            run_id: run_id.to_string(),
            ok: false,
            message: message.into(),
            results: Vec::new(),
            logs: vec![
                serde_json::json!({"timestamp": at, "level": "warning", "message": message}),
            ],
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
            let id = agent_id.clone();
            self.inner.tasks.spawn(async move {
                let run_id = uuid::Uuid::new_v4().to_string();
                runtime.run(&id, &run_id, "schedule", None).await;
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
        if change
            .tx
            .set_next_execution(agent_id, next.as_deref())
            .await
            .is_err()
        {
            return;
        }
        // Read in the transaction: it already has the new next_execution.
        let schedule = change.tx.schedule(agent_id).await.ok().flatten();
        if change
            .emit(agent_id, status_of(&agent, schedule.as_ref()))
            .await
            .is_ok()
        {
            let _ = rec.commit(change, &agent.contract_id).await;
        }
    }
}
