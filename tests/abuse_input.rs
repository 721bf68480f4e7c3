//! The bad input campaign. PROTOCOL.md gives every bad input one defined answer
//! (an error code, the request's `id` echoed, or a close code) and says the
//! connection and everything stored carry on. These tests hold the protocol
//! parser to it with generated input (properties), then a live server over real
//! sockets with thousands of hostile frames and framing violations.

mod common;

use agentport::{
    model::{AgentStatus, NewAgent, ScheduleKind},
    protocol::{ErrorCode, Inbound, MessageType, ProtocolError, Request, requests::AgentRequest},
};
use common::{
    abuse::{self, BINARY, CLOSE, CONTINUATION, PING, TEXT, frame, raw_handshake, read_to_close},
    client::{Client, TOKEN, bare_agent},
    *,
};
use futures_util::SinkExt;
use proptest::{
    prelude::*,
    sample::select,
    strategy::ValueTree,
    test_runner::{Config as ProptestConfig, TestRunner},
};
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

/// The agent id every generated request names (the campaign creates it).
const AGENT: &str = "7c0e1d2f-campaign-agent";

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(256)
    }
}

// ---------------------------------------------------------------------------
// What PROTOCOL.md defines, independently of the parser.

/// How a field is typed on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// An optional string.
    Text,
    /// A string that must be there and not blank.
    Required,
    /// A non-negative integer, as a number or a string of digits.
    Count,
    /// `true` / `false` (or those strings).
    Flag,
    /// A JSON object.
    Object,
    /// A whole number in a string (or a JSON integer).
    Whole,
    /// A decimal number in a string (or a JSON number).
    Decimal,
}

/// Every field a client sets in PROTOCOL.md's messages (besides `agent_id`),
/// with its spellings, the first being the name errors use.
const FIELDS: &[(MessageType, &[&str], Kind)] = {
    use Kind::*;
    use MessageType as T;
    &[
        (
            T::CreateContract,
            &["address", "contract_id", "contractId", "contract_address"],
            Required,
        ),
        (T::CreateContract, &["chain_id", "chainId"], Count),
        (T::CreateContract, &["deployed_at", "deployedAt"], Text),
        (T::CreateContract, &["owner_address", "ownerAddress"], Text),
        (T::CreateContract, &["name"], Text),
        (T::CreateContract, &["type", "contract_type"], Text),
        (
            T::CreateAgent,
            &["contractId", "contract_id", "contractAddress"],
            Required,
        ),
        (T::CreateAgent, &["status"], Text),
        (T::CreateAgent, &["gas_limit", "gasLimit"], Whole),
        (
            T::CreateAgent,
            &["max_priority_fee", "maxPriorityFee"],
            Decimal,
        ),
        (T::CreateAgent, &["max_value_wei", "maxValueWei"], Whole),
        (
            T::CreateAgent,
            &["max_value_wei_per_day", "maxValueWeiPerDay"],
            Whole,
        ),
        (T::CreateAgent, &["contract_state", "contractState"], Object),
        (T::CreateAgent, &["policy"], Object),
        (T::CreateAgent, &["name"], Text),
        (T::CreateAgent, &["description"], Text),
        (T::CreateAgent, &["owner"], Text),
        (
            T::CreateFunction,
            &["function_name", "functionName"],
            Required,
        ),
        (
            T::CreateFunction,
            &["function_signature", "functionSignature"],
            Required,
        ),
        (
            T::CreateFunction,
            &["function_type", "functionType"],
            Required,
        ),
        (T::CreateFunction, &["is_enabled", "isEnabled"], Flag),
        (
            T::CreateFunction,
            &["validation_rules", "validationRules"],
            Object,
        ),
        (
            T::CreateSchedule,
            &["schedule_type", "scheduleType"],
            Required,
        ),
        (
            T::CreateSchedule,
            &["interval_seconds", "intervalSeconds"],
            Count,
        ),
        (T::CreateSchedule, &["is_active", "isActive"], Flag),
        (
            T::CreateNotification,
            &["notification_type", "notificationType"],
            Required,
        ),
        (T::CreateNotification, &["configuration", "config"], Object),
        (T::CreateNotification, &["is_enabled", "isEnabled"], Flag),
        (T::Subscribe, &["since"], Count),
        (T::ListRuns, &["limit"], Count),
        (T::ListRuns, &["cursor"], Text),
    ]
};

/// Fields with a size limit in bytes, and the code for going over it.
const LIMITS: &[(MessageType, &str, usize, ErrorCode)] = {
    use ErrorCode::*;
    use MessageType as T;
    &[
        (T::CreateContract, "name", 200, TooLarge),
        (T::CreateContract, "type", 200, TooLarge),
        (T::CreateAgent, "name", 200, TooLarge),
        (T::CreateAgent, "owner", 200, TooLarge),
        (T::CreateAgent, "description", 10_000, TooLarge),
        (T::ListRuns, "cursor", 200, TooLarge),
        (T::GetAgent, "agent_id", 200, InvalidField),
        (T::CreateAgent, "agent_id", 200, InvalidField),
    ]
};

/// Where a request may name its agent, in the order they are looked at.
const AGENT_SPOTS: [(bool, &str); 4] = [
    (true, "agent_id"),
    (true, "agentId"),
    (false, "agent_id"),
    (false, "agentId"),
];

/// Every message type that is sent with a `type` (all but the action frames).
fn typed() -> Vec<MessageType> {
    MessageType::ALL
        .iter()
        .copied()
        .filter(|t| *t != MessageType::Action)
        .collect()
}

