//! Calls contracts on an EVM chain over JSON-RPC (alloy), with calldata built
//! from the stored ABI entry at run time: reads are `eth_call`, writes signed
//! EIP-1559 transactions. The key comes from the environment and never leaves
//! this module.

use std::{future::Future, time::Duration};

use alloy::{
    dyn_abi::{DynSolValue, FunctionExt, JsonAbiExt},
    eips::Encodable2718,
    hex,
    json_abi::Function as AbiFunction,
    network::{Ethereum, EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
    primitives::TxHash,
    primitives::{
        Address,
        utils::{ParseUnits, parse_units},
    },
    providers::{DynProvider, PendingTransactionBuilder, Provider, ProviderBuilder},
    rpc::types::BlockId,
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    transports::{RpcError, TransportError},
};
use serde_json::{Value, json};

use super::{Call, Journal, Settled, SignedTx, WriteError, WriteOutcome};
use crate::{
    agents::retry::{Attempt, GaveUp, Retry},
    model::{Action, ActionState, abi},
};

/// Calls that change nothing are tried again when the node asks for it (429,
/// 503): a rate-limited provider is the common case.
const IDEMPOTENT: Retry = Retry {
    attempts: 3,
    backoff: Duration::from_millis(250),
};

/// Runs an idempotent node call under `IDEMPOTENT`.
async fn idempotent<T, F, Fut>(mut call: F) -> Result<T, TransportError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, TransportError>>,
{
    let retried = IDEMPOTENT
        .run(|| {
            let attempt = call();
            async move {
                attempt.await.map_err(|error| match &error {
                    RpcError::Transport(kind) if kind.is_retry_err() => Attempt::Again(error),
                    _ => Attempt::Fatal(error),
                })
            }
        })
        .await;
    retried.map_err(|gave_up| match gave_up {
        GaveUp::Fatal(error) | GaveUp::Exhausted { last: error, .. } => error,
    })
}

/// How long the node may take, and what a transaction may cost.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// One JSON-RPC request (connect included).
    pub rpc: Duration,
    /// A transaction's receipt.
    pub receipt: Duration,
    /// Most wei per gas a transaction may pay (base fee and priority fee).
    pub max_fee_wei: u128,
}

pub struct EvmExecutor {
    provider: DynProvider,
    /// The account that signs writes; `None` when no key is configured.
    sender: Option<Address>,
    /// Signs transactions here, so that each is recorded before it is sent.
    wallet: Option<EthereumWallet>,
    /// The next nonce of the key, as this process knows it (`None`: ask the
    /// node). Held while a transaction is sent, so the sends of every agent
    /// sharing the key go one at a time.
    nonce: tokio::sync::Mutex<Option<u64>>,
    receipt_timeout: Duration,
    max_fee_wei: u128,
}

impl std::fmt::Debug for EvmExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvmExecutor")
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

