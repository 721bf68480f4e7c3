-- The subject (token hash or JWT `sub`) that created each agent: only it may
-- replace the agent by creating it again. Agents from before have none.
ALTER TABLE agents ADD COLUMN created_by TEXT;
