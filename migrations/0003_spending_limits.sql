-- What an agent's actions may send, set by admins: wei per action and per
-- (UTC) day, as decimal text (256-bit). 0: no value at all.
ALTER TABLE agents ADD COLUMN max_value_wei TEXT NOT NULL DEFAULT '0';
ALTER TABLE agents ADD COLUMN max_value_wei_per_day TEXT NOT NULL DEFAULT '0';

-- Wei reserved by each agent's actions per UTC day: reserved before a send,
-- given back when the transaction fails.
CREATE TABLE agent_spending (
    agent_id  TEXT NOT NULL,
    day       TEXT NOT NULL,
    spent_wei TEXT NOT NULL,
    PRIMARY KEY (agent_id, day)
);
