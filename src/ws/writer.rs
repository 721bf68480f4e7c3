//! The sending half of a session, driven by the session's own task: queued
//! frames in batches, heartbeats, and the end of the close handshake.
//!
//! One task per connection, not a reader and a writer: an idle connection
//! costs one task's memory, and a reply goes out without waking another task.
//! While a handler runs, `alongside` keeps writing what it queues (a replay
//! longer than the outbox waits for room the writes make).

use std::future::Future;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, stream::SplitSink};
use tokio::time::{self, Interval};

use super::outbox::{Outgoing, close_slow_consumer};
use crate::{
    protocol::CloseCode,
    registry::{Control, Ending},
    state::SessionSettings,
};

/// Most frames written before one flush.
const WRITE_BATCH: usize = 64;

pub struct Writer {
    sink: SplitSink<WebSocket, Message>,
    outgoing: Outgoing,
    heartbeat: Interval,
    /// How long one write may wait for the client to read.
    stall: time::Duration,
    control: Control,
}

impl Writer {
    pub fn new(
        sink: SplitSink<WebSocket, Message>,
        outgoing: Outgoing,
        control: Control,
        settings: &SessionSettings,
    ) -> Self {
        let ping_interval = settings.ping_interval;
        let start = time::Instant::now() + ping_interval;
        let mut heartbeat = time::interval_at(start, ping_interval);
        heartbeat.set_missed_tick_behavior(time::MissedTickBehavior::Delay);
        Self {
            sink,
            outgoing,
            heartbeat,
            stall: settings.write_timeout,
            control,
        }
    }

    /// Whether nothing is queued to be sent.
    pub fn idle(&self) -> bool {
        self.outgoing.is_empty()
    }

    /// The next frame to send: a queued one, else a heartbeat ping when due.
    /// Cancel-safe (for `select!`); `None` once nothing can be queued any more.
    pub async fn next(&mut self) -> Option<Message> {
        tokio::select! {
            biased;
            text = self.outgoing.recv() => text.map(Message::Text),
            _ = self.heartbeat.tick() => Some(Message::Ping(Default::default())),
        }
    }

    /// Sends `first` and the frames queued behind it in one write. Gives up
    /// when the session ends meanwhile; a broken socket ends it, and so does a
    /// client that takes nothing for the write timeout (1013).
    pub async fn write(&mut self, first: Message) {
        let (sink, outgoing) = (&mut self.sink, &mut self.outgoing);
        let send = async {
            sink.feed(first).await?;
            for _ in 0..WRITE_BATCH {
                match outgoing.try_recv() {
                    Some(text) => sink.feed(Message::Text(text)).await?,
                    None => break,
                }
            }
            sink.flush().await
        };
        tokio::select! {
            biased;
            _ = self.control.ended() => {}
            sent = time::timeout(self.stall, send) => match sent {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    self.control.end(Ending::PeerGone);
                }
                Err(_stalled) => close_slow_consumer(&self.control),
            }
        }
    }

    /// Runs `work` to its end while sending what it queues. Once the session
    /// has ended, what is queued waits for `close`.
    pub async fn alongside<F: Future>(&mut self, work: F) -> F::Output {
        let mut work = std::pin::pin!(work);
        let control = self.control.clone();
        loop {
            tokio::select! {
                biased;
                out = &mut work => return out,
                _ = control.ended() => return work.await,
                next = self.next() => match next {
                    Some(message) => self.write(message).await,
                    None => return work.await,
                },
            }
        }
    }

    /// The server's side of the close handshake, once the session has ended:
    /// what handlers queued before the end (not for a client too slow to read
    /// it), then the Close frame. The caller bounds how long this may take.
    pub async fn close(mut self) {
        match self.control.ending() {
            Some(Ending::Server(code, reason)) => {
                if code != CloseCode::TryAgainLater {
                    while let Some(text) = self.outgoing.try_recv() {
                        if self.sink.feed(Message::Text(text)).await.is_err() {
                            return;
                        }
                    }
                }
                let close = CloseFrame {
                    code: code.code(),
                    reason: reason.into(),
                };
                let _ = self.sink.send(Message::Close(Some(close))).await;
            }
            // The reply to the peer's Close is queued inside the socket.
            Some(Ending::PeerClosed(_)) => {
                let _ = self.sink.flush().await;
            }
            _ => {}
        }
    }
}
