/// WebSocket close codes the server sends, with the reason text that goes with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: the connection was idle for too long, or the peer closed normally.
    Normal,
    /// 1001: the server is shutting down; reconnect (with `since`).
    GoingAway,
    /// 1002: the peer broke the WebSocket framing rules (e.g. an unmasked frame).
    ProtocolError,
    /// 1003: binary frames are not part of the protocol.
    Unsupported,
    /// 1007: a text message that is not valid UTF-8.
    InvalidPayload,
    /// 1008: policy violation (authentication, origin, repeated abuse).
    Policy,
    /// 1009: a message was over the size limit.
    TooBig,
    /// 1011: an internal error ended the session.
    Internal,
    /// 1013: the client did not read fast enough; reconnect with `since`.
    TryAgainLater,
}

impl CloseCode {
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::InvalidPayload => 1007,
            CloseCode::Policy => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::Internal => 1011,
            CloseCode::TryAgainLater => 1013,
        }
    }

    /// The metric label of this code.
    pub fn label(self) -> &'static str {
        match self {
            CloseCode::Normal => "1000",
            CloseCode::GoingAway => "1001",
            CloseCode::ProtocolError => "1002",
            CloseCode::Unsupported => "1003",
            CloseCode::InvalidPayload => "1007",
            CloseCode::Policy => "1008",
            CloseCode::TooBig => "1009",
            CloseCode::Internal => "1011",
            CloseCode::TryAgainLater => "1013",
        }
    }
}
