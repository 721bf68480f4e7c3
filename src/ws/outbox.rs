//! The bounded queue between a session's handlers and its writer task.
//!
//! Bounded in frames and in bytes. When a client does not read, its queue fills;
//! the session is then closed with 1013 instead of letting memory grow.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;

use super::queue::{Queue, Refused};
use crate::registry::{Control, Ending};
use crate::{
    protocol::{CloseCode, Frame},
    telemetry::{self, names},
};

/// Where handlers put frames for one client.
#[derive(Debug, Clone)]
pub struct Outbox {
    queue: Arc<Queue<Utf8Bytes>>,
    control: Control,
}

/// The writer's end of the queue; dropping it closes the queue.
#[derive(Debug)]
pub struct Outgoing {
    queue: Arc<Queue<Utf8Bytes>>,
}

pub fn channel(max_frames: usize, max_bytes: usize, control: Control) -> (Outbox, Outgoing) {
    let queue = Arc::new(Queue::new(max_frames, max_bytes));
    (
        Outbox {
            queue: Arc::clone(&queue),
            control,
        },
        Outgoing { queue },
    )
}

impl Outbox {
    /// The session this outbox belongs to.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Queues a frame without waiting. Returns false when the session is over,
    /// or is now being closed because its queue is full.
    pub fn send(&self, frame: Frame) -> bool {
        let kind = frame.kind();
        self.send_text(kind, Utf8Bytes::from(frame.into_text()))
    }

    /// Queues an already encoded frame (shared by every subscriber of an event).
    pub fn send_text(&self, kind: &'static str, text: Utf8Bytes) -> bool {
        if self.control.ending().is_some() {
            return false;
        }
        let len = text.len();
        self.queued(kind, self.queue.try_push(text, len))
    }

    /// Queues a frame, waiting (bounded) for room instead of failing: for replays,
    /// which may be far longer than the queue. A client that does not make room
    /// within `PACED_WAIT` is closed with 1013.
    pub async fn send_paced(&self, kind: &'static str, text: Utf8Bytes) -> bool {
        if self.control.ending().is_some() {
            return false;
        }
        let len = text.len();
        let pushed = self.queue.push(text, len, Some(PACED_WAIT)).await;
        self.queued(kind, pushed)
    }

    fn queued(&self, kind: &'static str, pushed: Result<(), Refused<Utf8Bytes>>) -> bool {
        match pushed {
            Ok(()) => {
                telemetry::frames_out(kind).increment(1);
                true
            }
            Err(Refused::Full(_)) => {
                close_slow_consumer(&self.control);
                false
            }
            Err(Refused::Closed(_)) => false,
        }
    }
}

/// Ends a session whose client does not read fast enough: 1013, and it
/// resumes with `since`.
pub fn close_slow_consumer(control: &Control) {
    if control.end(Ending::Server(
        CloseCode::TryAgainLater,
        "slow consumer: reconnect with since",
    )) {
        metrics::counter!(names::WS_SLOW_CONSUMERS).increment(1);
        tracing::info!("closing a client that does not read (1013)");
    }
}

/// How long a replay waits for a client to make room in its queue.
const PACED_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Outgoing {
    pub async fn recv(&mut self) -> Option<Utf8Bytes> {
        self.queue.pop().await
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn try_recv(&mut self) -> Option<Utf8Bytes> {
        self.queue.try_pop()
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        self.queue.close();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn frame(n: usize) -> Frame {
        Frame::reply("pong", json!({"pad": "x".repeat(n)}), None)
    }

    #[test]
    fn full_frame_queue_ends_the_session_with_1013() {
        let control = Control::default();
        let (outbox, _rx) = channel(2, 1 << 20, control.clone());
        assert!(outbox.send(frame(1)));
        assert!(outbox.send(frame(1)));
        assert!(!outbox.send(frame(1)));
        assert_eq!(
            control.ending(),
            Some(Ending::Server(
                CloseCode::TryAgainLater,
                "slow consumer: reconnect with since"
            ))
        );
        assert!(!outbox.send(frame(1)), "nothing is queued once ended");
    }

    #[tokio::test]
    async fn byte_bound_counts_what_is_queued_not_what_was_sent() {
        let control = Control::default();
        let (outbox, mut rx) = channel(100, 100, control.clone());
        assert!(outbox.send(frame(60)), "a big frame fits an empty queue");
        rx.recv().await.unwrap();
        assert!(outbox.send(frame(10)));
        assert!(!outbox.send(frame(80)));
        assert!(control.ending().is_some());
    }
}
