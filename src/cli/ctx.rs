//! What every subcommand needs: the resolved profile, connections opened on
//! first use, and how to print.

use serde::Serialize;
use tokio::sync::OnceCell;

use crate::actor::{Actor, Origin};
use crate::config::{ConfigFile, Overrides, Resolved, config_path};
use crate::error::Result;
use crate::redis_conn::Redis;
use crate::store::Store;

pub struct Ctx {
    /// `--json` was given.
    pub json: bool,
    /// Command-line and environment overrides of the profile.
    overrides: Overrides,
    /// The profile, read on first use (some commands need none).
    resolved: OnceCell<Resolved>,
    redis: OnceCell<Redis>,
    store: OnceCell<Store>,
    /// The admin, with permissions decided once per command.
    actor: OnceCell<Actor>,
}

impl Ctx {
    pub fn new(cli: &super::Cli) -> Ctx {
        if let Some(urls) = &cli.redis_url {
            warn_once(&crate::redis_conn::RedisTarget {
                urls: urls.split(',').map(|u| u.trim().to_string()).collect(),
                ..Default::default()
            });
        }
        Ctx {
            json: cli.json,
            overrides: Overrides {
                profile: cli.profile.clone(),
                redis_urls: cli.redis_url.clone(),
                database_url: cli.database_url.clone(),
            },
            resolved: OnceCell::new(),
            redis: OnceCell::new(),
            store: OnceCell::new(),
            actor: OnceCell::new(),
        }
    }

    /// The profile with overrides applied.
    pub async fn resolved(&self) -> Result<&Resolved> {
        self.resolved
            .get_or_try_init(|| async {
                let file = ConfigFile::load(&config_path()?)?;
                let r = Resolved::resolve(&file, &self.overrides).await?;
                warn_once(&r.redis);
                Ok::<_, crate::Error>(r)
            })
            .await
    }

    /// The database URL alone (commands that need no Redis).
    pub async fn database_url(&self) -> Result<String> {
        if let Some(u) = &self.overrides.database_url {
            return Ok(u.clone());
        }
        let file = ConfigFile::load(&config_path()?)?;
        let mut ov = self.overrides.clone();
        if ov.redis_urls.is_none() {
            // Only the database is needed: don't insist on a Redis URL.
            ov.redis_urls = Some("redis://unused".into());
        }
        Ok(Resolved::resolve(&file, &ov).await?.database_url)
    }

    pub async fn redis(&self) -> Result<&Redis> {
        self.redis
            .get_or_try_init(|| async { Redis::connect(&self.resolved().await?.redis).await })
            .await
    }

    pub async fn store(&self) -> Result<&Store> {
        self.store
            .get_or_try_init(|| async { Store::connect(&self.database_url().await?).await })
            .await
    }

    /// The admin running this command, with write permission decided from
    /// real facts: the store's grants for the database identity and the
    /// Redis ACL of the profile's user (see `governance::permissions`).
    pub async fn actor(&self) -> Result<Actor> {
        self.actor
            .get_or_try_init(|| async {
                let store = self.store().await?;
                let resolved = self.resolved().await.ok();
                let defaults = resolved.map(|r| r.defaults.clone()).unwrap_or_default();
                let facts = crate::governance::ActorFacts {
                    profile: resolved.map_or_else(|| "(command line)".into(), |r| r.name.clone()),
                    origin: Origin::Cli,
                    redis_user: resolved
                        .and_then(|r| crate::governance::permissions::redis_user_of(&r.redis)),
                    limits: crate::governance::Limits::from_defaults(&defaults)?,
                };
                let redis = match resolved {
                    Some(_) => self.redis().await.ok(),
                    None => None,
                };
                crate::governance::resolve_actor(store, redis, facts).await
            })
            .await
            .cloned()
    }

    /// Before exiting: audits a refusal Redis made (NOPERM) and waits for
    /// the audit rows still being written.
    pub async fn finish_audit(&self, command: &str, result: &Result<i32>) {
        if let Err(e @ crate::Error::RedisPermission { .. }) = result
            && let Ok(actor) = self.actor().await
        {
            crate::governance::audit::record_refusal(&actor, command, e).await;
        }
        if let Some(actor) = self.actor.get() {
            crate::governance::audit::flush(actor).await;
        }
    }

    /// Everything warm jobs need, for this command's actor.
    pub async fn job_context(&self, origin: Origin) -> Result<crate::jobs::JobContext> {
        let resolved = self.resolved().await?;
        let mut actor = self.actor().await?;
        actor.origin = origin;
        let d = &resolved.defaults;
        Ok(crate::jobs::JobContext {
            redis: self.redis().await?.clone(),
            store: self.store().await?.clone(),
            actor,
            default_source_url: self.database_url().await?,
            options: crate::cache::warm::WarmOptions {
                memory_pause_percent: d.memory_pause_percent,
                lease: crate::jobs::timing().warm_lease,
                ..Default::default()
            },
            skip_within: crate::config::parse_duration(&d.skip_if_warmed_within)?,
            concurrency: d.concurrency,
            warm_timeout: crate::jobs::warm_timeout(d)?,
            job_retries: d.job_retries,
        })
    }

    /// Prints `value` as JSON, or `human` otherwise.
    pub fn print<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("error: cannot encode JSON: {e}"),
            }
        } else {
            println!("{}", human());
        }
    }
}

/// Prints the security warnings about the Redis in use on standard error,
/// once per run.
fn warn_once(target: &crate::redis_conn::RedisTarget) {
    static PRINTED: std::sync::Once = std::sync::Once::new();
    let warnings = crate::redis_conn::security_warnings(target);
    if !warnings.is_empty() {
        PRINTED.call_once(|| {
            for w in warnings {
                eprintln!("warning: {w}");
            }
        });
    }
}
