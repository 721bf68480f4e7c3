//! One WebSocket connection, served by one task: it dispatches messages one
//! at a time (so replies keep the order of requests) and, through its
//! `Writer`, drains the bounded outbox, sends heartbeats and performs the
//! close handshake.

use std::{panic::AssertUnwindSafe, sync::Arc};

use axum::extract::ws::{Message, WebSocket};
use futures_util::{FutureExt, StreamExt, stream::SplitStream};
use governor::DefaultDirectRateLimiter;
use tokio::time::{self, timeout};

use super::{
    dispatch,
    outbox::{Outbox, Outgoing},
    subscriptions::{Delivery, Subscriptions},
    writer::Writer,
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
    let mut writer = Writer::new(sink, outgoing, control.clone(), &settings);

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
    if let Err(error) = writer.alongside(replay).await {
        session.send(Frame::error(&error, None));
    }
    let stream = read_loop(stream, &mut session, &mut writer, &control, &settings).await;
    // The close handshake, bounded as a whole: what is left and the Close
    // frame, then the peer's reply.
    let closing = async {
        writer.close().await;
        if let (Some(mut stream), Some(Ending::Server(..))) = (stream, control.ending()) {
            while let Some(Ok(_)) = stream.next().await {}
        }
    };
    let _ = timeout(settings.close_timeout, closing).await;
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
    writer: &mut Writer,
    control: &Control,
    settings: &SessionSettings,
) -> Option<SplitStream<WebSocket>> {
    let mut deadline = time::Instant::now() + settings.idle_timeout;
    let mut reads = READS_PER_WRITE;
    loop {
        // Messages and deliveries already waiting are handled before their
        // frames are written, so that pipelined requests share one write; a
        // bounded number, so that writes never wait on a busy client.
        if reads == 0 && writer.idle() {
            reads = READS_PER_WRITE;
        }
        let next = tokio::select! {
            biased;
            _ = control.ended() => return Some(stream),
            _ = control.stop_requested() => {
                control.end(Ending::Server(CloseCode::GoingAway, "server shutting down"));
                return Some(stream);
            }
            Some(delivery) = session.subs.recv(), if reads > 0 => {
                reads -= 1;
                match delivery {
                    Delivery::Event(event) => writer.alongside(session.deliver(&event)).await,
                    Delivery::Reply(frame) => {
                        session.send(*frame);
                    }
                }
                continue;
            }
            next = time::timeout_at(deadline, stream.next()), if reads > 0 => {
                reads -= 1;
                next
            }
            message = writer.next() => {
                reads = READS_PER_WRITE;
                match message {
                    Some(message) => writer.write(message).await,
                    None => {
                        control.end(Ending::PeerGone);
                    }
                }
                continue;
            }
        };
        match on_read(next, session, writer, control).await {
            Read::Go => deadline = time::Instant::now() + settings.idle_timeout,
            Read::Stop => return Some(stream),
            Read::Broken => return None,
        }
    }
}

/// What a read means for the session.
enum Read {
    Go,
    /// The session ends; the stream can carry the rest of the close handshake.
    Stop,
    /// The session ends; the stream is unusable.
    Broken,
}

type Next = Result<Option<Result<Message, axum::Error>>, time::error::Elapsed>;

/// Handles what the socket gave (a message, its end, an error, or the idle
/// timeout). A message is handled outside of the reading `select!`, so
/// shutdown never cuts a handler short.
async fn on_read(
    next: Next,
    session: &mut Session,
    writer: &mut Writer,
    control: &Control,
) -> Read {
    let message = match next {
        Err(_elapsed) => {
            control.end(Ending::Server(CloseCode::Normal, "idle timeout"));
            return Read::Stop;
        }
        Ok(None) => {
            control.end(Ending::PeerGone);
            return Read::Broken;
        }
        Ok(Some(Err(error))) => {
            control.end(read_error_ending(error));
            return Read::Broken;
        }
        Ok(Some(Ok(message))) => message,
    };
    // A JWT's session lasts as long as the token.
    if session.caller.expired() {
        control.end(Ending::Server(CloseCode::Policy, "token expired"));
        return Read::Stop;
    }
    match message {
        Message::Text(text) => {
            if session.admit(control) {
                writer
                    .alongside(handle_guarded(session, text.as_str(), control))
                    .await;
            }
            Read::Go
        }
        Message::Binary(_) => {
            control.end(Ending::Server(
                CloseCode::Unsupported,
                "binary frames are not supported",
            ));
            Read::Stop
        }
        Message::Close(frame) => {
            control.end(Ending::PeerClosed(frame.map(|f| f.code)));
            // Reading on lets the close reply go out and the stream finish.
            Read::Stop
        }
        Message::Ping(_) | Message::Pong(_) => Read::Go,
    }
}

/// Messages handled between two writes at most.
const READS_PER_WRITE: u32 = 16;

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
