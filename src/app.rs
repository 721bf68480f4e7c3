//! Builds the shared state and the router, and serves them until shutdown.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{Router, middleware, routing::get};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

pub use crate::state::{AppState, Phase};
use crate::{
    agents::{
        Manager, Runtime, manager::Rules, outbound::Targets, runner::Everything,
        runtime::RuntimeSettings,
    },
    auth::Authenticator,
    config::Config,
    http,
    hub::Hub,
    origins::Origins,
    server::{self, Serving},
    store::Store,
    telemetry,
    tls::Tls,
    ws,
};

/// The routes of the one port.
pub fn router(state: Arc<AppState>, path_tokens: bool) -> Router {
    let cors = cors(state.origins.clone());
    let routes = Router::new()
        .route("/", get(http::health))
        .route("/health", get(http::health))
        .route("/ready", get(http::ready))
        .route("/metrics", get(http::metrics))
        .route("/ws/agent/{channel}", get(ws::upgrade))
        .merge(http::api::router())
        .merge(http::legacy::router())
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            http::known_host,
        ))
        .layer(middleware::from_fn(http::record_request))
        .layer(cors)
        .with_state(state);
    if !path_tokens {
        return routes;
    }
    // Before routing: the route sees its own path, the token rides along.
    let strip = tower::ServiceBuilder::new()
        .map_request(http::take_path_token)
        .service(routes);
    Router::new().fallback_service(strip)
}

/// CORS for browser pages of the allowed origins (`AGENTPORT_ALLOWED_ORIGINS`).
fn cors(origins: Origins) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, Any, CorsLayer};
    let allow = AllowOrigin::predicate(move |origin, _| {
        origin.to_str().is_ok_and(|o| origins.allows_cross(o))
    });
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods(Any)
        .allow_headers(Any)
        .max_age(Duration::from_secs(3600))
}

/// A bound server, not yet serving: tests read its address before they start it.
pub struct App {
    config: Config,
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    runtime: Runtime,
    store: Store,
    tls: Option<Arc<Tls>>,
}

