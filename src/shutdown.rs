//! Process signals: the first SIGTERM or SIGINT starts a graceful shutdown, a
//! second one exits at once.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

/// Installs the SIGTERM and SIGINT handlers now (so that a signal during start-up
/// is graceful too) and returns a future that resolves at the first of them,
/// after arming the immediate exit on the next one. Call it inside the runtime.
pub fn on_signal() -> impl Future<Output = ()> + Send {
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(
            signal = name,
            "shutting down gracefully; a second signal exits at once"
        );
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        });
    }
}
