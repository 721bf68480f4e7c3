//! Where a page of a list ends.

use alloy::hex;

use super::{Agent, AgentError, Run};

/// The position of the last item of a page (an agent, a run), as clients
/// carry it: opaque hex of its time (created, started) and id. Both are kept,
/// not the id alone, so the next page starts at the right place even when that
/// item has since been removed; hex keeps any id safe in a query string and a
/// header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    pub at: String,
    pub id: String,
}

impl PageCursor {
    pub fn after_agent(agent: &Agent) -> Self {
        PageCursor {
            at: agent.created_at.clone(),
            id: agent.agent_id.clone(),
        }
    }

    pub fn after_run(run: &Run) -> Self {
        PageCursor {
            at: run.started_at.clone(),
            id: run.run_id.clone(),
        }
    }

    pub fn encode(&self) -> String {
        hex::encode(format!("{}\n{}", self.at, self.id))
    }

    /// A cursor this server did not hand out is an input error, never a
    /// silently empty page.
    pub fn decode(text: &str) -> Result<Self, AgentError> {
        let invalid = || AgentError::Invalid("cursor is not one this server returned".into());
        let bytes = hex::decode(text).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (at, id) = text.split_once('\n').ok_or_else(invalid)?;
        Ok(PageCursor {
            at: at.to_string(),
            id: id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_round_trip_and_a_forged_one_is_refused() {
        let cursor = PageCursor {
            at: "2026-11-30T07:00:00.000Z".into(),
            id: "a&b c\nd".into(),
        };
        let text = cursor.encode();
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(PageCursor::decode(&text).unwrap(), cursor);
        for forged in [
            "zz",
            "p3",
            &hex::encode("no separator"),
            &hex::encode([0xff, 0xfe]),
        ] {
            assert!(matches!(
                PageCursor::decode(forged),
                Err(AgentError::Invalid(_))
            ));
        }
    }
}