impl App {
    pub async fn bind(config: Config) -> anyhow::Result<App> {
        crate::redact::register_config(&config);
        telemetry::metrics();
        crate::tls::install_crypto_provider();
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(Tls::load(cert, key)?),
            _ => None,
        };
        let addr = match config.socket_addr() {
            Some(addr) => addr,
            None => tokio::net::lookup_host((config.host.as_str(), config.port))
                .await
                .with_context(|| format!("resolving host {}", config.host))?
                .next()
                .with_context(|| format!("host {} has no address", config.host))?,
        };
        let listener = server::bind(addr).with_context(|| format!("binding {addr}"))?;
        let wanted = (config.max_connections + config.max_http_connections) as u64;
        match server::raise_open_files_limit() {
            Some(files) if files < wanted => tracing::warn!(
                open_files_limit = files,
                wanted,
                "the open files limit is below the connection limits: \
                 connections beyond it will fail to be accepted"
            ),
            _ => {}
        }
        let auth = Authenticator::from_config(&config)?;
        check_open(&config, &auth)?;
        let store = Store::connect_with(&config.database_url, config.db_timeout).await?;
        let hub = Hub::start();
        let settings = runtime_settings(&config)?;
        let runtime = Runtime::new(
            store.clone(),
            Arc::clone(&hub),
            settings,
            Arc::new(Everything),
        );
        let runner = Arc::new(runtime.clone());
        let rules = Rules {
            allowed_contracts: allowed_contracts(&config),
            targets: targets(&config),
            max_agents_per_owner: config.max_agents_per_owner,
        };
        let manager = Manager::new(store.clone(), hub, runner, rules);
        let state = Arc::new(AppState::new(&config, manager, auth)?);
        runtime.resume().await?;
        Ok(App {
            config,
            listener,
            state,
            runtime,
            store,
            tls,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn state(&self) -> Arc<AppState> {
        Arc::clone(&self.state)
    }

    /// The runner of this process's agents.
    pub fn runtime(&self) -> Runtime {
        self.runtime.clone()
    }

    /// Serves until `shutdown` resolves, then: `/ready` turns 503, the listener
    /// closes, WebSockets get 1001 in batches, in-flight work finishes. Fails when
    /// that takes longer than the grace period.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let (config, state, tls) = (self.config, self.state, self.tls);
        let (listener, runtime, store) = (self.listener, self.runtime, self.store);
        let stop = CancellationToken::new();
        let serving = Serving {
            router: router(Arc::clone(&state), config.path_tokens),
            tls: tls.clone(),
            stop: stop.clone(),
            tasks: state.tasks.clone(),
            header_timeout: config.header_timeout,
            http_slots: Arc::new(tokio::sync::Semaphore::new(
                config.max_http_connections.max(1),
            )),
        };
        let addr = listener.local_addr()?;
        let accepting = tokio::spawn(server::accept_loop(listener, serving));
        let reloading = tokio::spawn(reload_on_sighup(tls, stop.clone()));
        let retention = Retention {
            events: config.event_retention_count,
            event_days: config.event_retention_days,
            runs: config.run_retention_count,
            run_days: config.run_retention_days,
        };
        let pruning = tokio::spawn(prune(Arc::clone(&state), retention, stop.clone()));
        state.set_phase(Phase::Ready);
        tracing::info!(%addr, "listening");

        shutdown.await;
        state.set_phase(Phase::ShuttingDown);
        let grace = config.shutdown_grace;
        let deadline = tokio::time::Instant::now() + grace;
        if !config.shutdown_drain.is_zero() {
            tracing::info!(drain = ?config.shutdown_drain, "not ready; draining before closing the listener");
            tokio::time::sleep(config.shutdown_drain.min(grace / 2)).await;
        }
        stop.cancel();
        let _ = accepting.await;
        let _ = reloading.await;
        let _ = pruning.await;

        let open = state.registry.len();
        tracing::info!(connections = open, "closing websockets");
        let batch = config.shutdown_close_batch.max(1);
        let batches = open.div_ceil(batch).max(1) as u32;
        // Spread the batches over at most half the grace period.
        let pause = (grace / 2 / batches).min(Duration::from_millis(50));
        state.registry.stop_all(batch, pause).await;
        state.tasks.close();
        let drained = tokio::time::timeout_at(deadline, async {
            // Timers stop; runs in progress stop at their next safe point.
            runtime.shutdown().await;
            state.tasks.wait().await;
            state.registry.wait_empty().await;
        })
        .await;
        store.close().await;
        match drained {
            Ok(()) => {
                tracing::info!("shutdown complete");
                Ok(())
            }
            Err(_) => anyhow::bail!(
                "shutdown grace period of {grace:?} ran out with {} connection(s) open",
                state.registry.len()
            ),
        }
    }
}

/// An open server (`AGENTPORT_AUTH=none`) lets anyone who reaches the port
/// drive every agent: with a signing key that is spending from it, so it is
/// refused unless asked for by name.
fn check_open(config: &Config, auth: &Authenticator) -> anyhow::Result<()> {
    if !auth.is_open() {
        return Ok(());
    }
    let writes = config.evm_private_key.is_some() || config.contract_api_url.is_some();
    if writes && !config.allow_unauthenticated {
        anyhow::bail!(
            "AGENTPORT_AUTH=none with EVM_PRIVATE_KEY or CONTRACT_API_URL set would let anyone \
             who reaches the port send transactions: set AGENTPORT_AUTH=token or jwt, or \
             AGENTPORT_ALLOW_UNAUTHENTICATED=1 for a private development setup"
        );
    }
    tracing::warn!(
        "AUTHENTICATION IS OFF (AGENTPORT_AUTH=none): anyone who reaches this port controls \
         every agent. Use it for development only."
    );
    Ok(())
}

/// SIGHUP re-reads the TLS certificate. Without TLS it is ignored rather than
/// left to its default action (exit).
async fn reload_on_sighup(tls: Option<Arc<Tls>>, stop: CancellationToken) {
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            received = hangup.recv() => if received.is_none() { return },
        }
        match &tls {
            Some(tls) => match tls.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(error) => tracing::error!(
                    error = format!("{error:#}"),
                    "TLS reload failed, keeping the old certificate"
                ),
            },
            None => tracing::info!("SIGHUP: no TLS certificate to reload"),
        }
    }
}

