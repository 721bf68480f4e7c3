-- Write-ahead record of every signed transaction: written before it is
-- broadcast, followed until it is final, reconciled from the chain after a
-- crash. State: sent, confirmed, reverted, replaced (its nonce went to another
-- transaction) or dropped (the node forgot it).
CREATE TABLE actions (
    action_id  TEXT   NOT NULL PRIMARY KEY,
    run_id     TEXT   NOT NULL,
    agent_id   TEXT   NOT NULL,
    function   TEXT   NOT NULL,
    args       TEXT   NOT NULL,
    value_wei  TEXT   NOT NULL,
    nonce      BIGINT NOT NULL,
    tx_hash    TEXT   NOT NULL,
    -- The signing account, and the signed transaction itself (0x hex): a
    -- transaction the node lost is broadcast again as is.
    from_address TEXT NOT NULL,
    raw_tx     TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    gas_used   BIGINT,
    block      BIGINT,
    created_at TEXT   NOT NULL,
    updated_at TEXT   NOT NULL
);
CREATE INDEX actions_by_state ON actions (state);
CREATE INDEX actions_by_run ON actions (run_id);
