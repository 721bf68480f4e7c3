//! The deploy files (Dockerfile, Railway, Fly.io, Kubernetes) agree with each
//! other and with the server's own defaults. Parsed by a Python script with real
//! TOML and YAML parsers.

mod common;

use std::path::Path;

use clap::Parser;

#[test]
fn deploy_files_match_the_servers_health_paths_and_grace_period() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let grace = agentport::Config::parse_from(["agentport"]).shutdown_grace;
    let output = std::process::Command::new(common::python())
        .arg(root.join("tests/python/deploy_config.py"))
        .arg(root)
        .arg(grace.as_secs_f64().to_string())
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