/// A valid `data` of each message type, one spelling per field.
fn valid_data(kind: MessageType) -> Value {
    use MessageType as T;
    match kind {
        T::Ping => json!({"t": 1}),
        T::CreateContract => json!({"address": TOKEN, "chain_id": 31337, "abi": "[]",
            "name": "Token", "type": "ERC20", "deployed_at": "2024-05-01T12:00:00.000Z",
            "owner_address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "agent_id": AGENT}),
        T::CreateAgent => json!({"contractId": TOKEN, "name": "n", "description": "d",
            "status": "active", "gas_limit": "300000", "max_priority_fee": "1.5", "owner": "o",
            "contract_state": {}, "agent_id": AGENT}),
        T::CreateFunction => json!({"function_name": "balanceOf",
            "function_signature": "balanceOf(address)", "function_type": "read",
            "is_enabled": true, "validation_rules": {}, "agent_id": AGENT}),
        T::CreateSchedule => json!({"schedule_type": "interval", "interval_seconds": 60,
            "is_active": true, "agent_id": AGENT}),
        T::CreateNotification => json!({"notification_type": "webhook",
            "configuration": {"url": "https://example.com/hook"}, "is_enabled": true,
            "agent_id": AGENT}),
        T::Subscribe => json!({"agent_id": AGENT, "since": 0}),
        T::ListRuns => json!({"agent_id": AGENT, "limit": 10, "cursor": "c"}),
        _ => json!({"agent_id": AGENT}),
    }
}

/// A valid frame of each message type with request id `id`.
fn valid_frame(kind: MessageType, id: Value) -> Map<String, Value> {
    let frame = match kind {
        MessageType::Action => json!({"action": "updateConfig", "agentId": AGENT,
                                      "config": {"description": "d"}, "id": id}),
        _ => json!({"type": kind.as_str(), "data": valid_data(kind), "id": id}),
    };
    let Value::Object(frame) = frame else {
        unreachable!()
    };
    frame
}

/// The frame's `data` object, to change a field in it.
fn data_of(frame: &mut Map<String, Value>) -> &mut Map<String, Value> {
    frame
        .get_mut("data")
        .and_then(Value::as_object_mut)
        .unwrap()
}

/// What a frame is before any of its fields are read, as PROTOCOL.md says.
#[derive(Debug, PartialEq)]
enum Shape {
    InvalidJson,
    BadId,
    Unknown(String),
    Known(MessageType),
}

fn shape(text: &str) -> Shape {
    let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(text) else {
        return Shape::InvalidJson;
    };
    if matches!(frame.get("id"), Some(Value::Object(_) | Value::Array(_))) {
        return Shape::BadId;
    }
    match frame.get("type") {
        Some(Value::String(name)) => match typed().into_iter().find(|t| t.as_str() == name) {
            Some(kind) => Shape::Known(kind),
            None => Shape::Unknown(name.clone()),
        },
        None | Some(Value::Null) if frame.contains_key("action") => {
            Shape::Known(MessageType::Action)
        }
        None | Some(Value::Null) => Shape::Unknown("None".into()),
        Some(other) => Shape::Unknown(other.to_string()),
    }
}

/// Checks that the parser answers `text` as PROTOCOL.md defines.
fn check_defined(text: &str) -> Result<Inbound, TestCaseError> {
    let inbound = Inbound::parse(text);
    let error = inbound.request.as_ref().err();
    match shape(text) {
        Shape::InvalidJson => {
            let invalid = ProtocolError::new(ErrorCode::InvalidJson, "Invalid JSON message");
            prop_assert_eq!(error, Some(&invalid));
            prop_assert_eq!(&inbound.id, &None);
        }
        Shape::BadId => {
            prop_assert_eq!(error.map(|e| e.code), Some(ErrorCode::InvalidField));
            prop_assert_eq!(&inbound.id, &None);
        }
        Shape::Unknown(name) => {
            prop_assert_eq!(error.map(|e| e.code), Some(ErrorCode::UnknownType));
            let message = format!("Unknown message type: {name}");
            prop_assert_eq!(error.map(|e| e.message.as_str()), Some(message.as_str()));
            prop_assert_eq!(inbound.message_type, None);
        }
        Shape::Known(kind) => {
            prop_assert_eq!(inbound.message_type, Some(kind));
            prop_assert_eq!(inbound.kind, kind.as_str());
            if let Some(error) = error {
                let parse_codes = [ErrorCode::InvalidField, ErrorCode::TooLarge];
                prop_assert!(parse_codes.contains(&error.code), "{error:?}");
            }
        }
    }
    Ok(inbound)
}

// ---------------------------------------------------------------------------
// Generators.

/// Floats whose text the server reads back exactly (see
/// `numbers_are_echoed_as_sent` for the others).
fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("JSON has no NaN or infinity", |f| {
        f.is_finite() && reparsed(&Value::from(*f)) == *f
    })
}

/// Every field spelling of every message, so that random objects hit them.
fn known_key() -> impl Strategy<Value = String> {
    let mut keys: Vec<&str> = FIELDS
        .iter()
        .flat_map(|(_, names, _)| names.iter())
        .copied()
        .collect();
    keys.extend([
        "agent_id", "agentId", "type", "data", "id", "action", "config", "abi",
    ]);
    select(keys).prop_map(String::from)
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        finite().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        known_key().prop_map(Value::from),
    ]
}

/// Any JSON value, a few levels deep, with keys that often mean something.
fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![known_key(), any::<String>()];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    let key = prop_oneof![known_key(), any::<String>()];
    prop::collection::btree_map(key, json_value(), 0..8).prop_map(|m| m.into_iter().collect())
}

/// A request id that must be echoed: a string, number or boolean.
fn echoed_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        finite().prop_map(Value::from),
        "[a-zA-Z0-9 _-]{0,16}".prop_map(Value::from),
    ]
}

fn container() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::collection::vec(scalar(), 0..4).prop_map(Value::Array),
        prop::collection::btree_map(known_key(), scalar(), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
    ]
}

fn not_a_string() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        finite().prop_map(Value::from),
        container(),
    ]
    .boxed()
}

