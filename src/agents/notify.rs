//! Notifications after a run that acted or failed: webhook, Discord, Telegram,
//! email. Delivered in the background with bounded retries; a delivery that
//! still fails becomes a `log` event of the agent, and never touches the run.

use std::time::Duration;

use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Value, json};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use std::{num::NonZeroU32, sync::Arc};

use governor::{DefaultKeyedRateLimiter, Quota};

use super::{
    outbound::Targets,
    outcome::ActionOutcome,
    recorder::Recorder,
    retry::{Attempt, GaveUp, Retry},
};
use crate::{
    config::Secret,
    model::{AgentDetails, LogLevel, Notification, NotificationType, RunStatus, now},
    protocol::events,
};

/// Runs whose notifications may be on their way at once.
const MAX_IN_FLIGHT: usize = 256;

/// The run a notification is about.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    pub run_id: &'a str,
    pub status: RunStatus,
    pub message: &'a str,
    pub results: &'a [ActionOutcome],
}

#[derive(Debug, Clone)]
pub struct Notifier {
    http: reqwest::Client,
    telegram_api: String,
    telegram_token: Option<Secret>,
    smtp_url: Option<Secret>,
    smtp_from: String,
    retry: Retry,
    targets: Targets,
    /// Notifications per agent and hour, every channel counted.
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    /// Deliveries in flight at once: a flood of runs cannot pile up tasks.
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl Default for Notifier {
    fn default() -> Self {
        Self::new(NotifierSettings::default())
    }
}

/// Where notifications go out from.
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    pub telegram_api: String,
    pub telegram_token: Option<Secret>,
    pub smtp_url: Option<Secret>,
    pub smtp_from: String,
    pub attempts: u32,
    pub backoff: Duration,
    pub timeout: Duration,
    /// Where webhook and Discord URLs may point.
    pub targets: Targets,
    /// Notifications one agent may send per hour (0: no limit).
    pub per_hour: u32,
}

impl Default for NotifierSettings {
    fn default() -> Self {
        Self {
            telegram_api: "https://api.telegram.org".into(),
            telegram_token: None,
            smtp_url: None,
            smtp_from: "agentport <agentport@localhost>".into(),
            attempts: 3,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
            targets: Targets::default(),
            per_hour: 60,
        }
    }
}

impl Notifier {
    pub fn new(settings: NotifierSettings) -> Self {
        let http = settings.targets.client(settings.timeout);
        let limiter = NonZeroU32::new(settings.per_hour)
            .map(|n| Arc::new(DefaultKeyedRateLimiter::keyed(Quota::per_hour(n))));
        Self {
            http,
            targets: settings.targets,
            limiter,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
            telegram_api: settings.telegram_api.trim_end_matches('/').to_string(),
            telegram_token: settings.telegram_token,
            smtp_url: settings.smtp_url,
            smtp_from: settings.smtp_from,
            retry: Retry {
                attempts: settings.attempts.max(1),
                backoff: settings.backoff,
            },
        }
    }

    /// Sends the agent's enabled notifications about a run, in the background
    /// (tracked, so that shutdown waits for them; `stop` cuts their retries).
    pub fn after_run(
        &self,
        rec: Recorder,
        details: &AgentDetails,
        run: Report<'_>,
        tasks: &TaskTracker,
        stop: &CancellationToken,
    ) {
        let Report {
            run_id,
            status,
            message,
            results,
        } = run;
        let targets: Vec<Notification> = details
            .notifications
            .iter()
            .filter(|n| n.is_enabled)
            .cloned()
            .collect();
        if targets.is_empty() {
            return;
        }
        let report = json!({
            "agent_id": details.agent.agent_id, "agent_name": details.agent.name,
            "contract": details.agent.contract_id, "run_id": run_id, "status": status,
            "message": message, "results": results, "timestamp": now(),
        });
        let Ok(permit) = Arc::clone(&self.in_flight).try_acquire_owned() else {
            tracing::warn!(agent = %details.agent.agent_id, "notifications dropped: too many in flight");
            return;
        };
        let notifier = self.clone();
        let agent = details.agent.clone();
        let stop = stop.clone();
        tasks.spawn(async move {
            let _permit = permit;
            for target in targets {
                if notifier.over_limit(&agent.agent_id, &target) {
                    let line = "a notification was not sent: over the agent's hourly limit";
                    let event = events::log(&agent.agent_id, LogLevel::Warning, line, &now());
                    let _ = rec.emit(&agent, event).await;
                    continue;
                }
                let delivered = tokio::select! {
                    _ = stop.cancelled() => Err("the server stopped before it was sent".to_string()),
                    delivered = notifier.deliver(&target, &report) => delivered,
                };
                if let Err(error) = delivered {
                    let kind = target.notification_type.as_str();
                    let line = format!("{kind} notification failed: {error}");
                    tracing::warn!(agent = %agent.agent_id, "{line}");
                    let event = events::log(&agent.agent_id, LogLevel::Warning, &line, &now());
                    let _ = rec.emit(&agent, event).await;
                }
            }
        });
    }

