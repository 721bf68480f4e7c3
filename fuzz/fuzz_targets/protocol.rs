//! Feeds arbitrary bytes to the protocol parser, as a WebSocket text frame and
//! as a REST body of every message type. The parser must never panic (nor
//! overflow its stack), and every answer must be one PROTOCOL.md defines.
//!
//! `cargo +nightly fuzz run protocol` (from the repository root).

#![no_main]

use agentport::protocol::{ErrorCode, Inbound, MessageType, Request};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // Text frames are UTF-8 (anything else is closed with 1007 before parsing).
    let text = String::from_utf8_lossy(data);
    let inbound = Inbound::parse(&text);
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(body)) => {
            if let Err(error) = &inbound.request {
                assert_ne!(error.code, ErrorCode::InvalidJson, "an object is JSON");
            }
            for kind in MessageType::ALL {
                if let Err(error) = Request::from_body(*kind, body.clone()) {
                    assert!(
                        matches!(error.code, ErrorCode::InvalidField | ErrorCode::TooLarge),
                        "{kind:?}: {error:?}"
                    );
                }
            }
        }
        _ => {
            let error = inbound.request.expect_err("only objects are requests");
            assert_eq!(error.code, ErrorCode::InvalidJson);
            assert_eq!(error.message, "Invalid JSON message");
        }
    }
    if let Some(kind) = inbound.message_type {
        assert_eq!(inbound.kind, kind.as_str());
    }
});