/// A value of the wrong type (or form) for a field of kind `kind`.
fn wrong(kind: Kind) -> BoxedStrategy<Value> {
    let junk = "[0-9]{0,3}[a-zA-Z,_-][0-9]{0,3}".prop_map(Value::from);
    let negative = (i64::MIN..0).prop_map(Value::from);
    let flag_like = prop_oneof![Just(Value::from(true)), container()];
    match kind {
        Kind::Text => not_a_string(),
        Kind::Required => {
            prop_oneof![not_a_string(), "[ \t\r\n]{0,4}".prop_map(Value::from)].boxed()
        }
        Kind::Count => {
            prop_oneof![negative, finite().prop_map(Value::from), junk, flag_like].boxed()
        }
        Kind::Flag => prop_oneof![
            any::<i64>().prop_map(Value::from),
            finite().prop_map(Value::from),
            any::<String>()
                .prop_filter("not a flag", |s| s != "true" && s != "false")
                .prop_map(Value::from),
            container(),
        ]
        .boxed(),
        Kind::Object => prop_oneof![
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            prop::collection::vec(scalar(), 0..4).prop_map(Value::Array),
        ]
        .boxed(),
        // A JSON float always prints with a `.` or an exponent.
        Kind::Whole => {
            prop_oneof![negative, finite().prop_map(Value::from), junk, flag_like].boxed()
        }
        Kind::Decimal => prop_oneof![
            negative,
            (-1e300..-1e-300f64).prop_map(Value::from),
            junk,
            "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}|\\.[0-9]{1,3}|[0-9]{1,3}\\."
                .prop_map(Value::from),
            flag_like,
        ]
        .boxed(),
    }
}

/// A valid frame with one field replaced by a wrong value (under any of its
/// spellings): the frame, and the name the error must use.
fn wrong_field() -> impl Strategy<Value = (Map<String, Value>, &'static str)> {
    (0..FIELDS.len(), any::<prop::sample::Index>(), echoed_id()).prop_flat_map(
        |(field, spelling, id)| {
            let (kind, names, type_of) = (FIELDS[field].2, FIELDS[field].1, FIELDS[field].0);
            wrong(kind).prop_map(move |value| {
                let mut frame = valid_frame(type_of, id.clone());
                let data = data_of(&mut frame);
                names.iter().for_each(|name| drop(data.remove(*name)));
                data.insert(spelling.get(names).to_string(), value);
                (frame, names[0])
            })
        },
    )
}

/// A frame of any message type about an agent (all but `ping`) whose agent id
/// is not a string, or too long.
fn wrong_agent_id() -> impl Strategy<Value = Map<String, Value>> {
    let long = "[a-z]{201,300}".prop_map(Value::from);
    let bad = prop_oneof![not_a_string(), long];
    let kinds: Vec<MessageType> = MessageType::ALL
        .iter()
        .copied()
        .filter(|t| *t != MessageType::Ping)
        .collect();
    (
        select(kinds),
        select(AGENT_SPOTS.to_vec()),
        bad,
        echoed_id(),
    )
        .prop_map(|(kind, (in_data, name), value, id)| {
            let mut frame = valid_frame(kind, id);
            frame.remove("agentId");
            if kind == MessageType::Action {
                frame.insert("data".into(), json!({}));
            }
            let data = data_of(&mut frame);
            data.remove("agent_id");
            let target = if in_data { data } else { &mut frame };
            target.insert(name.into(), value);
            frame
        })
}

/// A valid frame's text with one character cut, added or changed.
fn mutated_frame() -> impl Strategy<Value = String> {
    let frames: Vec<String> = MessageType::ALL
        .iter()
        .map(|kind| Value::Object(valid_frame(*kind, json!(1))).to_string())
        .collect();
    (
        select(frames),
        any::<prop::sample::Index>(),
        any::<char>(),
        0..4u8,
    )
        .prop_map(|(text, at, c, how)| {
            let mut chars: Vec<char> = text.chars().collect();
            let i = at.index(chars.len());
            match how {
                0 => chars.truncate(i),
                1 => chars.insert(i, c),
                2 => drop(chars.remove(i)),
                _ => chars[i] = c,
            }
            chars.into_iter().collect()
        })
}

/// Number literals, well-formed or not, as they would appear in a frame.
fn number_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,25}",
        "-[0-9]{1,25}",
        "[0-9]{1,5}\\.[0-9]{1,5}",
        "-?[0-9]{1,3}[eE][+-]?[0-9]{1,4}",
        "[1-9][0-9]{300,400}",
        select(vec![
            "NaN",
            "-NaN",
            "Infinity",
            "-Infinity",
            "1e400",
            "-1e400",
            "0x10",
            "+1",
            "--1",
            "1.",
            ".5",
            "01",
            "-0",
            "0.0",
            "-0.0",
            "18446744073709551615",
            "18446744073709551616",
        ])
        .prop_map(String::from),
    ]
}

