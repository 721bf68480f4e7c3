//! Logs (tracing) and metrics (Prometheus), set up once per process.
//!
//! Log lines never carry a configuration value or a message payload at `info`:
//! either may hold a secret.

use std::{io::IsTerminal, sync::OnceLock, thread, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Metric names, in one place so that dashboards and tests can rely on them.
pub mod names {
    pub const WS_OPEN: &str = "agentport_ws_connections_open";
    pub const WS_ACCEPTED: &str = "agentport_ws_connections_accepted_total";
    pub const WS_REJECTED: &str = "agentport_ws_connections_rejected_total";
    pub const WS_CLOSED: &str = "agentport_ws_connections_closed_total";
    pub const WS_FRAMES_IN: &str = "agentport_ws_frames_in_total";
    pub const WS_FRAMES_OUT: &str = "agentport_ws_frames_out_total";
    pub const WS_ERRORS: &str = "agentport_ws_errors_total";
    pub const WS_SLOW_CONSUMERS: &str = "agentport_ws_slow_consumers_total";
    pub const WS_HANDLE_SECONDS: &str = "agentport_ws_message_handling_seconds";
    pub const HTTP_REQUESTS: &str = "agentport_http_requests_total";
    pub const HUB_SUBSCRIPTIONS: &str = "agentport_hub_subscriptions";
    pub const TASKS_ALIVE: &str = "agentport_tasks_alive";
}

/// Handles of one metric labelled by message type, each looked up in the
/// recorder once: a lookup hashes the whole key and allocates its labels, which
/// on the per-message path cost more than the count itself. Label values are
/// `&'static str` from closed sets, so the map stays small.
pub struct ByType<M> {
    handles: std::sync::RwLock<std::collections::HashMap<&'static str, M>>,
    register: fn(&'static str) -> M,
}

impl<M: Clone> ByType<M> {
    pub fn new(register: fn(&'static str) -> M) -> Self {
        Self {
            handles: Default::default(),
            register,
        }
    }

    pub fn get(&self, kind: &'static str) -> M {
        let cached = self.handles.read().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = cached.get(kind) {
            return handle.clone();
        }
        drop(cached);
        let mut handles = self.handles.write().unwrap_or_else(|e| e.into_inner());
        handles
            .entry(kind)
            .or_insert_with(|| (self.register)(kind))
            .clone()
    }
}

/// Frames received, by message type.
pub fn frames_in(kind: &'static str) -> metrics::Counter {
    static HANDLES: std::sync::LazyLock<ByType<metrics::Counter>> =
        std::sync::LazyLock::new(|| {
            ByType::new(|kind| metrics::counter!(names::WS_FRAMES_IN, "type" => kind))
        });
    HANDLES.get(kind)
}

/// Frames queued for sending, by message type.
pub fn frames_out(kind: &'static str) -> metrics::Counter {
    static HANDLES: std::sync::LazyLock<ByType<metrics::Counter>> =
        std::sync::LazyLock::new(|| {
            ByType::new(|kind| metrics::counter!(names::WS_FRAMES_OUT, "type" => kind))
        });
    HANDLES.get(kind)
}

/// Time to handle one message, by message type.
pub fn handling_seconds(kind: &'static str) -> metrics::Histogram {
    static HANDLES: std::sync::LazyLock<ByType<metrics::Histogram>> =
        std::sync::LazyLock::new(|| {
            ByType::new(|kind| metrics::histogram!(names::WS_HANDLE_SECONDS, "type" => kind))
        });
    HANDLES.get(kind)
}

/// Installs the global log subscriber. The level comes from `RUST_LOG` (default
/// `info`); a second call (tests) is a no-op. Every line passes `redact`.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Redacting(std::io::stdout()));
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Writes log lines with their secrets removed.
struct Redacting<W>(W);

impl<W: std::io::Write> std::io::Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(crate::redact::clean(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The process-wide Prometheus recorder. Metrics are global to a process, so
/// every server started in one process (tests) shares it.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(names::WS_HANDLE_SECONDS.into()),
                &[
                    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                    0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            )
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        // Histograms are drained into their buckets by upkeep; without it their
        // samples would pile up between scrapes.
        let upkeep = handle.clone();
        thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .expect("spawn metrics upkeep thread");
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    use names::*;
    describe_gauge!(WS_OPEN, "WebSocket connections open now");
    describe_counter!(WS_ACCEPTED, "WebSocket connections accepted");
    describe_counter!(WS_REJECTED, "WebSocket upgrades refused, by reason");
    describe_counter!(WS_CLOSED, "WebSocket connections closed, by close code");
    describe_counter!(WS_FRAMES_IN, "text frames received, by message type");
    describe_counter!(WS_FRAMES_OUT, "frames queued for sending, by message type");
    describe_counter!(WS_ERRORS, "error replies sent, by error code");
    describe_counter!(
        WS_SLOW_CONSUMERS,
        "connections closed for not reading fast enough"
    );
    describe_histogram!(
        WS_HANDLE_SECONDS,
        "time to handle one client message, by type"
    );
    describe_counter!(HTTP_REQUESTS, "HTTP requests, by route and status");
    describe_gauge!(
        HUB_SUBSCRIPTIONS,
        "topics followed by sessions of this process (one per session and topic)"
    );
    describe_gauge!(
        TASKS_ALIVE,
        "tasks alive in the server's runtime at the last scrape (a leak shows as growth)"
    );
    // Registered now so that the gauge is scraped as 0 before the first connection.
    metrics::gauge!(WS_OPEN).increment(0.0);
    metrics::gauge!(HUB_SUBSCRIPTIONS).increment(0.0);
}
