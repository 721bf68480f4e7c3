//! Interop with a client that is not Rust: Python's `websockets` package, from
//! the ecosystem of the server agentport replaces. `scripts/test-deps` installs
//! it into a venv under `.cache/`.

mod common;

use std::path::Path;

use common::*;

#[tokio::test]
async fn python_websockets_client_speaks_the_protocol() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = python();

    let server = TestServer::start().await;
    let output = tokio::time::timeout(
        DEADLINE * 3,
        tokio::process::Command::new(python)
            .arg(root.join("tests/python/interop.py"))
            .arg(format!("ws://{}", server.addr))
            .output(),
    )
    .await
    .expect("python client finished in time")
    .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python interop failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("interop ok"), "{stdout}");
    wait_until("every python connection unregistered", || async {
        server.state.registry.is_empty()
    })
    .await;
    server.shutdown().await.unwrap();
}