impl EvmExecutor {
    /// Builds the client; no network call happens here (the node may be down).
    pub fn new(
        rpc_url: &str,
        private_key: Option<&str>,
        timeouts: Timeouts,
    ) -> Result<Self, String> {
        crate::tls::install_crypto_provider();
        let url: reqwest::Url = rpc_url
            .parse()
            .map_err(|_| "EVM_RPC_URL is not a URL".to_string())?;
        // alloy's default HTTP client waits forever: every request gets a bound.
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.rpc.min(Duration::from_secs(5)))
            .timeout(timeouts.rpc)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let signer = match private_key {
            Some(key) => Some(
                key.trim()
                    .parse::<PrivateKeySigner>()
                    .map_err(|_| "EVM_PRIVATE_KEY is not a valid private key".to_string())?,
            ),
            None => None,
        };
        let provider = ProviderBuilder::new().connect_reqwest(http, url).erased();
        Ok(Self {
            provider,
            sender: signer.as_ref().map(|s| s.address()),
            wallet: signer.map(EthereumWallet::from),
            nonce: tokio::sync::Mutex::new(None),
            receipt_timeout: timeouts.receipt,
            max_fee_wei: timeouts.max_fee_wei,
        })
    }

    pub fn sender(&self) -> Option<Address> {
        self.sender
    }

    /// Fails unless the node serves the contract's chain.
    pub async fn check_chain(&self, chain_id: i64) -> Result<(), String> {
        let node = idempotent(|| self.provider.get_chain_id())
            .await
            .map_err(|e| format!("EVM node unreachable: {}", describe_rpc_error(&e)))?;
        if i64::try_from(node).ok() != Some(chain_id) {
            return Err(format!(
                "the EVM node serves chain {node}, the contract is on chain {chain_id}"
            ));
        }
        Ok(())
    }

    pub async fn read(&self, call: &Call<'_>) -> Result<Value, String> {
        let (function, to, data) = encode(call)?;
        let request = TransactionRequest::default().with_to(to).with_input(data);
        let output = idempotent(|| self.provider.call(request.clone()).into_future())
            .await
            .map_err(|e| describe_rpc_error(&e))?;
        let values = function
            .abi_decode_output(&output)
            .map_err(|e| format!("cannot decode the output of {}: {e}", call.signature))?;
        Ok(outputs_json(&values))
    }

    /// Simulates, signs, records (`journal`), sends and follows one write. A
    /// simulated revert sends nothing; a send is retried once on a stale nonce
    /// (another wallet used the key), after asking the node for the pending count.
    pub async fn write(
        &self,
        call: &Call<'_>,
        gas_limit: u64,
        max_priority_fee_wei: u128,
        journal: &dyn Journal,
    ) -> Result<WriteOutcome, WriteError> {
        let (Some(from), Some(wallet)) = (self.sender, &self.wallet) else {
            let message = "no EVM_PRIVATE_KEY is configured: writes cannot be signed";
            return Err(message.to_string().into());
        };
        let (_, to, data) = encode(call)?;
        let base = TransactionRequest::default()
            .with_from(from)
            .with_to(to)
            .with_input(data)
            .with_value(call.value.unwrap_or_default());
        if let Some(reason) = self.simulate(&base).await? {
            return Ok(WriteOutcome::simulated_revert(reason));
        }
        let gas_limit = match gas_limit {
            0 => self.estimate_gas(&base).await?,
            set => set,
        };
        let request = self
            .with_fees(base.clone(), max_priority_fee_wei)
            .await?
            .with_gas_limit(gas_limit);
        let tx_hash = self.send(request, wallet, journal).await?;
        self.follow(tx_hash, base).await
    }

    /// The node's estimate with a fifth more: for agents that set no gas limit.
    async fn estimate_gas(&self, base: &TransactionRequest) -> Result<u64, WriteError> {
        let estimate = idempotent(|| self.provider.estimate_gas(base.clone()).into_future()).await;
        let gas = estimate.map_err(|e| format!("estimating gas: {}", describe_rpc_error(&e)))?;
        Ok(gas.saturating_add(gas / 5))
    }

    /// EIP-1559 fees from the node, with the agent's priority fee.
    async fn with_fees(
        &self,
        request: TransactionRequest,
        priority: u128,
    ) -> Result<TransactionRequest, WriteError> {
        let chain = idempotent(|| self.provider.get_chain_id()).await;
        let fees = idempotent(|| self.provider.estimate_eip1559_fees()).await;
        let unsent = |e: TransportError| WriteError::from(describe_rpc_error(&e));
        let (chain, fees) = (chain.map_err(unsent)?, fees.map_err(unsent)?);
        let base_room = fees
            .max_fee_per_gas
            .saturating_sub(fees.max_priority_fee_per_gas);
        let (max_fee, cap) = (base_room.saturating_add(priority), self.max_fee_wei);
        if max_fee > cap {
            return Err(format!(
                "the fee would be {max_fee} wei per gas, over AGENTPORT_MAX_FEE_GWEI ({cap} wei): \
                 not sent"
            )
            .into());
        }
        Ok(request
            .with_chain_id(chain)
            .with_max_priority_fee_per_gas(priority)
            .with_max_fee_per_gas(max_fee))
    }

    /// The call as the pending block would run it: `Some(reason)` if it reverts.
    async fn simulate(&self, base: &TransactionRequest) -> Result<Option<String>, WriteError> {
        let simulated = self
            .provider
            .call(base.clone())
            .block(BlockId::pending())
            .await;
        match simulated {
            Ok(_) => Ok(None),
            Err(error) if error.revert_data().is_some() || is_revert(&error) => {
                let reason = describe_rpc_error(&error);
                Ok(Some(reason.trim_start_matches("reverted: ").to_string()))
            }
            Err(error) => Err(format!("simulation failed: {}", describe_rpc_error(&error)).into()),
        }
    }

    /// Under the key's nonce: signs, records, broadcasts; returns the hash.
    async fn send(
        &self,
        request: TransactionRequest,
        wallet: &EthereumWallet,
        journal: &dyn Journal,
    ) -> Result<TxHash, WriteError> {
        let mut next = self.nonce.lock().await;
        for attempt in 0..2 {
            let nonce = match *next {
                Some(nonce) => nonce,
                None => self.pending_nonce().await?,
            };
            let request = request.clone().with_nonce(nonce);
            let signed =
                <TransactionRequest as NetworkTransactionBuilder<Ethereum>>::build(request, wallet);
            let signed = signed.await;
            let envelope = signed.map_err(|e| format!("signing failed: {e}"))?;
            let tx_hash = *envelope.tx_hash();
            let hash = format!("{tx_hash:#x}");
            let raw = envelope.encoded_2718();
            let raw_hex = hex::encode_prefixed(&raw);
            let from = format!("{:#x}", self.sender.unwrap_or_default());
            // Recorded before it leaves: a crash from here on is reconciled.
            let signed = SignedTx {
                from: &from,
                nonce,
                tx_hash: &hash,
                raw: &raw_hex,
            };
            journal.signed(signed).await?;
            // Unknown until the node answers: a cancelled send asks it again.
            *next = None;
            match self.provider.send_raw_transaction(&raw).await {
                Ok(_) => {
                    *next = Some(nonce + 1);
                    return Ok(tx_hash);
                }
                // This very transaction is in the pool already: it went out.
                Err(error) if is_already_known(&error) => {
                    *next = Some(nonce + 1);
                    return Ok(tx_hash);
                }
                Err(error) => {
                    // The node said no: nothing went out. Anything else (a
                    // timeout, a broken connection) may have reached it.
                    let rejected = error.as_error_resp().is_some();
                    if rejected {
                        journal.withdrawn(&hash).await;
                    }
                    if rejected && attempt == 0 && is_stale_nonce(&error) {
                        continue;
                    }
                    return Err(WriteError {
                        maybe_sent: !rejected,
                        message: describe_rpc_error(&error),
                    });
                }
            }
        }
        unreachable!("the second attempt returns")
    }

    async fn pending_nonce(&self) -> Result<u64, WriteError> {
        let from = self.sender.unwrap_or_default();
        idempotent(|| {
            self.provider
                .get_transaction_count(from)
                .pending()
                .into_future()
        })
        .await
        .map_err(|e| format!("reading the key's nonce: {}", describe_rpc_error(&e)).into())
    }

    /// Waits for the receipt; a failed one is replayed at its block for the reason.
    async fn follow(
        &self,
        tx_hash: TxHash,
        replay: TransactionRequest,
    ) -> Result<WriteOutcome, WriteError> {
        let hash = format!("{tx_hash:#x}");
        let timeout = self.receipt_timeout;
        let receipt = PendingTransactionBuilder::new(self.provider.root().clone(), tx_hash)
            .with_timeout(Some(timeout))
            .get_receipt()
            .await
            .map_err(|e| e.to_string());
        let receipt = match receipt {
            Ok(receipt) => receipt,
            Err(e) => {
                // It may never be mined: the next send asks the node.
                self.forget_nonce().await;
                let message = format!("no receipt for {hash} within {timeout:?}: {e}");
                return Err(WriteError::maybe_sent(message));
            }
        };
        let (gas_used, success) = (receipt.gas_used, receipt.status());
        let revert_reason = match (success, receipt.block_number) {
            (true, _) => None,
            (false, Some(block)) => match self.provider.call(replay).block(block.into()).await {
                Err(error) => Some(describe_rpc_error(&error)),
                Ok(_) => Some("reverted without a reason".into()),
            },
            (false, None) => Some("reverted without a reason".into()),
        };
        Ok(WriteOutcome {
            tx_hash: hash,
            success,
            gas_used,
            revert_reason,
            simulated: false,
        })
    }
}

