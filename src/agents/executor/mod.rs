//! How an agent touches the outside world: reading and calling its contract's
//! functions, on an EVM node (`evm`) or through the legacy contract API (`http`).

pub mod evm;
pub mod http;

use futures_util::future::BoxFuture;
use serde::{Serialize, Serializer, ser::SerializeMap};
use serde_json::Value;

pub use evm::EvmExecutor;
pub use http::HttpExecutor;

/// One function call, with everything an executor needs.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub address: &'a str,
    pub signature: &'a str,
    /// The function's ABI entry.
    pub abi: Option<&'a Value>,
    pub args: &'a [Value],
    /// Wei sent with a payable call.
    pub value: Option<alloy::primitives::U256>,
}

/// What became of a write.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOutcome {
    pub tx_hash: String,
    pub success: bool,
    pub gas_used: u64,
    pub revert_reason: Option<String>,
    /// The pre-flight simulation reverted: nothing was broadcast.
    pub simulated: bool,
}

impl WriteOutcome {
    /// A write refused by its own simulation: no transaction, no gas.
    pub fn simulated_revert(reason: String) -> Self {
        Self {
            tx_hash: String::new(),
            success: false,
            gas_used: 0,
            revert_reason: Some(reason),
            simulated: true,
        }
    }
}

/// `{tx_hash, status: "success" | "reverted", gas_used, revert_reason}`.
impl Serialize for WriteOutcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let status = if self.success { "success" } else { "reverted" };
        let mut map = serializer.serialize_map(Some(5))?;
        if self.simulated {
            map.serialize_entry("tx_hash", &None::<String>)?;
            map.serialize_entry("simulated", &true)?;
        } else {
            map.serialize_entry("tx_hash", &self.tx_hash)?;
        }
        map.serialize_entry("status", status)?;
        map.serialize_entry("gas_used", &self.gas_used)?;
        map.serialize_entry("revert_reason", &self.revert_reason)?;
        map.end()
    }
}

/// A write that failed, and whether its transaction may have gone out anyway
/// (a timeout after the request left): then its value counts as spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteError {
    pub message: String,
    pub maybe_sent: bool,
}

impl WriteError {
    pub fn maybe_sent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            maybe_sent: true,
        }
    }
}

/// Errors found before anything was sent.
impl From<String> for WriteError {
    fn from(message: String) -> Self {
        Self {
            message,
            maybe_sent: false,
        }
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where a signed transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub state: crate::model::ActionState,
    pub gas_used: Option<u64>,
    pub block: Option<u64>,
}

impl Settled {
    pub fn pending() -> Self {
        Self::state(crate::model::ActionState::Sent)
    }

    pub fn dropped() -> Self {
        Self::state(crate::model::ActionState::Dropped)
    }

    pub fn state(state: crate::model::ActionState) -> Self {
        Self {
            state,
            gas_used: None,
            block: None,
        }
    }
}

/// A signed transaction about to be broadcast.
#[derive(Debug, Clone, Copy)]
pub struct SignedTx<'a> {
    pub from: &'a str,
    pub nonce: u64,
    pub tx_hash: &'a str,
    /// 0x hex of the signed bytes.
    pub raw: &'a str,
}

/// The write-ahead record of a run's transactions: a signed transaction is
/// recorded before it is broadcast, and settled when it is final.
pub trait Journal: Send + Sync {
    /// Records a signed transaction; `Err` (the record failed, or the run was
    /// stopped) means it must not be sent.
    fn signed<'a>(&'a self, tx: SignedTx<'a>) -> BoxFuture<'a, Result<(), String>>;
    fn settled<'a>(&'a self, tx_hash: &'a str, settled: Settled) -> BoxFuture<'a, ()>;
    /// The node refused the transaction: it never left, forget it.
    fn withdrawn<'a>(&'a self, tx_hash: &'a str) -> BoxFuture<'a, ()>;
}

/// The executor the server was configured with.
#[derive(Debug)]
pub enum Executor {
    Evm(EvmExecutor),
    Http(HttpExecutor),
}

impl Executor {
    pub fn name(&self) -> &'static str {
        match self {
            Executor::Evm(_) => "evm",
            Executor::Http(_) => "http",
        }
    }

    /// Checks, once per run, that the executor can serve this contract.
    pub async fn prepare(&self, chain_id: i64) -> Result<(), String> {
        match self {
            Executor::Evm(evm) => evm.check_chain(chain_id).await,
            Executor::Http(_) => Ok(()),
        }
    }

    /// Where a recorded transaction stands on chain (`None`: this executor
    /// cannot tell). `age` is how long ago it was signed.
    pub async fn settled(
        &self,
        action: &crate::model::Action,
        age: std::time::Duration,
    ) -> Option<Result<Settled, String>> {
        match self {
            Executor::Evm(evm) => Some(evm.settled(action, age).await),
            Executor::Http(_) => None,
        }
    }

    pub async fn read(&self, call: &Call<'_>) -> Result<Value, String> {
        match self {
            Executor::Evm(evm) => evm.read(call).await,
            Executor::Http(http) => http.read(call).await,
        }
    }

    pub async fn write(
        &self,
        call: &Call<'_>,
        gas_limit: u64,
        max_priority_fee: &str,
        journal: &dyn Journal,
    ) -> Result<WriteOutcome, WriteError> {
        match self {
            Executor::Evm(evm) => {
                let fee = evm::gwei_to_wei(max_priority_fee)?;
                evm.write(call, gas_limit, fee, journal).await
            }
            Executor::Http(http) => http.write(call, gas_limit, max_priority_fee).await,
        }
    }
}
