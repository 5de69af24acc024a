//! One test's servers for warming: Redis (either topology), a fresh
//! Postgres database as source and store, and the job context that warms.

use std::time::Duration;

use cachedeck::actor::{Actor, Origin};
use cachedeck::cache::warm::WarmOptions;
use cachedeck::jobs::{self, JobContext, JobSnapshot};
use cachedeck::redis_conn::Redis;
use cachedeck::store::{DatasourceInput, Store};
use tokio_util::sync::CancellationToken;

use super::{AnyRedis, TestDb};

/// Servers and handles of one warming test.
pub struct WarmFixture {
    /// The cache.
    pub redis: Redis,
    /// The app database (also the source database).
    pub store: Store,
    /// The fresh Postgres database, dropped with the fixture.
    pub db: TestDb,
    /// A pool on it, for the test's own tables.
    pub pool: sqlx::PgPool,
    /// What warms (actor `test`, origin CLI).
    pub jc: JobContext,
}

impl WarmFixture {
    /// Connects to `r` and a fresh database; warms with `options`, and skips
    /// datasources warmed within `skip_within`.
    pub async fn new(r: &AnyRedis, options: WarmOptions, skip_within: Duration) -> WarmFixture {
        let redis = r.connect().await;
        let db = TestDb::create();
        let store = Store::connect(db.url()).await.expect("store");
        let pool = db.pool().await;
        let actor = Actor::new(store.identity(), "test", Origin::Cli);
        let jc = JobContext {
            redis: redis.clone(),
            store: store.clone(),
            actor,
            default_source_url: db.url().to_string(),
            options,
            skip_within,
            concurrency: 2,
            warm_timeout: Duration::from_secs(1800),
            job_retries: 1,
        };
        WarmFixture {
            redis,
            store,
            db,
            pool,
            jc,
        }
    }

    /// Table `src`: `practices` practices × providers NULL, 1, 2 × measures
    /// Charges, Visits × frequencies Monthly, Weekly × 3 periods, every row
    /// stamped with `gen` 0 (tests bump it to change values).
    pub async fn create_src(&self, practices: i64) {
        sqlx::query(
            "CREATE TABLE src (measure TEXT, practice_uid INT, provider_uid INT, frequency TEXT, period INT, amount NUMERIC(10,2), gen INT)",
        )
        .execute(&self.pool)
        .await
        .expect("create src");
        sqlx::query(
            "INSERT INTO src SELECT m, p, prov, f, period, (p * 10 + period)::numeric / 4, 0 \
             FROM unnest(ARRAY['Charges','Visits']) m, generate_series(1, $1) p, \
             unnest(ARRAY[NULL, 1, 2]) prov, unnest(ARRAY['Monthly','Weekly']) f, generate_series(1, 3) period",
        )
        .bind(practices as i32)
        .execute(&self.pool)
        .await
        .expect("fill src");
    }

    /// Registers datasource `id` on `sql` (source: the fixture's database).
    pub async fn add_ds(&self, id: i64, name: &str, sql: &str, ttl_secs: i64, enabled: bool) {
        self.store
            .add_datasource(&DatasourceInput {
                id,
                name: name.into(),
                source_url: None,
                source_password: None,
                sql: sql.into(),
                stale_after_secs: 4 * 3600,
                ttl_secs,
                enabled,
                statement_timeout_secs: cachedeck::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
            })
            .await
            .expect("add datasource");
    }

    /// Queues a forced warm of `ds` and runs it here; returns how it ended.
    pub async fn warm(&self, ds: i64) -> JobSnapshot {
        let snap = jobs::submit(&self.jc, &[ds], true)
            .await
            .expect("submit")
            .remove(0);
        jobs::run_job(&self.jc, snap, CancellationToken::new(), |_| {}).await
    }
}
