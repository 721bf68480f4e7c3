//! Helpers shared by the integration tests: a real server on port 0, real
//! WebSocket clients, and waiting on conditions with deadlines (never sleeps).
#![allow(dead_code)]

pub mod abuse;
pub mod chain;
pub mod client;
pub mod fake;
pub mod pg;
pub mod process;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use agentport::{
    App, Config,
    agents::{Runtime, commands::ListRuns},
    app::AppState,
    model::{Caller, Run},
};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, protocol::CloseFrame},
};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The longest any single expectation may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A server running in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    /// The runner of the server's agents.
    pub runtime: Runtime,
    pub database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A server on a fresh SQLite file of its own.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("agentport.db").display());
        let mut server = Self::start_on(&url, configure).await;
        server._dir = Some(dir);
        server
    }

    /// A server on the database at `database_url` (kept by the caller).
    pub async fn start_on(database_url: &str, configure: impl FnOnce(&mut Config)) -> TestServer {
        // Logs go to the test's output (shown for failures); RUST_LOG filters.
        if std::env::var_os("RUST_LOG").is_some() {
            agentport::telemetry::init_logging(agentport::config::LogFormat::Text);
        }
        let mut config = Config::for_tests(database_url);
        // Test clients that are still open at shutdown do not read: do not wait
        // long for their close replies.
        config.ws_close_timeout = Duration::from_secs(1);
        configure(&mut config);
        let app = App::bind(config).await.expect("bind test server");
        let addr = app.local_addr();
        let state = app.state();
        let runtime = app.runtime();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.serve(async move {
            let _ = rx.await;
        }));
        let server = TestServer {
            addr,
            state,
            runtime,
            database_url: database_url.to_string(),
            shutdown: Some(tx),
            handle: Some(handle),
            _dir: None,
        };
        wait_until("server ready", || async {
            server.state.phase() == agentport::app::Phase::Ready
        })
        .await;
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, channel: &str) -> String {
        format!("ws://{}/ws/agent/{}", self.addr, channel)
    }

    pub async fn connect(&self, channel: &str) -> Ws {
        let (ws, _) = connect_async(self.ws_url(channel))
            .await
            .expect("websocket connect");
        ws
    }

    /// Starts the graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Shuts down and returns what `serve` returned.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.begin_shutdown();
        let handle = self.handle.take().unwrap();
        tokio::time::timeout(DEADLINE, handle)
            .await
            .expect("server shut down in time")
            .expect("server task did not panic")
    }
}

/// Polls `condition` until it holds; panics with `what` after `DEADLINE`.
pub async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls `probe` until it yields a value; panics with `what` after `DEADLINE`.
pub async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn send_json(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string()))
        .await
        .expect("send");
}

/// The next frame of any kind, within the deadline.
pub async fn next_message(ws: &mut Ws) -> Option<Message> {
    tokio::time::timeout(DEADLINE, ws.next())
        .await
        .expect("a frame within the deadline")
        .map(|m| m.expect("read frame"))
}

/// The next text frame parsed as JSON (skipping control frames).
pub async fn recv_json(ws: &mut Ws) -> Value {
    loop {
        match next_message(ws).await {
            Some(Message::Text(text)) => return serde_json::from_str(&text).expect("json frame"),
            Some(Message::Ping(_) | Message::Pong(_)) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads until the server's Close frame and returns it (text frames before it
/// are skipped). Reads on until the stream ends, which sends the close reply, as
/// a well-behaved client does.
pub async fn recv_close(ws: &mut Ws) -> CloseFrame {
    loop {
        match next_message(ws).await {
            Some(Message::Close(Some(frame))) => {
                let _ = tokio::time::timeout(DEADLINE, async {
                    while let Some(Ok(_)) = ws.next().await {}
                })
                .await;
                return frame;
            }
            Some(Message::Close(None)) => panic!("close frame without a code"),
            None => panic!("connection ended without a close frame"),
            Some(_) => continue,
        }
    }
}

/// reqwest's TLS needs a process-wide crypto provider (ring, as the server).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A GET with a fresh connection: (status, content-type, body).
pub async fn get(url: &str) -> (u16, String, String) {
    install_crypto();
    let response = reqwest::get(url).await.expect("http get");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// The value of one Prometheus sample (`name{labels}`), 0 when absent.
pub fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().unwrap())
        })
        .unwrap_or(0.0)
}

/// The Python of the test venv, installed by `scripts/test-deps` on first use.
pub fn python() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new(root.join("scripts/test-deps"))
        .status()
        .expect("run scripts/test-deps");
    assert!(
        status.success(),
        "scripts/test-deps failed: python3 with venv and pip is needed"
    );
    let cache = std::env::var_os("AGENTPORT_TEST_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join(".cache"));
    cache.join("venv/bin/python")
}

/// The agent's most recent runs, newest first, as the manager lists them.
pub async fn runs_of(server: &TestServer, agent_id: &str, limit: u32) -> Vec<Run> {
    let command = ListRuns {
        agent_id: agent_id.to_string(),
        limit,
        before: None,
    };
    server
        .state
        .manager
        .handle(&Caller::local(), command)
        .await
        .unwrap()
        .runs
}
