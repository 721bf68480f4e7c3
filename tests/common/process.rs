//! The built binary as a child process, configured only by its environment.

use std::{process::Stdio, time::Duration};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, ChildStdout, Command},
};

use super::{DEADLINE, Ws};

pub const BIN: &str = env!("CARGO_BIN_EXE_agentport");

/// The binary running as a child process, with its JSON log lines.
pub struct Process {
    pub child: Child,
    pub logs: Lines<BufReader<ChildStdout>>,
    pub port: u16,
    /// The working directory, where the default SQLite file lives.
    pub dir: tempfile::TempDir,
}

impl Process {
    pub async fn start(env: &[(&str, &str)]) -> Process {
        Self::start_in(tempfile::tempdir().unwrap(), env).await
    }

    /// Starts the binary in `dir` (its default database is `dir/agentport.db`).
    pub async fn start_in(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Process {
        super::install_crypto();
        let mut command = Command::new(BIN);
        command
            .current_dir(dir.path())
            .env_clear()
            .env("PORT", "0")
            .env("RUST_LOG", "info")
            // Like `Config::for_tests`: receivers listen on 127.0.0.1, and
            // every test client comes from there.
            .env("AGENTPORT_ALLOW_PRIVATE_TARGETS", "1")
            .env("AGENTPORT_WS_CONNECTIONS_PER_SECOND", "0")
            .env("AGENTPORT_ALLOW_UNAUTHENTICATED", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start agentport");
        let logs = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut process = Process {
            child,
            logs,
            port: 0,
            dir,
        };
        let listening = process.log_line("listening").await;
        let addr: std::net::SocketAddr = listening["addr"].as_str().unwrap().parse().unwrap();
        process.port = addr.port();
        process
    }

    /// Waits for the next log line whose message is `message`.
    pub async fn log_line(&mut self, message: &str) -> Value {
        tokio::time::timeout(DEADLINE, async {
            loop {
                let line = self.logs.next_line().await.unwrap().expect("log ended");
                let entry: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| panic!("log line is not JSON: {line}"));
                if entry["message"] == message {
                    return entry;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no log line {message:?}"))
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .expect("process exited in time")
            .unwrap();
        eprintln!("agentport exited: {status}");
        status.code()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub async fn connect(&self, channel: &str) -> Ws {
        let url = format!("ws://127.0.0.1:{}/ws/agent/{channel}", self.port);
        tokio_tungstenite::connect_async(url).await.unwrap().0
    }
}
