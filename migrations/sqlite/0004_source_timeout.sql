-- Each datasource's query stops after its statement timeout (seconds).
ALTER TABLE datasources ADD COLUMN statement_timeout_secs BIGINT NOT NULL DEFAULT 600;
