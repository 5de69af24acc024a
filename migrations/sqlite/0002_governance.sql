-- Governance: what the scheduler needs to report missed runs exactly once,
-- who made a schedule, and indexes for the audit log's filters.

ALTER TABLE schedules ADD COLUMN last_tick_ms BIGINT;
ALTER TABLE schedules ADD COLUMN missed_runs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE schedules ADD COLUMN last_missed_ms BIGINT;
ALTER TABLE schedules ADD COLUMN created_by TEXT;

CREATE INDEX IF NOT EXISTS audit_log_by_action ON audit_log (action, at_ms);
CREATE INDEX IF NOT EXISTS audit_log_by_ds ON audit_log (datasource_id, at_ms);