/// Arrays (or objects) nested `depth` deep.
fn nested(depth: usize, arrays: bool) -> String {
    let (open, close) = if arrays {
        ("[", "]")
    } else {
        (r#"{"a":"#, "}")
    };
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

/// A string of `bytes` bytes or a little more, made of `unit`.
fn sized(unit: char, bytes: usize) -> String {
    std::iter::repeat_n(unit, bytes.div_ceil(unit.len_utf8())).collect()
}

// ---------------------------------------------------------------------------
// Properties of the parser.

proptest! {
    #![proptest_config(config())]

    /// Any text at all, and valid frames with a character cut, added or changed:
    /// never a panic, always the answer PROTOCOL.md defines for its shape.
    #[test]
    fn arbitrary_text_gets_its_defined_answer(
        text in prop_oneof![any::<String>(), mutated_frame()]
    ) {
        check_defined(&text)?;
    }

    /// Any `data` (objects, arrays, scalars) and any `id` for every message
    /// type: a defined answer, the id echoed when it is a scalar, unknown
    /// extra fields change nothing, and REST bodies parse exactly the same.
    #[test]
    fn any_data_for_any_type_gets_a_defined_answer(
        kind in select(MessageType::ALL.to_vec()),
        data in prop_oneof![json_object().prop_map(Value::Object), json_value()],
        id in prop_oneof![scalar(), json_value()],
        action in json_value(),
    ) {
        let mut frame = json!({"data": data, "id": id});
        match kind {
            MessageType::Action => frame["action"] = action,
            _ => frame["type"] = json!(kind.as_str()),
        }
        // As the parser reads them from the text.
        let frame = reparsed(&frame);
        let (data, id) = (frame["data"].clone(), frame["id"].clone());
        let inbound = check_defined(&frame.to_string())?;
        let scalar_id = !matches!(id, Value::Object(_) | Value::Array(_));
        if scalar_id {
            prop_assert_eq!(&inbound.id, &Some(id.clone()).filter(|id| !id.is_null()));
        }
        if scalar_id && !matches!(data, Value::Object(_) | Value::Null) {
            let error = inbound.request.clone().unwrap_err();
            prop_assert_eq!(error.code, ErrorCode::InvalidField);
            prop_assert_eq!(error.message, "data must be an object");
        }
        check_extras_change_nothing(kind, &frame, &inbound)?;
        check_rest_parses_the_same(kind, &data)?;
    }

    /// A value of the wrong type in any field of any message, under any of its
    /// spellings: `invalid_field`, naming the field, with the id echoed.
    #[test]
    fn a_wrong_type_in_any_field_is_invalid_field_naming_it((frame, name) in wrong_field()) {
        let Value::Object(frame) = reparsed(&Value::Object(frame)) else { unreachable!() };
        let inbound = check_defined(&Value::Object(frame.clone()).to_string())?;
        let error = inbound.request.unwrap_err();
        prop_assert_eq!(error.code, ErrorCode::InvalidField, "{:?}", frame);
        prop_assert!(error.message.contains(name), "{} does not name {}", error.message, name);
        prop_assert_eq!(inbound.id.as_ref(), frame.get("id"));
    }

    /// An agent id that is not a string, or longer than 200 bytes, wherever it
    /// is given: `invalid_field` naming `agent_id`.
    #[test]
    fn a_bad_agent_id_anywhere_is_invalid_field(frame in wrong_agent_id()) {
        let inbound = check_defined(&Value::Object(frame.clone()).to_string())?;
        let error = inbound.request.unwrap_err();
        prop_assert_eq!(error.code, ErrorCode::InvalidField, "{:?}", frame);
        prop_assert!(error.message.contains("agent_id"), "{}", error.message);
    }

    /// Huge, negative, fractional, exponent and not-a-number literals where a
    /// count goes: JSON that cannot be read is `invalid_json`, a number that
    /// is not a non-negative integer is `invalid_field`, the rest parse as is.
    #[test]
    fn hostile_number_literals_get_their_defined_answer(literal in number_literal()) {
        let text = format!(r#"{{"type":"subscribe","id":3,"data":{{"agent_id":"a","since":{literal}}}}}"#);
        let inbound = check_defined(&text)?;
        let json_number = literal.parse::<f64>().is_ok_and(f64::is_finite)
            && serde_json::from_str::<Value>(&literal).is_ok();
        let digits = literal.bytes().all(|b| b.is_ascii_digit());
        match (json_number, literal.parse::<u64>()) {
            (false, _) => prop_assert_eq!(shape(&text), Shape::InvalidJson),
            (true, Ok(since)) if digits => {
                let subscribed = inbound.request.unwrap();
                prop_assert!(matches!(subscribed, Request::Subscribe(s) if s.since == Some(since)));
            }
            (true, _) => {
                prop_assert_eq!(inbound.request.unwrap_err().code, ErrorCode::InvalidField);
            }
        }
    }

    /// Nesting deeper than JSON's limit (up to 10 000 levels) anywhere in a
    /// frame of any type is `invalid_json` — no stack overflow; shallow
    /// nesting is read as a value.
    #[test]
    fn nesting_of_any_depth_gets_its_defined_answer(
        kind in select(typed()),
        depth in prop_oneof![1usize..100, 128usize..=10_000],
        arrays in any::<bool>(),
        spot in 0..3u8,
    ) {
        let inner = nested(depth, arrays);
        let name = kind.as_str();
        let text = match spot {
            0 => format!(r#"{{"type":"{name}","data":{inner}}}"#),
            1 => format!(r#"{{"type":"{name}","data":{{"agent_id":"a","x":{inner}}}}}"#),
            _ => format!(r#"{{"type":"{name}","id":{inner}}}"#),
        };
        let inbound = check_defined(&text)?;
        let too_deep = inbound.request.is_err_and(|e| e.code == ErrorCode::InvalidJson);
        prop_assert_eq!(too_deep, depth >= 128);
    }

    /// Strings around each size limit, in characters of 1 to 4 bytes, and
    /// far over it: within the limit they parse, over it they get the
    /// field's code (limits count bytes).
    #[test]
    fn strings_around_each_limit_get_their_defined_answer(
        (kind, field, limit, code) in select(LIMITS.to_vec()),
        unit in select(vec!['a', 'é', '語', '😀']),
        offset in prop_oneof![-8isize..=8, 1isize..200_000],
    ) {
        let text = sized(unit, limit.saturating_add_signed(offset));
        let bytes = text.len();
        let mut frame = valid_frame(kind, json!("size"));
        data_of(&mut frame).insert(field.into(), Value::from(text));
        let inbound = check_defined(&Value::Object(frame).to_string())?;
        match inbound.request {
            Ok(_) => prop_assert!(bytes <= limit, "{field} of {bytes} bytes accepted"),
            Err(error) => {
                prop_assert!(bytes > limit, "{field} of {bytes} bytes refused: {error}");
                prop_assert_eq!(error.code, code);
            }
        }
    }

    /// Valid agents still parse, with every value as sent.
    #[test]
    fn valid_agents_parse_with_their_values(
        name in "\\PC{0,50}",
        description in any::<String>(),
        status in select(vec!["active", "paused", "stopped"]),
        gas_limit in "[0-9]{1,12}",
        fee in "[0-9]{1,3}(\\.[0-9]{1,9})?",
        agent_id in "[a-zA-Z0-9-]{1,64}",
        contract_state in json_object(),
    ) {
        let data = json!({"contractId": TOKEN, "name": name, "description": description,
            "status": status, "gas_limit": gas_limit, "maxPriorityFee": fee,
            "contract_state": contract_state, "agent_id": agent_id});
        let frame = json!({"type": "create_agent", "id": "v", "data": data});
        let expected = NewAgent {
            contract_id: TOKEN.into(), name, description,
            status: AgentStatus::parse(status).unwrap(), gas_limit, max_priority_fee: fee,
            owner: None, contract_state: reparsed(&Value::Object(contract_state)), policy: None,
            max_value_wei: "0".into(), max_value_wei_per_day: "0".into(),
        };
        let expected = Request::CreateAgent(AgentRequest { agent_id: Some(agent_id), body: expected });
        prop_assert_eq!(check_defined(&frame.to_string())?.request, Ok(expected));
    }

    /// Valid counts and schedules parse as sent, as numbers or digit strings.
    #[test]
    fn valid_counts_parse_as_sent(
        since in any::<u64>(),
        interval in 1u64..=31_622_400,
        as_text in any::<bool>(),
    ) {
        let number = |n: u64| if as_text { json!(n.to_string()) } else { json!(n) };
        let subscribe = json!({"type": "subscribe", "data": {"since": number(since)}});
        let parsed = check_defined(&subscribe.to_string())?.request.unwrap();
        prop_assert!(matches!(parsed, Request::Subscribe(s) if s.since == Some(since)));
        let schedule = json!({"type": "create_schedule",
            "data": {"schedule_type": "interval", "interval_seconds": number(interval)}});
        let parsed = check_defined(&schedule.to_string())?.request.unwrap();
        let expected = ScheduleKind::Interval(interval);
        prop_assert!(matches!(parsed, Request::CreateSchedule(s) if s.body.kind == expected));
    }
}

/// Unknown extra fields, at the top level and in `data`, change no answer
/// (except for `ping`, which echoes its data, and `execute`, which keeps it).
fn check_extras_change_nothing(
    kind: MessageType,
    frame: &Value,
    inbound: &Inbound,
) -> Result<(), TestCaseError> {
    if matches!(
        kind,
        MessageType::Ping | MessageType::Execute | MessageType::WebsocketExecution
    ) {
        return Ok(());
    }
    let mut extended = frame.clone();
    extended["x_extra_top"] = json!({"nested": [1, "two"]});
    if let Some(data) = extended["data"].as_object_mut() {
        data.insert("x_extra_field".into(), json!(["extra", 3.5, null]));
    }
    prop_assert_eq!(&Inbound::parse(&extended.to_string()), inbound);
    Ok(())
}

/// A REST body is the `data` of the same request, with the same validation.
fn check_rest_parses_the_same(kind: MessageType, data: &Value) -> Result<(), TestCaseError> {
    let (Value::Object(body), false) = (data, kind == MessageType::Action) else {
        return Ok(());
    };
    let frame = json!({"type": kind.as_str(), "data": body});
    let over_ws = Inbound::parse(&frame.to_string()).request;
    prop_assert_eq!(Request::from_body(kind, body.clone()), over_ws);
    Ok(())
}

/// Every valid template parses: the properties change one thing in them.
#[test]
fn the_valid_templates_parse() {
    for kind in MessageType::ALL {
        let frame = Value::Object(valid_frame(*kind, json!(1))).to_string();
        let inbound = Inbound::parse(&frame);
        assert!(inbound.request.is_ok(), "{frame}: {:?}", inbound.request);
        assert_eq!(inbound.id, Some(json!(1)));
    }
}

/// Exactly 10 000 levels, as arrays and as objects, in every position of every
/// message type: `invalid_json`, and the parser is still there afterwards.
#[test]
fn ten_thousand_levels_of_nesting_are_invalid_json_for_every_type() {
    for kind in typed() {
        for arrays in [true, false] {
            let inner = nested(10_000, arrays);
            let name = kind.as_str();
            for text in [
                format!(r#"{{"type":"{name}","data":{inner}}}"#),
                format!(r#"{{"type":"{name}","data":{{"agent_id":{inner}}}}}"#),
                format!(r#"{{"type":"{name}","id":{inner}}}"#),
                inner.clone(),
            ] {
                let error = Inbound::parse(&text).request.unwrap_err();
                assert_eq!(error.code, ErrorCode::InvalidJson, "{name}");
            }
        }
    }
}

/// A string of 1 MiB (the largest message) in every field of every message:
/// a defined answer each time, and `ping` echoes it whole.
#[test]
fn a_mebibyte_string_in_every_field_gets_a_defined_answer() {
    let huge = Value::from("x".repeat(1 << 20));
    for (kind, names, _) in FIELDS {
        for name in *names {
            let mut frame = valid_frame(*kind, json!("big"));
            data_of(&mut frame).insert((*name).into(), huge.clone());
            let text = Value::Object(frame).to_string();
            let inbound = Inbound::parse(&text);
            assert_eq!(shape(&text), Shape::Known(*kind));
            if let Err(error) = inbound.request {
                assert!(matches!(
                    error.code,
                    ErrorCode::InvalidField | ErrorCode::TooLarge
                ));
            }
        }
    }
    let ping = json!({"type": "ping", "data": {"pad": huge}}).to_string();
    let Ok(Request::Ping { data }) = Inbound::parse(&ping).request else {
        panic!("ping refused")
    };
    assert_eq!(data["pad"].as_str().unwrap().len(), 1 << 20);
}

/// Numeric settings are client configuration like names and descriptions, and
/// PROTOCOL.md's clients get `invalid_field` or `too_large` for configuration
/// the server cannot use or bound.
#[test]
fn numeric_settings_are_bounded_when_configured() {
    for field in ["gas_limit", "max_priority_fee"] {
        for digits in [30, 1000, 100_000] {
            let mut frame = valid_frame(MessageType::CreateAgent, json!(1));
            data_of(&mut frame).insert(field.into(), Value::from("9".repeat(digits)));
            let request = Inbound::parse(&Value::Object(frame).to_string()).request;
            let code = request.err().map(|e| e.code);
            assert!(
                matches!(code, Some(ErrorCode::InvalidField | ErrorCode::TooLarge)),
                "{field} of {digits} digits accepted"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The campaign over real sockets.

/// What one request must get back, frame by frame.
#[derive(Debug, Clone)]
enum Reply {
    /// An `error` frame alone, its message starting with `prefix`.
    Error {
        code: &'static str,
        id: Option<Value>,
        prefix: String,
    },
    /// `<type>_response {status:"error", code}`, then the `error` frame whose
    /// message starts with the type.
    Failed {
        kind: MessageType,
        code: &'static str,
        id: Option<Value>,
    },
    /// `pong` with the request's data.
    Pong { data: Value, id: Value },
}

impl Reply {
    /// How PROTOCOL.md answers a failed request of type `kind`.
    fn failed(kind: MessageType, code: &'static str, id: Option<Value>) -> Reply {
        let prefix = match kind {
            MessageType::Ping => String::new(),
            MessageType::Action => "action: ".into(),
            _ => return Reply::Failed { kind, code, id },
        };
        Reply::Error { code, id, prefix }
    }

    fn frames(&self) -> usize {
        if matches!(self, Reply::Failed { .. }) {
            2
        } else {
            1
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    text: String,
    reply: Reply,
}

/// The value as the server reads it from its text, and a client reads it back.
fn reparsed(value: &Value) -> Value {
    serde_json::from_str(&value.to_string()).unwrap()
}

/// A request of a known type that must fail with `code`.
fn failing(frame: Map<String, Value>, code: ErrorCode) -> Case {
    let text = Value::Object(frame.clone()).to_string();
    let Shape::Known(kind) = shape(&text) else {
        panic!("not a known type: {text}")
    };
    let id = frame.get("id").filter(|id| !id.is_null()).map(reparsed);
    let reply = Reply::failed(kind, code.as_str(), id);
    Case { text, reply }
}

/// Ids without floats, whose text a round trip may change in the last digit.
fn campaign_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        "[a-zA-Z0-9 _-]{0,16}".prop_map(Value::from),
    ]
}

fn invalid_json_case() -> impl Strategy<Value = Case> {
    let deep = (128usize..=10_000, any::<bool>()).prop_map(|(depth, arrays)| {
        format!(r#"{{"type":"ping","data":{}}}"#, nested(depth, arrays))
    });
    let not_objects = json_value()
        .prop_filter("not an object", |v| !v.is_object())
        .prop_map(|v| v.to_string());
    prop_oneof![any::<String>(), mutated_frame(), not_objects, deep]
        .prop_filter("not a JSON object", |text| {
            shape(text) == Shape::InvalidJson
        })
        .prop_map(|text| {
            let prefix = "Invalid JSON message".into();
            let reply = Reply::Error {
                code: "invalid_json",
                id: None,
                prefix,
            };
            Case { text, reply }
        })
}

fn unknown_type_case() -> impl Strategy<Value = Case> {
    let unknown = |name: &String| MessageType::parse(name).is_none_or(|t| t == MessageType::Action);
    (
        "[a-z_]{0,20}".prop_filter("an unknown type", unknown),
        campaign_id(),
    )
        .prop_map(|(name, id)| {
            let text = json!({"type": name, "id": id, "data": {"agent_id": AGENT}}).to_string();
            let prefix = format!("Unknown message type: {name}");
            let reply = Reply::Error {
                code: "unknown_type",
                id: Some(id),
                prefix,
            };
            Case { text, reply }
        })
}

fn bad_id_case() -> impl Strategy<Value = Case> {
    (select(MessageType::ALL.to_vec()), container()).prop_map(|(kind, id)| {
        let text = Value::Object(valid_frame(kind, id)).to_string();
        let reply = Reply::Error {
            code: "invalid_field",
            id: None,
            prefix: String::new(),
        };
        Case { text, reply }
    })
}

fn too_large_case() -> impl Strategy<Value = Case> {
    (select(LIMITS.to_vec()), campaign_id()).prop_map(|((kind, field, limit, code), id)| {
        let mut frame = valid_frame(kind, id);
        data_of(&mut frame).insert(field.into(), Value::from(sized('a', limit + 1)));
        failing(frame, code)
    })
}

/// Valid requests about an agent that does not exist.
fn not_found_case() -> impl Strategy<Value = Case> {
    use MessageType as T;
    let kinds = vec![
        T::GetAgent,
        T::StartAgent,
        T::StopAgent,
        T::ConfigureAgent,
        T::RemoveAgent,
    ];
    (select(kinds), campaign_id()).prop_map(|(kind, id)| {
        let mut frame = valid_frame(kind, id);
        data_of(&mut frame).insert("agent_id".into(), json!("no-such-agent"));
        failing(frame, ErrorCode::NotFound)
    })
}

fn ping_case() -> impl Strategy<Value = Case> {
    (json_object(), campaign_id()).prop_map(|(data, id)| {
        let text = json!({"type": "ping", "data": data, "id": id}).to_string();
        let data = reparsed(&reparsed(&Value::Object(data)));
        Case {
            text,
            reply: Reply::Pong { data, id },
        }
    })
}

/// One frame of the campaign, with its answer. The malformed requests about
/// an agent name the campaign's own: none of them may change it.
fn campaign_case() -> impl Strategy<Value = Case> {
    let fields = wrong_field().prop_map(|(frame, _)| failing(frame, ErrorCode::InvalidField));
    let agent_ids = wrong_agent_id().prop_map(|frame| failing(frame, ErrorCode::InvalidField));
    prop_oneof![
        3 => invalid_json_case(),
        1 => unknown_type_case(),
        1 => bad_id_case(),
        4 => fields,
        2 => agent_ids,
        1 => too_large_case(),
        1 => not_found_case(),
        2 => ping_case(),
    ]
}

/// `count` cases, the same on every run.
fn generate(count: usize) -> Vec<Case> {
    let mut runner = TestRunner::deterministic();
    let strategy = campaign_case();
    let mut cases = Vec::with_capacity(count);
    while cases.len() < count {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        // Under the server's message limit: that one has its own close code.
        if case.text.len() < 60_000 {
            cases.push(case);
        }
    }
    cases
}

fn check_error_frame(frame: &Value, code: &str, id: &Option<Value>, prefix: &str) -> bool {
    let message = frame["message"].as_str().unwrap_or_default();
    frame["type"] == "error"
        && frame["data"]["code"] == code
        && frame["data"]["message"] == message
        && message.starts_with(prefix)
        && frame.get("id") == id.as_ref()
}

/// Whether `frames` are exactly the answer `reply` describes.
fn answers(reply: &Reply, frames: &[Value]) -> bool {
    match reply {
        Reply::Error { code, id, prefix } => check_error_frame(&frames[0], code, id, prefix),
        Reply::Failed { kind, code, id } => {
            let response = &frames[0];
            let data = &response["data"];
            let named = format!("{}: ", kind.as_str());
            let execute = response["type"] == "execute_response";
            response["type"] == kind.response_type().unwrap()
                && data["status"] == "error"
                && data["code"] == *code
                && data["message"].as_str().is_some_and(|m| !m.is_empty())
                && (!execute || data["run_id"].is_null())
                && response.get("id") == id.as_ref()
                && check_error_frame(&frames[1], code, id, &named)
        }
        Reply::Pong { data, id } => frames[0] == json!({"type": "pong", "data": data, "id": id}),
    }
}

/// Sends `cases` on one connection, in batches, and checks every answer in
/// order: nothing missing, nothing extra, the connection open throughout.
async fn campaign(server: &TestServer, channel: String, cases: &[Case]) {
    let mut ws = server.connect(&channel).await;
    for batch in cases.chunks(20) {
        for case in batch {
            ws.send(Message::text(case.text.clone())).await.unwrap();
        }
        for case in batch {
            let mut frames = Vec::new();
            for _ in 0..case.reply.frames() {
                frames.push(recv_json(&mut ws).await);
            }
            let sent: String = case.text.chars().take(300).collect();
            assert!(
                answers(&case.reply, &frames),
                "sent {sent}\nexpected {:?}\ngot {frames:?}",
                case.reply
            );
        }
    }
    ws.close(None).await.unwrap();
}

/// A framing violation, the bytes that make it, and the close code it gets.
type Violation = (&'static str, Vec<u8>, u16);

/// A message of `opcode` in two fragments.
fn fragmented(opcode: u8, first: &[u8], rest: &[u8]) -> Vec<u8> {
    let last = frame(true, 0, CONTINUATION, rest);
    [frame(false, 0, opcode, first), last].concat()
}

fn close_frame(payload: &[u8]) -> Vec<u8> {
    frame(true, 0, CLOSE, payload)
}

/// The header of a text frame of `len` bytes, and no payload.
fn header_only(len: u64) -> Vec<u8> {
    [
        vec![0x81, 0x80 | 127],
        len.to_be_bytes().to_vec(),
        vec![0; 4],
    ]
    .concat()
}

/// Binary messages (1003) and text that is not UTF-8 (1007).
fn payload_violations() -> Vec<Violation> {
    let text = abuse::text;
    vec![
        ("binary frame", frame(true, 0, BINARY, &[1, 2, 3]), 1003),
        (
            "binary frame in fragments",
            fragmented(BINARY, b"ab", b"cd"),
            1003,
        ),
        ("overlong UTF-8", text(b"{\"s\":\"\xc0\xaf\"}"), 1007),
        ("UTF-16 surrogate", text(b"{\"s\":\"\xed\xa0\x80\"}"), 1007),
        ("UTF-8 cut at the end", text(b"{\"s\":\"\xe2\x82"), 1007),
        (
            "bad continuation",
            fragmented(TEXT, b"{\"s\":\"", b"\xff\"}"),
            1007,
        ),
        (
            "cut continuation",
            fragmented(TEXT, b"{\"s\":\"", b"\xf0\x9f\x98"),
            1007,
        ),
    ]
}

/// Frames and messages over the 64 KiB limit (1009).
fn size_violations() -> Vec<Violation> {
    let mut over = frame(false, 0, TEXT, &[b' '; 20_000]);
    over.extend(frame(false, 0, CONTINUATION, &[b' '; 20_000]));
    over.extend(frame(false, 0, CONTINUATION, &[b' '; 20_000]));
    over.extend(frame(true, 0, CONTINUATION, &[b' '; 6_000]));
    vec![
        ("frame over the limit", header_only(70_000), 1009),
        ("frame of 2^63 - 1 bytes", header_only(u64::MAX >> 1), 1009),
        ("message over the limit in fragments", over, 1009),
    ]
}

/// Broken framing (1002).
fn framing_violations() -> Vec<Violation> {
    let interrupted = [frame(false, 0, TEXT, b"{"), abuse::text(b"{}")].concat();
    vec![
        ("text inside a fragmented message", interrupted, 1002),
        (
            "continuation of nothing",
            frame(true, 0, CONTINUATION, b"{}"),
            1002,
        ),
        (
            "RSV1 without an extension",
            frame(true, 4, TEXT, b"{}"),
            1002,
        ),
        ("RSV3 on a ping", frame(true, 1, PING, b""), 1002),
        ("reserved data opcode", frame(true, 0, 0x3, b""), 1002),
        ("reserved control opcode", frame(true, 0, 0xB, b""), 1002),
        (
            "ping over 125 bytes",
            frame(true, 0, PING, &[b'p'; 126]),
            1002,
        ),
        ("fragmented ping", frame(false, 0, PING, b"p"), 1002),
    ]
}

/// Close frames the server must refuse (1002, 1007), and frames after a
/// close, which are ignored.
fn close_violations() -> Vec<Violation> {
    let code = |code: u16| close_frame(&code.to_be_bytes());
    let ping = abuse::text(br#"{"type":"ping","id":"late"}"#);
    let after = [code(1000), ping, frame(true, 0, BINARY, b"x")].concat();
    vec![
        ("close with reserved code 1004", code(1004), 1002),
        ("close with code 1005", code(1005), 1002),
        ("close with code 999", code(999), 1002),
        ("close with a one-byte body", close_frame(&[3]), 1002),
        (
            "close reason not UTF-8",
            close_frame(&[0x03, 0xe8, 0xff, 0xfe]),
            1007,
        ),
        ("frames after a close", after, 1000),
    ]
}

fn violations() -> Vec<Violation> {
    [
        payload_violations(),
        size_violations(),
        framing_violations(),
        close_violations(),
    ]
    .concat()
}

/// One violation on a connection of its own: the ping before it is answered,
/// then the close code, and nothing else.
async fn violation(server: &TestServer, name: &str, bytes: &[u8], code: u16) {
    let mut tcp = raw_handshake(server.addr, "/ws/agent/violations").await;
    tcp.write_all(&abuse::text(br#"{"type":"ping","id":"first"}"#))
        .await
        .unwrap();
    // The server may close before it has read everything.
    let _ = tcp.write_all(bytes).await;
    let (texts, close) = read_to_close(&mut tcp).await;
    assert_eq!(close, Some(code), "{name}");
    let texts: Vec<Value> = texts
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    let pong = json!({"type": "pong", "data": {}, "id": "first"});
    assert_eq!(texts, vec![pong], "{name}: only the first ping is answered");
}

/// A character split across two fragments is fine: the message is answered
/// and the connection carries on.
async fn split_character_is_answered(server: &TestServer) {
    let mut tcp = raw_handshake(server.addr, "/ws/agent/violations").await;
    let text = r#"{"type":"ping","id":"split","data":{"s":"é"}}"#.as_bytes();
    let cut = text.iter().position(|b| *b == 0xc3).unwrap() + 1;
    let bytes = [
        frame(false, 0, TEXT, &text[..cut]),
        frame(true, 0, CONTINUATION, &text[cut..]),
    ];
    tcp.write_all(&bytes.concat()).await.unwrap();
    let (opcode, pong) = abuse::read_frame(&mut tcp).await.unwrap();
    let pong: Value = serde_json::from_slice(&pong).unwrap();
    assert_eq!(
        (opcode, pong),
        (
            TEXT,
            json!({"type": "pong", "id": "split", "data": {"s": "é"}})
        )
    );
    tcp.write_all(&frame(true, 0, CLOSE, &1000u16.to_be_bytes()))
        .await
        .unwrap();
    assert_eq!(read_to_close(&mut tcp).await, (vec![], Some(1000)));
}

/// The agent as stored: REST read, its events and its runs.
async fn stored(server: &TestServer) -> Vec<Value> {
    let mut reads = Vec::new();
    for path in ["", "/events?since=0&limit=5000", "/runs"] {
        let (status, _, body) = get(&server.url(&format!("/api/v1/agents/{AGENT}{path}"))).await;
        assert_eq!(status, 200, "{path}: {body}");
        reads.push(serde_json::from_str(&body).unwrap());
    }
    reads
}

/// Creates the campaign's agent, with a schedule and a description.
async fn create_agent(server: &TestServer) {
    let mut owner = Client::new(server.connect(AGENT).await);
    bare_agent(&mut owner, AGENT).await;
    owner
        .ok(
            "create_schedule",
            json!({"schedule_type": "interval", "interval_seconds": 3600}),
        )
        .await;
    owner
        .send(
            json!({"action": "updateConfig", "agentId": AGENT, "config": {"description": "kept"}}),
        )
        .await;
    owner.until("status").await;
    owner.ws.close(None).await.unwrap();
}

/// Thousands of hostile frames from a few connections, then framing
/// violations: each gets exactly its defined answer (error frames with their
/// code and the request id, or the close code), the server keeps answering, a
/// bystander following the targeted agent sees nothing, and the agent's stored
/// state and events are unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_hostile_frames_get_their_defined_answers_and_change_nothing() {
    let server = TestServer::start_with(|c| {
        c.max_message_bytes = 64 * 1024;
        c.ws_messages_per_second = 0;
    })
    .await;
    create_agent(&server).await;
    let before = stored(&server).await;
    let mut bystander = server.connect(AGENT).await;

    let cases = generate(3000);
    let connections = cases
        .chunks(750)
        .enumerate()
        .map(|(i, cases)| campaign(&server, format!("campaign-{i}"), cases));
    futures_util::future::join_all(connections).await;
    for (name, bytes, code) in violations() {
        violation(&server, name, &bytes, code).await;
    }
    split_character_is_answered(&server).await;

    send_json(&mut bystander, json!({"type": "ping", "id": "after"})).await;
    let pong = json!({"type": "pong", "data": {}, "id": "after"});
    assert_eq!(
        recv_json(&mut bystander).await,
        pong,
        "the bystander got nothing else"
    );
    assert_eq!(get(&server.url("/health")).await.2, "OK");
    let mut fresh = server.connect("after-the-campaign").await;
    send_json(&mut fresh, json!({"type": "ping", "id": 1})).await;
    assert_eq!(recv_json(&mut fresh).await["type"], "pong");
    fresh.close(None).await.unwrap();
    assert_eq!(stored(&server).await, before, "the agent is unchanged");
    wait_until("only the bystander is left", || async {
        server.state.registry.len() == 1
    })
    .await;
    server.shutdown().await.unwrap();
}

/// PROTOCOL.md: `ping` gets `pong` with the same `data`. Numbers are data: a
/// client that sends a float reads back that float, digit for digit.
#[tokio::test]
async fn numbers_are_echoed_as_sent() {
    let server = TestServer::start().await;
    let mut ws = server.connect("numbers").await;
    for literal in [
        "5.679135754946212e288",
        "3.818439622836162e152",
        "0.1",
        "1e-300",
    ] {
        let ping = format!(r#"{{"type":"ping","data":{{"x":{literal}}}}}"#);
        ws.send(Message::text(ping)).await.unwrap();
        let Some(Message::Text(pong)) = next_message(&mut ws).await else {
            panic!("no pong")
        };
        // Read with Rust's own (exact) float parser.
        let echoed = pong
            .split(r#""x":"#)
            .nth(1)
            .unwrap()
            .split('}')
            .next()
            .unwrap();
        let (sent, got) = (
            literal.parse::<f64>().unwrap(),
            echoed.parse::<f64>().unwrap(),
        );
        assert_eq!(sent, got, "sent {literal}, got {pong}");
    }
    server.shutdown().await.unwrap();
}