impl EvmExecutor {
    /// Where a recorded transaction stands on chain now. Unknown to the node
    /// with its nonce unused, it is `dropped` only once older than
    /// `DROP_AFTER` (it may just be slow to spread).
    pub async fn settled(&self, action: &Action, age: Duration) -> Result<Settled, String> {
        let tx_hash = &action.tx_hash;
        let hash: TxHash = tx_hash
            .parse()
            .map_err(|_| format!("`{tx_hash}` is not a hash"))?;
        if let Some(settled) = self.receipt_of(hash).await? {
            return Ok(settled);
        }
        let failed = |e: TransportError| describe_rpc_error(&e);
        let known = idempotent(|| self.provider.get_transaction_by_hash(hash)).await;
        if known.map_err(failed)?.is_some() {
            return Ok(Settled::pending());
        }
        let from: Address = action.from.parse().unwrap_or_default();
        let used = idempotent(|| {
            self.provider
                .get_transaction_count(from)
                .latest()
                .into_future()
        });
        if used.await.map_err(failed)? > action.nonce {
            // Mined meanwhile, or truly replaced: the receipt says which.
            if let Some(settled) = self.receipt_of(hash).await? {
                return Ok(settled);
            }
            return Ok(Settled::state(ActionState::Replaced));
        }
        if age < DROP_AFTER {
            // The node lost it (or never got it): the same signed bytes again.
            if let Ok(raw) = hex::decode(&action.raw_tx) {
                let _ = self.provider.send_raw_transaction(&raw).await;
            }
            return Ok(Settled::pending());
        }
        self.forget_nonce().await;
        Ok(Settled::dropped())
    }

