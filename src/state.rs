//! What the edges (`http`, `ws`) share: the agent manager, the session
//! registry, session settings and where the server is in its life. Built by
//! `app`, which is the only module above this one.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    time::{Duration, Instant},
};

use tokio_util::task::TaskTracker;

use crate::{
    agents::Manager,
    auth::{Authenticates, Authenticator},
    config::Config,
    limits::Connections,
    origins::Origins,
    registry::Registry,
};

/// Where the server is in its life, as `/ready` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    Ready = 1,
    ShuttingDown = 2,
}

/// The limits and timers of every WebSocket session, taken from the
/// configuration once.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub max_message_bytes: usize,
    pub read_buffer_bytes: usize,
    pub outbound_frames: usize,
    pub outbound_bytes: usize,
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    pub close_timeout: Duration,
    pub write_timeout: Duration,
}

impl SessionSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_message_bytes: config.max_message_bytes,
            read_buffer_bytes: config.ws_read_buffer_bytes,
            outbound_frames: config.ws_outbound_frames,
            outbound_bytes: config.ws_outbound_bytes,
            ping_interval: config.ws_ping_interval,
            idle_timeout: config.ws_idle_timeout,
            close_timeout: config.ws_close_timeout,
            write_timeout: config.ws_write_timeout,
        }
    }
}

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub ws: SessionSettings,
    pub registry: Arc<Registry>,
    pub manager: Manager,
    /// Who is calling, for every request of both edges.
    pub auth: Arc<Authenticator>,
    /// Which browser pages may call.
    pub origins: Origins,
    /// New connections per client address, and who the client is.
    pub connections: Connections,
    /// Messages per second per connection (0: no limit).
    pub messages_per_second: u32,
    /// Every connection and session task, so that shutdown can wait for them.
    pub tasks: TaskTracker,
    pub started_at: Instant,
    phase: AtomicU8,
}

impl AppState {
    pub fn new(config: &Config, manager: Manager, auth: Authenticator) -> anyhow::Result<Self> {
        Ok(Self {
            ws: SessionSettings::from_config(config),
            registry: Registry::new(config.max_connections),
            manager,
            auth: Arc::new(auth),
            origins: Origins::from_config(config),
            connections: Connections::from_config(config)?,
            messages_per_second: config.ws_messages_per_second,
            tasks: TaskTracker::new(),
            started_at: Instant::now(),
            phase: AtomicU8::new(Phase::Starting as u8),
        })
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Ready,
            _ => Phase::ShuttingDown,
        }
    }

    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.phase() == Phase::ShuttingDown
    }
}

impl Authenticates for Arc<AppState> {
    fn authenticator(&self) -> &Authenticator {
        &self.auth
    }
}
