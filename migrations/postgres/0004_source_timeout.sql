-- Each datasource's query stops after its statement timeout (seconds).
ALTER TABLE datasources ADD COLUMN IF NOT EXISTS statement_timeout_secs BIGINT NOT NULL DEFAULT 600;
