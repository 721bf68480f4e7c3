//! Where a page of agents ends.

use alloy::hex;

use super::{Agent, AgentError};

/// The position after the last agent of a page, as clients carry it: opaque
/// hex of its creation time and id. Both are kept, not the id alone, so the
/// next page starts at the right place even when that agent has since been
/// removed; hex keeps any id safe in a query string and a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCursor {
    pub created_at: String,
    pub agent_id: String,
}

impl AgentCursor {
    pub fn after(agent: &Agent) -> Self {
        AgentCursor {
            created_at: agent.created_at.clone(),
            agent_id: agent.agent_id.clone(),
        }
    }

    pub fn encode(&self) -> String {
        hex::encode(format!("{}\n{}", self.created_at, self.agent_id))
    }

    /// A cursor this server did not hand out is an input error, never a
    /// silently empty page.
    pub fn decode(text: &str) -> Result<Self, AgentError> {
        let invalid = || AgentError::Invalid("cursor is not one this server returned".into());
        let bytes = hex::decode(text).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (created_at, agent_id) = text.split_once('\n').ok_or_else(invalid)?;
        Ok(AgentCursor {
            created_at: created_at.to_string(),
            agent_id: agent_id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_round_trip_and_a_forged_one_is_refused() {
        let cursor = AgentCursor {
            created_at: "2026-11-30T07:00:00.000Z".into(),
            agent_id: "a&b c\nd".into(),
        };
        let text = cursor.encode();
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(AgentCursor::decode(&text).unwrap(), cursor);
        for forged in [
            "zz",
            "p3",
            &hex::encode("no separator"),
            &hex::encode([0xff, 0xfe]),
        ] {
            assert!(matches!(
                AgentCursor::decode(forged),
                Err(AgentError::Invalid(_))
            ));
        }
    }
}