    async fn receipt_of(&self, hash: TxHash) -> Result<Option<Settled>, String> {
        let receipt = idempotent(|| self.provider.get_transaction_receipt(hash)).await;
        let receipt = receipt.map_err(|e| describe_rpc_error(&e))?;
        Ok(receipt.map(|receipt| Settled {
            state: if receipt.status() {
                ActionState::Confirmed
            } else {
                ActionState::Reverted
            },
            gas_used: Some(receipt.gas_used),
            block: receipt.block_number,
        }))
    }

    /// The next send asks the node for the key's nonce.
    pub async fn forget_nonce(&self) {
        *self.nonce.lock().await = None;
    }
}

/// How long a transaction the node does not know, with its nonce unused, may
/// still be on its way before it is called dropped.
const DROP_AFTER: Duration = Duration::from_secs(600);

/// The node refused the nonce: another wallet used the key, or a send failed
/// after taking one. Asking the node again and retrying once is safe.
fn is_stale_nonce(error: &TransportError) -> bool {
    let Some(response) = error.as_error_resp() else {
        return false;
    };
    let message = response.message.to_ascii_lowercase();
    [
        "nonce too low",
        "already known",
        "replacement transaction underpriced",
        "nonce has already been used",
    ]
    .iter()
    .any(|stale| message.contains(stale))
}

/// The node already has this exact transaction.
fn is_already_known(error: &TransportError) -> bool {
    error.as_error_resp().is_some_and(|r| {
        let message = r.message.to_ascii_lowercase();
        message.contains("already known") || message.contains("known transaction")
    })
}

/// A JSON-RPC error that says the call reverted (some nodes send no data).
fn is_revert(error: &TransportError) -> bool {
    error
        .as_error_resp()
        .is_some_and(|r| r.message.to_ascii_lowercase().contains("revert"))
}

/// The ABI entry, the contract address and the calldata of a call.
fn encode(call: &Call<'_>) -> Result<(AbiFunction, Address, alloy::primitives::Bytes), String> {
    let abi = call
        .abi
        .ok_or_else(|| format!("{} has no ABI entry to encode a call with", call.signature))?;
    let function = abi::function(abi)
        .map_err(|e| format!("the ABI entry of {} is not valid: {e}", call.signature))?;
    let to: Address = call
        .address
        .parse()
        .map_err(|_| format!("`{}` is not an address", call.address))?;
    if call.args.len() != function.inputs.len() {
        return Err(format!(
            "{} takes {} argument(s), {} given",
            call.signature,
            function.inputs.len(),
            call.args.len()
        ));
    }
    let values = abi::inputs(&function)?
        .iter()
        .zip(call.args)
        .map(|(input, arg)| abi::coerce(input, arg))
        .collect::<Result<Vec<_>, String>>()?;
    let data = function
        .abi_encode_input(&values)
        .map_err(|e| format!("cannot encode {}: {e}", call.signature))?;
    Ok((function, to, data.into()))
}

/// Decoded outputs: one value as itself, several as an array.
fn outputs_json(values: &[DynSolValue]) -> Value {
    match values {
        [one] => to_json(one),
        many => Value::Array(many.iter().map(to_json).collect()),
    }
}

/// uint/int as decimal strings (they overflow JSON numbers), bytes as 0x hex.
pub fn to_json(value: &DynSolValue) -> Value {
    match value {
        DynSolValue::Bool(b) => json!(b),
        DynSolValue::Int(i, _) => json!(i.to_string()),
        DynSolValue::Uint(u, _) => json!(u.to_string()),
        DynSolValue::Address(a) => json!(a.to_checksum(None)),
        DynSolValue::FixedBytes(word, size) => json!(hex::encode_prefixed(&word[..*size])),
        DynSolValue::Bytes(bytes) => json!(hex::encode_prefixed(bytes)),
        DynSolValue::String(s) => json!(s),
        DynSolValue::Function(f) => json!(hex::encode_prefixed(f.as_slice())),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) | DynSolValue::Tuple(items) => {
            Value::Array(items.iter().map(to_json).collect())
        }
        #[allow(unreachable_patterns)]
        _ => Value::Null,
    }
}

