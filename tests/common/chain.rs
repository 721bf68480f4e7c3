//! A real EVM node for the runtime tests: anvil from the npm package
//! `@foundry-rs/anvil-linux-amd64` (installed by `scripts/test-deps`), and the
//! TestToken ERC-20 deployed from its committed artifact.

use std::process::Stdio;

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// anvil's first two default accounts.
pub const OWNER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
pub const OWNER: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
pub const RECIPIENT: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

pub struct Anvil {
    _child: Child,
    pub url: String,
    pub provider: DynProvider,
}

impl Anvil {
    pub async fn start() -> Anvil {
        super::python(); // runs scripts/test-deps, which installs anvil too
        super::install_crypto();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let cache = std::env::var_os("AGENTPORT_TEST_CACHE")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| root.join(".cache"));
        let bin = cache.join("npm/node_modules/.bin/anvil");
        let mut child = Command::new(&bin)
            .args(["--port", "0", "--host", "127.0.0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start anvil at {}: {e}", bin.display()));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(super::DEADLINE, async {
            loop {
                let line = lines.next_line().await.unwrap().expect("anvil output");
                if let Some(addr) = line.strip_prefix("Listening on ") {
                    return format!("http://{}", addr.trim());
                }
            }
        })
        .await
        .expect("anvil listening in time");
        // Keep draining anvil's output so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let signer: PrivateKeySigner = OWNER_KEY.parse().unwrap();
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_http(url.parse().unwrap())
            .erased();
        Anvil {
            _child: child,
            url,
            provider,
        }
    }

    /// Deploys TestToken with `supply` minted to OWNER; returns its address.
    pub async fn deploy_token(&self, supply: u64) -> Address {
        let bytecode = token_artifact()["bytecode"].as_str().unwrap().to_string();
        let mut code = hex_decode(&bytecode);
        code.extend_from_slice(&U256::from(supply).to_be_bytes::<32>());
        let tx = TransactionRequest::default().with_deploy_code(Bytes::from(code));
        let receipt = self
            .provider
            .send_transaction(tx)
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status());
        receipt.contract_address.expect("deployed")
    }

    /// `balanceOf(holder)` read straight from the node.
    pub async fn balance(&self, token: Address, holder: &str) -> U256 {
        let holder: Address = holder.parse().unwrap();
        let mut data = hex_decode("0x70a08231");
        data.extend_from_slice(&[0u8; 12]);
        data.extend_from_slice(holder.as_slice());
        let tx = TransactionRequest::default()
            .with_to(token)
            .with_input(Bytes::from(data));
        let out = self.provider.call(tx).await.unwrap();
        U256::from_be_slice(&out)
    }

    /// How many transactions `account` has sent.
    pub async fn nonce(&self, account: &str) -> u64 {
        self.provider
            .get_transaction_count(account.parse().unwrap())
            .await
            .unwrap()
    }

    /// A raw JSON-RPC call, for anvil's own methods (`evm_mine`, …).
    pub async fn rpc(&self, method: &'static str, params: serde_json::Value) -> serde_json::Value {
        self.provider
            .raw_request(method.into(), params)
            .await
            .unwrap()
    }
}

pub fn token_artifact() -> Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contracts/TestToken.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// One function's ABI entry from the artifact.
pub fn abi_entry(name: &str) -> Value {
    token_artifact()["abi"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name && e["type"] == "function")
        .cloned()
        .unwrap()
}

fn hex_decode(text: &str) -> Vec<u8> {
    let text = text.trim_start_matches("0x");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Configures agent `agent_id` on the TestToken at `token` (chain 31337): its
/// `balanceOf` read, its `transfer` write with `amount` at most `max_amount`.
pub async fn configure_agent(
    client: &mut super::client::Client,
    agent_id: &str,
    token: &str,
    description: &str,
    policy: Value,
    max_amount: &str,
) {
    use serde_json::json;
    client
        .ok(
            "create_contract",
            json!({"address": token, "chain_id": 31337, "name": "TestToken", "type": "ERC20",
                   "abi": token_artifact()["abi"].to_string()}),
        )
        .await;
    client
        .ok(
            "create_agent",
            json!({"agent_id": agent_id, "contractId": token, "name": "treasurer",
                   "description": description, "status": "paused", "policy": policy}),
        )
        .await;
    client
        .ok(
            "create_function",
            json!({"agent_id": agent_id, "function_name": "balanceOf",
                   "function_signature": "balanceOf(address)", "function_type": "read",
                   "abi": abi_entry("balanceOf")}),
        )
        .await;
    client
        .ok(
            "create_function",
            json!({"agent_id": agent_id, "function_name": "transfer",
                   "function_signature": "transfer(address,uint256)", "function_type": "write",
                   "validation_rules": {"amount": {"min": "1", "max": max_amount}},
                   "abi": abi_entry("transfer")}),
        )
        .await;
}