/// The executor, LLM client and notifier the configuration asks for.
fn runtime_settings(config: &Config) -> anyhow::Result<RuntimeSettings> {
    use crate::agents::{
        notify::{Notifier, NotifierSettings},
        policy::llm::LlmClient,
    };
    let llm = match &config.openai_api_key {
        Some(key) => Some(
            LlmClient::new(
                &config.openai_base_url,
                key.clone(),
                llm_models(config),
                config.llm_timeout,
            )
            .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    let notifier = Notifier::new(NotifierSettings {
        telegram_api: config.telegram_api_url.clone(),
        telegram_token: config.telegram_bot_token.clone(),
        smtp_url: config.smtp_url.clone(),
        smtp_from: config.smtp_from.clone(),
        attempts: config.notify_attempts,
        backoff: config.notify_backoff,
        targets: targets(config),
        per_hour: config.notifications_per_hour,
        ..NotifierSettings::default()
    });
    Ok(RuntimeSettings {
        executor: executor(config)?,
        max_actions: config.max_actions_per_run,
        allowed_contracts: allowed_contracts(config),
        reconcile_every: config.reconcile_every,
        run_grace: config.run_grace,
        max_concurrent_runs: config.max_concurrent_runs,
        llm,
        notifier,
    })
}

/// The executor `AGENTPORT_EXECUTOR` asks for, if its settings are there.
fn executor(config: &Config) -> anyhow::Result<Option<crate::agents::executor::Executor>> {
    use crate::{
        agents::executor::{EvmExecutor, Executor, HttpExecutor, evm},
        config::ExecutorKind,
    };
    let evm = || -> anyhow::Result<Option<Executor>> {
        let Some(url) = &config.evm_rpc_url else {
            return Ok(None);
        };
        let key = config.evm_private_key.as_ref().map(|k| k.expose());
        let max_fee_wei = evm::gwei_to_wei(config.max_fee_gwei.trim())
            .map_err(|e| anyhow::anyhow!("AGENTPORT_MAX_FEE_GWEI: {e}"))?;
        let timeouts = evm::Timeouts {
            rpc: config.rpc_timeout,
            receipt: config.receipt_timeout,
            max_fee_wei,
        };
        let evm = EvmExecutor::new(url, key, timeouts).map_err(anyhow::Error::msg)?;
        Ok(Some(Executor::Evm(evm)))
    };
    let http = || -> anyhow::Result<Option<Executor>> {
        let Some(url) = &config.contract_api_url else {
            return Ok(None);
        };
        let http = HttpExecutor::new(url, config.receipt_timeout).map_err(anyhow::Error::msg)?;
        Ok(Some(Executor::Http(http)))
    };
    let executor = match config.executor {
        ExecutorKind::Auto => match evm()? {
            Some(evm) => Some(evm),
            None => http()?,
        },
        ExecutorKind::Evm => Some(evm()?.context("AGENTPORT_EXECUTOR=evm needs EVM_RPC_URL")?),
        ExecutorKind::Http => {
            Some(http()?.context("AGENTPORT_EXECUTOR=http needs CONTRACT_API_URL")?)
        }
    };
    match &executor {
        Some(executor) => tracing::info!(
            executor = executor.name(),
            "agents' calls go through this executor"
        ),
        None => tracing::warn!(
            "no executor configured (EVM_RPC_URL or CONTRACT_API_URL): runs can only observe nothing"
        ),
    }
    Ok(executor)
}

/// The models `llm` policies may name, the default first.
fn llm_models(config: &Config) -> Vec<String> {
    let listed: Vec<String> = config
        .llm_models
        .iter()
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect();
    if listed.is_empty() {
        vec![config.model.clone()]
    } else {
        listed
    }
}

fn targets(config: &Config) -> Targets {
    Targets {
        allow_private: config.allow_private_targets,
    }
}

/// `AGENTPORT_CONTRACT_ALLOWLIST`, lowercase, without blanks.
fn allowed_contracts(config: &Config) -> Vec<String> {
    config
        .contract_allowlist
        .iter()
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect()
}

/// Every minute until `stop`: event and run retention, and quiet client
/// addresses forgotten by the connection limiter.
async fn prune(state: Arc<AppState>, keep: Retention, stop: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        state.connections.forget_quiet();
        let manager = &state.manager;
        let (event_cutoff, run_cutoff) = (cutoff(keep.event_days), cutoff(keep.run_days));
        let events = manager.prune_events(Some(keep.events), event_cutoff.as_deref());
        let runs = manager.prune_runs(keep.runs, run_cutoff.as_deref());
        for (what, pruned) in [("events", events.await), ("runs", runs.await)] {
            match pruned {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, what, "old records removed"),
                Err(error) => tracing::warn!(%error, what, "retention failed"),
            }
        }
    }
}

/// What is kept of agents' history.
#[derive(Debug, Clone, Copy)]
struct Retention {
    events: u64,
    event_days: u64,
    runs: u64,
    run_days: u64,
}

/// The time `days` ago, when there is an age limit.
fn cutoff(days: u64) -> Option<String> {
    (days > 0).then(|| {
        crate::model::format_time(chrono::Utc::now() - chrono::Duration::days(days as i64))
    })
}

/// Binds and serves until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    App::bind(config).await?.serve(shutdown).await
}
