//! One WebSocket connection: a reader that dispatches messages one at a time (so
//! replies keep the order of requests) and a writer task that drains the bounded
//! outbox, sends heartbeats and performs the close handshake.

use std::{panic::AssertUnwindSafe, sync::Arc};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{FutureExt, SinkExt, StreamExt, stream::SplitSink, stream::SplitStream};
use governor::DefaultDirectRateLimiter;
use tokio::time::{self, timeout};

use super::{
    dispatch,
    outbox::{Outbox, Outgoing},
    subscriptions::{Delivery, Subscriptions},
};
use crate::{
    agents::Command,
    hub::Event,
    limits,
    model::Caller,
    protocol::{CloseCode, ErrorCode, Frame, ProtocolError},
    registry::{Control, Ending, Registration},
    state::{AppState, SessionSettings},
    telemetry::names,
};

/// What handlers see of the connection they serve.
pub struct Session {
    pub id: u64,
    /// The path channel: an agent id, a contract address or a fresh UUID.
    pub channel: String,
    /// Who is on the other end; every command of this session carries it.
    pub caller: Caller,
    pub state: Arc<AppState>,
    outbox: Outbox,
    pub subs: Subscriptions,
    /// Messages per second (`None`: unlimited), and refusals in a row.
    limiter: Option<DefaultDirectRateLimiter>,
    strikes: u32,
}

impl Session {
    /// Whether this message may be handled now. A refused one is answered
    /// `rate_limited`; a connection that keeps flooding is closed with 1008.
    fn admit(&mut self, control: &Control) -> bool {
        let Some(limiter) = &self.limiter else {
            return true;
        };
        if limiter.check().is_ok() {
            self.strikes = 0;
            return true;
        }
        self.strikes += 1;
        metrics::counter!(names::WS_ERRORS, "code" => ErrorCode::RateLimited.as_str()).increment(1);
        if self.strikes > limits::ABUSE_STRIKES {
            control.end(Ending::Server(CloseCode::Policy, "rate limit exceeded"));
        } else {
            let error = ProtocolError::new(ErrorCode::RateLimited, "too many messages: slow down");
            self.send(Frame::error(&error, None));
        }
        false
    }

    /// Queues a frame for this client. Returns false once the session is closing.
    pub fn send(&self, frame: Frame) -> bool {
        self.outbox.send(frame)
    }

    /// Carries out a domain command as this session's caller.
    pub async fn handle<C: Command>(&self, command: C) -> Result<C::Output, ProtocolError> {
        Ok(self.state.manager.handle(&self.caller, command).await?)
    }

    /// The agent a request is about: the one it names, else the path channel
    /// (never anything remembered from another connection).
    pub fn agent_id(&self, requested: &Option<String>) -> String {
        requested.clone().unwrap_or_else(|| self.channel.clone())
    }

    /// Follows the agent's events from now on (a connection gets the events of
    /// every agent it creates or addresses).
    pub async fn follow(&mut self, agent_id: &str) -> Result<(), ProtocolError> {
        self.subs.follow(agent_id).await
    }

    /// Follows the agent after replaying its stored events with seq > `since`.
    pub async fn replay(&mut self, agent_id: &str, since: u64) -> Result<(), ProtocolError> {
        self.subs.replay(&self.outbox, agent_id, since).await
    }

    async fn deliver(&mut self, event: &Event) {
        if let Err(error) = self.subs.deliver(&self.outbox, event).await {
            self.send(Frame::error(&error, None));
        }
    }
}

/// Serves one upgraded connection until it closes. The registration is held
/// until the very end, so the registry always counts this connection right.
pub async fn run(
    socket: WebSocket,
    registration: Registration,
    channel: String,
    caller: Caller,
    subs: Subscriptions,
    outgoing: Outgoing,
    state: Arc<AppState>,
) {
    let settings = state.ws.clone();
    let control = registration.control().clone();
    let outbox = subs.outbox().clone();
    let (sink, stream) = socket.split();
    let writer = tokio::spawn(write_loop(
        sink,
        outgoing,
        control.clone(),
        settings.clone(),
    ));

    let mut session = Session {
        id: registration.id(),
        channel,
        caller,
        limiter: limits::messages(state.messages_per_second),
        strikes: 0,
        state,
        outbox,
        subs,
    };
    tracing::debug!(session = session.id, "websocket session opened");
    let replay = Box::pin(session.subs.replay_pending(&session.outbox));
    if let Err(error) = replay.await {
        session.send(Frame::error(&error, None));
    }
    let stream = read_loop(stream, &mut session, &control, &settings).await;
    // The close handshake, bounded as a whole: the writer sends what is left and
    // the Close frame while the reader waits for the peer's reply.
    let mut writer = writer;
    let drain = async {
        if let (Some(mut stream), Some(Ending::Server(..))) = (stream, control.ending()) {
            while let Some(Ok(_)) = stream.next().await {}
        }
    };
    let closing = async { tokio::join!(drain, &mut writer) };
    if timeout(settings.close_timeout, closing).await.is_err() {
        writer.abort();
    }
    let ending = control.ending().unwrap_or(Ending::PeerGone);
    metrics::counter!(names::WS_CLOSED, "code" => ending.label()).increment(1);
    tracing::debug!(session = session.id, ?ending, "websocket session closed");
    drop(registration);
}

