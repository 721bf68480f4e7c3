//! Every open WebSocket session, so that the server can count them, refuse new
//! ones over the limit, and close them all on shutdown.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{protocol::CloseCode, telemetry::names};

/// Why a session ended: decided once, by whichever side sees it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The server closes the connection with this code and reason.
    Server(CloseCode, &'static str),
    /// The peer sent a Close frame (with this code, if any).
    PeerClosed(Option<u16>),
    /// The connection broke without a close handshake.
    PeerGone,
}

impl Ending {
    /// The metric label of the close code the connection ended with.
    pub fn label(self) -> &'static str {
        match self {
            Ending::Server(code, _) => code.label(),
            Ending::PeerClosed(Some(1000)) => "1000",
            Ending::PeerClosed(Some(1001)) => "1001",
            Ending::PeerClosed(None) => "1005",
            Ending::PeerClosed(Some(_)) => "other",
            Ending::PeerGone => "1006",
        }
    }
}

/// The shared signals of one session: a request to stop taking messages (shutdown),
/// and the decision that the session ends, with its reason.
#[derive(Debug, Clone, Default)]
pub struct Control {
    inner: Arc<ControlInner>,
}

#[derive(Debug, Default)]
struct ControlInner {
    stop: CancellationToken,
    ended: CancellationToken,
    ending: OnceLock<Ending>,
}

impl Control {
    /// Ends the session. The first reason wins; returns whether it was this one.
    pub fn end(&self, ending: Ending) -> bool {
        let first = self.inner.ending.set(ending).is_ok();
        self.inner.ended.cancel();
        first
    }

    pub fn ending(&self) -> Option<Ending> {
        self.inner.ending.get().copied()
    }

    /// Resolves once the session has ended.
    pub async fn ended(&self) {
        self.inner.ended.cancelled().await
    }

    /// Asks the session to finish the message in hand and close with 1001.
    pub fn request_stop(&self) {
        self.inner.stop.cancel();
    }

    pub async fn stop_requested(&self) {
        self.inner.stop.cancelled().await
    }
}

/// Why a new session was not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max` sessions are open.
    Full,
    /// The server is shutting down.
    Closed,
}

/// The set of open sessions, bounded by `max`.
#[derive(Debug)]
pub struct Registry {
    max: usize,
    open: AtomicUsize,
    next_id: AtomicU64,
    sessions: Mutex<Sessions>,
    emptied: Notify,
}

#[derive(Debug, Default)]
struct Sessions {
    by_id: HashMap<u64, Control>,
    /// Set by `stop_all`: no session is registered after it.
    closed: bool,
}

impl Registry {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            sessions: Mutex::new(Sessions::default()),
            emptied: Notify::new(),
        })
    }

    /// Reserves a place for a new session, or `None` when `max` are open or the
    /// server is shutting down. The place is freed when the returned guard is
    /// dropped, however the session ends.
    pub fn try_register(self: &Arc<Self>) -> Result<Registration, Refused> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .map_err(|_| Refused::Full)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let control = Control::default();
        {
            let mut sessions = self.lock();
            if sessions.closed {
                drop(sessions);
                self.release();
                return Err(Refused::Closed);
            }
            sessions.by_id.insert(id, control.clone());
        }
        metrics::gauge!(names::WS_OPEN).increment(1.0);
        Ok(Registration {
            registry: Arc::clone(self),
            id,
            control,
        })
    }

    /// Sessions open now (including upgrades in progress).
    pub fn len(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses new sessions from now on, then asks every open one to close with
    /// 1001, `batch` at a time with `pause` between batches, so that clients do
    /// not all reconnect at the same instant.
    pub async fn stop_all(&self, batch: usize, pause: Duration) {
        let controls: Vec<Control> = {
            let mut sessions = self.lock();
            sessions.closed = true;
            sessions.by_id.values().cloned().collect()
        };
        for (i, chunk) in controls.chunks(batch.max(1)).enumerate() {
            if i > 0 {
                tokio::time::sleep(pause).await;
            }
            chunk.iter().for_each(Control::request_stop);
        }
    }

    /// Resolves once no session is open.
    pub async fn wait_empty(&self) {
        loop {
            let notified = self.emptied.notified();
            if self.is_empty() {
                return;
            }
            notified.await;
        }
    }

    fn release(&self) {
        if self.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.emptied.notify_waiters();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A session's place in the registry; dropping it frees the place, so a session
/// that errors, panics or loses its TCP connection is always unregistered.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<Registry>,
    id: u64,
    control: Control,
}

impl Registration {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn control(&self) -> &Control {
        &self.control
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // If the session died without deciding (a panic), its writer must still stop.
        self.control
            .end(Ending::Server(CloseCode::Internal, "internal error"));
        self.registry.lock().by_id.remove(&self.id);
        metrics::gauge!(names::WS_OPEN).decrement(1.0);
        self.registry.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_enforced_and_places_are_freed_on_drop() {
        let registry = Registry::new(2);
        let a = registry.try_register().unwrap();
        let b = registry.try_register().unwrap();
        assert_eq!(registry.try_register().unwrap_err(), Refused::Full);
        assert_eq!(registry.len(), 2);
        drop(a);
        let c = registry.try_register().unwrap();
        drop((b, c));
        assert!(registry.is_empty());
    }

    #[tokio::test]
    async fn a_panicking_session_is_unregistered() {
        let registry = Registry::new(1);
        let registration = registry.try_register().unwrap();
        let control = registration.control().clone();
        let task = tokio::spawn(async move {
            let _registration = registration;
            panic!("handler bug");
        });
        assert!(task.await.unwrap_err().is_panic());
        assert!(registry.is_empty());
        // Its writer is told to stop, with 1011.
        assert_eq!(
            control.ending(),
            Some(Ending::Server(CloseCode::Internal, "internal error"))
        );
        assert!(registry.try_register().is_ok());
    }

    #[test]
    fn first_ending_wins() {
        let control = Control::default();
        assert!(control.end(Ending::PeerGone));
        assert!(!control.end(Ending::Server(CloseCode::TooBig, "big")));
        assert_eq!(control.ending(), Some(Ending::PeerGone));
    }

    #[tokio::test]
    async fn stop_all_reaches_every_session() {
        let registry = Registry::new(10);
        let regs: Vec<_> = (0..5).map(|_| registry.try_register().unwrap()).collect();
        registry.stop_all(2, Duration::from_millis(1)).await;
        for reg in &regs {
            reg.control().stop_requested().await;
        }
        assert_eq!(registry.try_register().unwrap_err(), Refused::Closed);
        drop(regs);
        registry.wait_empty().await;
    }
}
