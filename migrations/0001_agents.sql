-- Agents, their configuration, runs and the durable per-agent event stream.
-- Times are RFC 3339 UTC text (sortable); JSON documents are text; flags are
-- 0/1 bigints (the one boolean form both databases share through sqlx Any).

CREATE TABLE contracts (
    address_lc    TEXT    NOT NULL,
    chain_id      BIGINT  NOT NULL,
    address       TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    contract_type TEXT    NOT NULL,
    abi           TEXT    NOT NULL,
    deployed_at   TEXT,
    owner_address TEXT,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    PRIMARY KEY (address_lc, chain_id)
);

CREATE TABLE agents (
    agent_id         TEXT    NOT NULL PRIMARY KEY,
    contract_id      TEXT    NOT NULL,
    contract_lc      TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    description      TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    gas_limit        TEXT    NOT NULL,
    max_priority_fee TEXT    NOT NULL,
    owner            TEXT,
    contract_state   TEXT    NOT NULL,
    policy           TEXT,
    configured       BIGINT  NOT NULL DEFAULT 0,
    last_executed    TEXT,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL
);
CREATE INDEX agents_by_contract ON agents (contract_lc);

CREATE TABLE functions (
    function_id        TEXT    NOT NULL PRIMARY KEY,
    agent_id           TEXT    NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    function_name      TEXT    NOT NULL,
    function_signature TEXT    NOT NULL,
    function_type      TEXT    NOT NULL,
    is_enabled         BIGINT  NOT NULL,
    validation_rules   TEXT    NOT NULL,
    abi                TEXT,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL,
    UNIQUE (agent_id, function_signature)
);

CREATE TABLE schedules (
    schedule_id      TEXT    NOT NULL PRIMARY KEY,
    agent_id         TEXT    NOT NULL UNIQUE REFERENCES agents (agent_id) ON DELETE CASCADE,
    schedule_type    TEXT    NOT NULL,
    cron_expression  TEXT,
    interval_seconds BIGINT,
    is_active        BIGINT  NOT NULL,
    next_execution   TEXT,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL
);

CREATE TABLE notifications (
    notification_id   TEXT    NOT NULL PRIMARY KEY,
    agent_id          TEXT    NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    notification_type TEXT    NOT NULL,
    configuration     TEXT    NOT NULL,
    is_enabled        BIGINT  NOT NULL,
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL,
    UNIQUE (agent_id, notification_type)
);

CREATE TABLE runs (
    run_id      TEXT NOT NULL PRIMARY KEY,
    agent_id    TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    run_trigger TEXT NOT NULL,
    status      TEXT NOT NULL,
    request     TEXT,
    result      TEXT,
    error       TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX runs_by_agent ON runs (agent_id, started_at);

-- The sequence of each agent's event stream. Kept when the agent is removed, so
-- that a re-created agent continues its numbering and no client sees a seq twice.
CREATE TABLE agent_streams (
    agent_id TEXT   NOT NULL PRIMARY KEY,
    last_seq BIGINT NOT NULL
);

CREATE TABLE events (
    agent_id   TEXT   NOT NULL,
    seq        BIGINT NOT NULL,
    event_type TEXT   NOT NULL,
    frame      TEXT   NOT NULL,
    created_at TEXT   NOT NULL,
    PRIMARY KEY (agent_id, seq)
);
CREATE INDEX events_by_time ON events (created_at);