/// An RPC failure in words; a revert with its decoded reason.
fn describe_rpc_error(error: &TransportError) -> String {
    if let Some(data) = error.revert_data()
        && let Some(reason) = alloy::sol_types::decode_revert_reason(&data)
    {
        return format!("reverted: {reason}");
    }
    if let Some(http) = http_cause(error) {
        if http.is_timeout() {
            return "the node did not answer in time (AGENTPORT_RPC_TIMEOUT_SECS)".into();
        }
        if http.is_connect() {
            return "the node refused the connection".into();
        }
        // Its own text names the URL (which may hold a key): the cause alone.
        let cause = std::error::Error::source(http).map(ToString::to_string);
        return format!("the request failed: {}", cause.unwrap_or_default());
    }
    format!("{error}")
}

/// The HTTP client's error behind a transport error, if that is the cause.
fn http_cause(error: &TransportError) -> Option<&reqwest::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = match error {
        RpcError::Transport(kind) => kind.as_custom().map(|e| e as _),
        _ => None,
    };
    while let Some(e) = cause {
        if let Some(http) = e.downcast_ref::<reqwest::Error>() {
            return Some(http);
        }
        cause = e.source();
    }
    None
}

/// The revert data an RPC error carries, if any.
trait AsRevert {
    fn revert_data(&self) -> Option<alloy::primitives::Bytes>;
}

impl AsRevert for alloy::transports::TransportError {
    fn revert_data(&self) -> Option<alloy::primitives::Bytes> {
        self.as_error_resp()
            .and_then(|payload| payload.as_revert_data())
    }
}

/// Wei from a decimal number of gwei ("1.5"), exactly: a finer fraction is an
/// error rather than rounded away.
pub fn gwei_to_wei(gwei: &str) -> Result<u128, String> {
    let decimals = gwei
        .split_once('.')
        .map_or(0, |(_, fraction)| fraction.len());
    if decimals > 9 {
        return Err(format!("max_priority_fee {gwei} has more than 9 decimals"));
    }
    match parse_units(gwei, "gwei") {
        Ok(ParseUnits::U256(wei)) => {
            u128::try_from(wei).map_err(|_| format!("max_priority_fee {gwei} is too large"))
        }
        _ => Err(format!("max_priority_fee `{gwei}` is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node that answers 429 to its first request, then the chain id.
    async fn rate_limited_node() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&served);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 8192];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                let id = text
                    .split("\"id\":")
                    .nth(1)
                    .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                    .unwrap_or("0")
                    .to_string();
                let (status, body) = if count.fetch_add(1, Ordering::SeqCst) == 0 {
                    ("429 Too Many Requests", String::new())
                } else {
                    (
                        "200 OK",
                        format!(r#"{{"jsonrpc":"2.0","id":{id},"result":"0x7a69"}}"#),
                    )
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        (url, served)
    }

    #[tokio::test]
    async fn a_rate_limited_read_is_tried_again() {
        let (url, served) = rate_limited_node().await;
        let timeouts = Timeouts {
            rpc: Duration::from_secs(5),
            receipt: Duration::from_secs(5),
            max_fee_wei: u128::MAX,
        };
        let evm = EvmExecutor::new(&url, None, timeouts).unwrap();
        evm.check_chain(31337).await.unwrap();
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn gwei_converts_exactly() {
        assert_eq!(gwei_to_wei("1.5").unwrap(), 1_500_000_000);
        assert_eq!(gwei_to_wei("2").unwrap(), 2_000_000_000);
        assert_eq!(gwei_to_wei("0.000000001").unwrap(), 1);
        assert!(gwei_to_wei("1.0000000001").is_err());
        assert!(gwei_to_wei("x").is_err());
    }

    #[test]
    fn calldata_is_built_from_the_abi_entry() {
        let abi = json!({"type": "function", "name": "transfer", "stateMutability": "nonpayable",
            "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
            "outputs": [{"name": "", "type": "bool"}]});
        let args = [
            json!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
            json!(10),
        ];
        let call = Call {
            address: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            signature: "transfer(address,uint256)",
            abi: Some(&abi),
            args: &args,
            value: None,
        };
        let (_, _, data) = encode(&call).unwrap();
        assert_eq!(hex::encode(&data[..4]), "a9059cbb");
        assert_eq!(data.len(), 4 + 64);
        let short = Call {
            args: &args[..1],
            ..call
        };
        assert!(encode(&short).unwrap_err().contains("takes 2 argument"));
    }
}
