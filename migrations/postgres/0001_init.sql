-- cachedeck store, schema `cachedeck` (search_path is set on connect).
-- Times are milliseconds since the Unix epoch (UTC) so the same queries serve
-- Postgres and SQLite.

CREATE TABLE IF NOT EXISTS datasources (
    id               BIGINT PRIMARY KEY,
    name             TEXT    NOT NULL,
    source_url       TEXT,
    sql              TEXT    NOT NULL,
    stale_after_secs BIGINT  NOT NULL,
    ttl_secs         BIGINT  NOT NULL,
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at_ms    BIGINT  NOT NULL,
    updated_at_ms    BIGINT  NOT NULL
);

CREATE TABLE IF NOT EXISTS schedules (
    id                BIGSERIAL PRIMARY KEY,
    datasource_id     BIGINT,
    cron              TEXT    NOT NULL,
    tz                TEXT    NOT NULL DEFAULT 'UTC',
    warm_before_stale BOOLEAN NOT NULL DEFAULT FALSE,
    enabled           BOOLEAN NOT NULL DEFAULT TRUE,
    created_at_ms     BIGINT  NOT NULL,
    last_run_ms       BIGINT
);

CREATE TABLE IF NOT EXISTS warm_jobs (
    job_id           TEXT PRIMARY KEY,
    datasource_id    BIGINT  NOT NULL,
    datasource_name  TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    queued_at_ms     BIGINT  NOT NULL,
    started_at_ms    BIGINT,
    completed_at_ms  BIGINT,
    duration_ms      BIGINT,
    rows_processed   BIGINT  NOT NULL DEFAULT 0,
    entries_cached   BIGINT  NOT NULL DEFAULT 0,
    indexes_cached   BIGINT  NOT NULL DEFAULT 0,
    forced           BOOLEAN NOT NULL DEFAULT FALSE,
    actor            TEXT    NOT NULL,
    origin           TEXT    NOT NULL,
    error            TEXT
);
CREATE INDEX IF NOT EXISTS warm_jobs_by_ds ON warm_jobs (datasource_id, queued_at_ms);
CREATE INDEX IF NOT EXISTS warm_jobs_by_time ON warm_jobs (queued_at_ms);

CREATE TABLE IF NOT EXISTS audit_log (
    id            BIGSERIAL PRIMARY KEY,
    at_ms         BIGINT NOT NULL,
    action        TEXT   NOT NULL,
    datasource_id BIGINT,
    os_user       TEXT   NOT NULL,
    db_user       TEXT   NOT NULL,
    redis_user    TEXT,
    profile       TEXT   NOT NULL,
    origin        TEXT   NOT NULL,
    params        TEXT   NOT NULL,
    result        TEXT   NOT NULL,
    detail        TEXT
);
CREATE INDEX IF NOT EXISTS audit_log_by_time ON audit_log (at_ms);

CREATE TABLE IF NOT EXISTS grants (
    identity      TEXT   NOT NULL,
    permission    TEXT   NOT NULL,
    granted_at_ms BIGINT NOT NULL,
    granted_by    TEXT   NOT NULL,
    PRIMARY KEY (identity, permission)
);