    /// Whether the agent, or the email's recipient, has had all it may this
    /// hour (this one counts).
    fn over_limit(&self, agent_id: &str, target: &Notification) -> bool {
        let Some(limiter) = &self.limiter else {
            return false;
        };
        let recipient = match target.notification_type {
            NotificationType::Email => setting(&target.configuration, "emailAddress").ok(),
            _ => None,
        };
        if limiter.len() > 10_000 {
            // Keys of agents and recipients quiet for an hour go: bounded memory.
            limiter.retain_recent();
        }
        let over = |key: String| limiter.check_key(&key).is_err();
        over(format!("agent:{agent_id}"))
            || recipient.is_some_and(|to| over(format!("email:{}", to.to_ascii_lowercase())))
    }

    /// One notification, retried with exponential backoff.
    async fn deliver(&self, target: &Notification, report: &Value) -> Result<(), String> {
        let sent = self
            .retry
            .run(|| async { self.send(target, report).await.map_err(Attempt::Again) })
            .await;
        match sent {
            Ok(()) => Ok(()),
            Err(GaveUp::Fatal(error)) => Err(error),
            Err(GaveUp::Exhausted { last, attempts }) => {
                Err(format!("{last} (after {attempts} attempt(s))"))
            }
        }
    }

    async fn send(&self, target: &Notification, report: &Value) -> Result<(), String> {
        let config = &target.configuration;
        let text = summary(report);
        match target.notification_type {
            NotificationType::Webhook => self.post(setting(config, "url")?, report).await,
            NotificationType::Discord => {
                self.post(setting(config, "webhookUrl")?, &json!({"content": text}))
                    .await
            }
            NotificationType::Telegram => {
                let token = self
                    .telegram_token
                    .as_ref()
                    .ok_or("TELEGRAM_BOT_TOKEN is not configured")?;
                let chat = match config.get("chatId") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => return Err("configuration.chatId is missing".into()),
                };
                // The operator's API, not a client's URL: no target check.
                let url = format!("{}/bot{}/sendMessage", self.telegram_api, token.expose());
                self.send_json(&url, &json!({"chat_id": chat, "text": text}))
                    .await
            }
            NotificationType::Email => {
                self.email(setting(config, "emailAddress")?, &text, report)
                    .await
            }
        }
    }

    async fn post(&self, url: &str, body: &Value) -> Result<(), String> {
        self.targets
            .check_url(url)
            .await
            .map_err(|why| format!("the URL {why}"))?;
        self.send_json(url, body).await
    }

    async fn send_json(&self, url: &str, body: &Value) -> Result<(), String> {
        let response = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("unreachable: {}", e.without_url()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", response.status()))
        }
    }

    async fn email(&self, to: &str, text: &str, report: &Value) -> Result<(), String> {
        let url = self.smtp_url.as_ref().ok_or("SMTP_URL is not configured")?;
        let message = Message::builder()
            .from(
                self.smtp_from
                    .parse()
                    .map_err(|e| format!("AGENTPORT_SMTP_FROM: {e}"))?,
            )
            .to(to
                .parse()
                .map_err(|_| "emailAddress is not a valid address".to_string())?)
            .subject(format!(
                "agentport: {} run {}",
                report["agent_name"].as_str().unwrap_or("agent"),
                report["status"].as_str().unwrap_or("")
            ))
            .body(format!(
                "{text}\n\n{}",
                serde_json::to_string_pretty(report).unwrap_or_default()
            ))
            .map_err(|e| format!("building the email: {e}"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
            .map_err(|_| "SMTP_URL is not a valid smtp:// or smtps:// URL".to_string())?
            .timeout(Some(Duration::from_secs(10)))
            .build();
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }
}

fn setting<'a>(config: &'a Value, key: &str) -> Result<&'a str, String> {
    config
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("configuration.{key} is missing"))
}

fn summary(report: &Value) -> String {
    format!(
        "Agent {} ({}): run {} {} — {}",
        report["agent_name"].as_str().unwrap_or(""),
        report["agent_id"].as_str().unwrap_or(""),
        report["run_id"].as_str().unwrap_or(""),
        report["status"].as_str().unwrap_or(""),
        report["message"].as_str().unwrap_or("")
    )
}