/// Reads and dispatches frames until the session ends. Returns the stream when
/// it is still usable for the rest of a close handshake.
async fn read_loop(
    mut stream: SplitStream<WebSocket>,
    session: &mut Session,
    control: &Control,
    settings: &SessionSettings,
) -> Option<SplitStream<WebSocket>> {
    let mut deadline = time::Instant::now() + settings.idle_timeout;
    loop {
        let next = tokio::select! {
            biased;
            _ = control.ended() => return Some(stream),
            _ = control.stop_requested() => {
                control.end(Ending::Server(CloseCode::GoingAway, "server shutting down"));
                return Some(stream);
            }
            Some(delivery) = session.subs.recv() => {
                match delivery {
                    Delivery::Event(event) => session.deliver(&event).await,
                    Delivery::Reply(frame) => {
                        session.send(*frame);
                    }
                }
                continue;
            }
            next = time::timeout_at(deadline, stream.next()) => next,
        };
        let message = match next {
            Err(_elapsed) => {
                control.end(Ending::Server(CloseCode::Normal, "idle timeout"));
                return Some(stream);
            }
            Ok(None) => {
                control.end(Ending::PeerGone);
                return None;
            }
            Ok(Some(Err(error))) => {
                control.end(read_error_ending(error));
                return None;
            }
            Ok(Some(Ok(message))) => message,
        };
        deadline = time::Instant::now() + settings.idle_timeout;
        // A JWT's session lasts as long as the token.
        if session.caller.expired() {
            control.end(Ending::Server(CloseCode::Policy, "token expired"));
            return Some(stream);
        }
        match message {
            // Handled outside of the select above, so shutdown never cuts a
            // handler short.
            Message::Text(text) => {
                if session.admit(control) {
                    handle_guarded(session, text.as_str(), control).await;
                }
            }
            Message::Binary(_) => {
                control.end(Ending::Server(
                    CloseCode::Unsupported,
                    "binary frames are not supported",
                ));
                return Some(stream);
            }
            Message::Close(frame) => {
                control.end(Ending::PeerClosed(frame.map(|f| f.code)));
                // Reading on lets the close reply go out and the stream finish.
                return Some(stream);
            }
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
}

/// Runs the handler; a panic in it ends this session with 1011 and nothing else.
async fn handle_guarded(session: &mut Session, text: &str, control: &Control) {
    // Boxed: a handler's state exists only while it runs, so an idle
    // connection's task does not carry the largest handler's state forever.
    let handling = Box::pin(dispatch::handle_message(session, text));
    let handled = AssertUnwindSafe(handling).catch_unwind().await;
    if handled.is_err() {
        tracing::error!(
            session = session.id,
            "a message handler panicked; closing with 1011"
        );
        control.end(Ending::Server(CloseCode::Internal, "internal error"));
    }
}

fn read_error_ending(error: axum::Error) -> Ending {
    use tungstenite::error::{CapacityError, Error};
    match error.into_inner().downcast::<Error>() {
        Ok(error) => match *error {
            Error::Capacity(CapacityError::MessageTooLong { .. }) => {
                Ending::Server(CloseCode::TooBig, "message too big")
            }
            Error::Utf8(_) => Ending::Server(CloseCode::InvalidPayload, "text is not valid UTF-8"),
            Error::Capacity(_) | Error::Protocol(_) => {
                Ending::Server(CloseCode::ProtocolError, "protocol error")
            }
            _ => Ending::PeerGone,
        },
        Err(_) => Ending::PeerGone,
    }
}

/// Most frames written before one flush.
const WRITE_BATCH: usize = 64;

/// Sends queued frames and heartbeats until the session ends, then the Close
/// frame. The caller bounds how long the closing part may take.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut outgoing: Outgoing,
    control: Control,
    settings: SessionSettings,
) {
    let start = time::Instant::now() + settings.ping_interval;
    let mut heartbeat = time::interval_at(start, settings.ping_interval);
    heartbeat.set_missed_tick_behavior(time::MissedTickBehavior::Delay);
    loop {
        let message = tokio::select! {
            biased;
            _ = control.ended() => break,
            text = outgoing.recv() => match text {
                Some(text) => Message::Text(text),
                None => break,
            },
            _ = heartbeat.tick() => Message::Ping(Default::default()),
        };
        // Frames already queued behind this one go out in the same write.
        let send = async {
            sink.feed(message).await?;
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
            _ = control.ended() => break,
            sent = send => if sent.is_err() {
                control.end(Ending::PeerGone);
                break;
            }
        }
    }

    match control.ending() {
        Some(Ending::Server(code, reason)) => {
            if code != CloseCode::TryAgainLater {
                // Replies of handlers that finished before the close still go out.
                while let Some(text) = outgoing.try_recv() {
                    if sink.feed(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
            }
            let close = CloseFrame {
                code: code.code(),
                reason: reason.into(),
            };
            let _ = sink.send(Message::Close(Some(close))).await;
        }
        // The reply to the peer's Close is queued inside the socket.
        Some(Ending::PeerClosed(_)) => {
            let _ = sink.flush().await;
        }
        _ => {}
    }
}
