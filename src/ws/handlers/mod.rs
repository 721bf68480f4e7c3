//! One module per message type. A handler gets the session and its parsed
//! request, queues its replies, and returns the error to report, if any.

pub mod ping;
