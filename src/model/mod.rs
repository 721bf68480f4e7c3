//! The plain types of the domain: entities and their JSON shapes, the inputs of
//! commands, runs and events, the caller of a command, domain errors and ABI
//! helpers. No I/O: every layer above may use them, they use nothing above.

pub mod abi;
mod action;
mod agent;
mod caller;
mod cursor;
mod error;
mod event;
mod input;
mod run;

pub use action::{Action, ActionState};
pub use agent::{
    Agent, AgentDetails, AgentState, AgentStatus, Contract, Function, FunctionType, Notification,
    NotificationType, Published, Schedule, ScheduleKind, ScheduleType,
};
pub use caller::{Caller, Role, Scope};
pub use cursor::PageCursor;
pub use error::AgentError;
pub use event::{EventBody, EventKind, StoredEvent, StreamBounds};
pub use input::{NewAgent, NewContract, NewFunction, NewNotification, NewSchedule};
pub use run::{LogLevel, Run, RunStatus, Trigger, trimmed_request};

/// A closed set of names: the enum, `as_str`, `parse` (with aliases) and `ALL`
/// from one table, so that a name is written once. Every name is the snake_case
/// of its variant, which is also how serde writes it (a test checks).
macro_rules! names {
    ($(#[$meta:meta])* $vis:vis enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal $(| $alias:literal)*),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every member, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text $(| $alias)* => Some($name::$variant),)+ _ => None }
            }
        }

        /// Compares with the stored or wire name.
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use names;

/// The current time as the store and the wire write it: RFC 3339, UTC, millis.
pub fn now() -> String {
    format_time(chrono::Utc::now())
}

pub fn format_time(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `0x` followed by 40 hex digits.
pub fn is_address(value: &str) -> bool {
    value.len() == 42
        && value.starts_with("0x")
        && value[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON name of every member is its table name.
    fn serde_names_are_table_names<T: serde::Serialize + Copy + std::fmt::Display>(all: &[T]) {
        for member in all {
            let json = serde_json::to_value(member).unwrap();
            assert_eq!(json, member.to_string());
        }
    }

    #[test]
    fn every_closed_set_serializes_as_its_table() {
        serde_names_are_table_names(AgentStatus::ALL);
        serde_names_are_table_names(FunctionType::ALL);
        serde_names_are_table_names(NotificationType::ALL);
        serde_names_are_table_names(ScheduleType::ALL);
        serde_names_are_table_names(RunStatus::ALL);
        serde_names_are_table_names(Trigger::ALL);
        serde_names_are_table_names(LogLevel::ALL);
        serde_names_are_table_names(EventKind::ALL);
        assert_eq!(AgentStatus::parse("stopped"), Some(AgentStatus::Paused));
        assert_eq!(RunStatus::Skipped, "skipped");
    }
}
