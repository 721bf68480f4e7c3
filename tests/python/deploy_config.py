"""Checks that the deploy files agree with each other and with the server's
defaults: health check paths, SIGTERM handling and the shutdown grace period.
Usage: deploy_config.py REPO_ROOT GRACE_SECS."""

import json
import re
import sys
import tomllib
from pathlib import Path

import yaml

root = Path(sys.argv[1])
grace = float(sys.argv[2])


def seconds(value):
    match = re.fullmatch(r"(\d+)s?", str(value))
    assert match, f"not a number of seconds: {value!r}"
    return int(match.group(1))


railway = tomllib.loads((root / "railway.toml").read_text())
assert railway["build"]["builder"] == "DOCKERFILE"
assert railway["deploy"]["healthcheckPath"] == "/health"
assert railway["deploy"]["drainingSeconds"] > grace, "Railway kills before the grace period ends"

iac = (root / ".railway/railway.ts").read_text()
assert 'healthcheck: "/health"' in iac
draining = re.search(r'RAILWAY_DEPLOYMENT_DRAINING_SECONDS: "(\d+)"', iac)
assert draining and int(draining.group(1)) > grace

fly = tomllib.loads((root / "fly.toml").read_text())
assert fly["kill_signal"] == "SIGTERM"
assert seconds(fly["kill_timeout"]) > grace
service = fly["http_service"]
assert service["internal_port"] == 8080
assert service["concurrency"]["type"] == "connections"
assert service["concurrency"]["hard_limit"] > 25, "Fly's default limit is far too low for WebSockets"
assert any(c["path"] == "/health" for c in service["checks"])

docs = list(yaml.safe_load_all((root / "deploy/kubernetes/agentport.yaml").read_text()))
deployment = next(d for d in docs if d["kind"] == "Deployment")
pod = deployment["spec"]["template"]["spec"]
container = pod["containers"][0]
assert container["livenessProbe"]["httpGet"]["path"] == "/health"
assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
assert pod["terminationGracePeriodSeconds"] > pre_stop + grace
assert next(d for d in docs if d["kind"] == "Service")

dockerfile = (root / "Dockerfile").read_text()
assert len(re.findall(r"^FROM ", dockerfile, re.M)) >= 2, "multi-stage build"
assert re.search(r"^USER (nonroot|65532)", dockerfile, re.M), "runs as non-root"
entrypoint = re.search(r"^ENTRYPOINT (.+)$", dockerfile, re.M).group(1)
assert json.loads(entrypoint)[0].endswith("/agentport"), "exec-form entrypoint"

# Everything the release build reads is copied into the build stage.
for needed in ["Cargo.toml", "Cargo.lock", "benches", "src", "migrations"]:
    assert re.search(rf"^COPY [^\n]*\b{re.escape(needed)}\b", dockerfile, re.M), f"Dockerfile does not COPY {needed}"

print("deploy config ok")
