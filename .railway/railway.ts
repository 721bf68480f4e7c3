// Railway Infrastructure as Code: the same service as railway.toml, in
// Railway's newer TypeScript form (`railway config plan`, `railway config apply`).
// Use this file or railway.toml, not both: a service is managed by one of them.
import { defineRailway, project, service } from "railway/iac";

const agentport = service("agentport", {
  // Built from the repository's Dockerfile; the binary itself is PID 1.
  healthcheck: "/health",
  env: {
    // Railway injects PORT; HOST defaults to "::" (dual-stack).
    LOG_FORMAT: "json",
    AGENTPORT_SHUTDOWN_GRACE_SECS: "10",
    // Time between SIGTERM and SIGKILL. Railway's default is 0 s, which would
    // cut every WebSocket without a close frame: keep it above the grace period.
    RAILWAY_DEPLOYMENT_DRAINING_SECONDS: "15",
  },
});

export default defineRailway(() =>
  project("agentport", {
    resources: [agentport],
  }),
);
