//! Actions: every signed transaction, recorded before it is broadcast and
//! followed until it is final.

use super::names;

names! {
    /// Where a signed transaction is.
    pub enum ActionState {
        /// Recorded and (about to be) broadcast; not final yet.
        Sent = "sent",
        Confirmed = "confirmed",
        Reverted = "reverted",
        /// Its nonce was used by another transaction: it will never be mined.
        Replaced = "replaced",
        /// The node no longer knows it and its nonce is still free.
        Dropped = "dropped",
    }
}

/// One recorded action.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub action_id: String,
    pub run_id: String,
    pub agent_id: String,
    pub function: String,
    /// The arguments, as JSON text.
    pub args: String,
    pub value_wei: String,
    pub nonce: u64,
    pub tx_hash: String,
    /// The signing account.
    pub from: String,
    /// The signed transaction (0x hex), to broadcast again if the node lost it.
    pub raw_tx: String,
    pub state: ActionState,
    pub gas_used: Option<u64>,
    pub block: Option<u64>,
    /// When it was signed (RFC 3339).
    pub created_at: String,
}
