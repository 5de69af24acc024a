//! Connection profiles: a TOML file in the OS config dir
//! (`CACHEDECK_CONFIG_DIR` overrides it, so tests never touch the real one).
//!
//! ```toml
//! default_profile = "prod"
//! [profiles.prod]
//! production = true
//! redis.urls = ["rediss://cache-1:6379", "rediss://cache-2:6379"]
//! redis.username = "cachedeck"
//! redis.password = { keyring = "prod/redis" }
//! database.url = "postgres://cachedeck@db/analytics"
//! database.password = { env = "CACHEDECK_DB_PASSWORD" }
//! ```
//! A malformed file is reported with its path and line and never overwritten.

pub mod edit;
pub mod secrets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::redis_conn::RedisTarget;
pub use secrets::SecretRef;

/// The whole profile file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    /// Profile used when neither `--profile` nor `CACHEDECK_PROFILE` names one.
    pub default_profile: Option<String>,
    /// Profiles by name.
    pub profiles: BTreeMap<String, Profile>,
}

/// One deployment: a Redis, an app database and defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    /// Every destructive action needs typed confirmation when set.
    pub production: bool,
    pub redis: RedisSection,
    pub database: DatabaseSection,
    pub defaults: Defaults,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSection {
    /// One URL (standalone, or a cluster node) or several cluster seed nodes.
    pub urls: Vec<String>,
    pub username: Option<String>,
    pub password: Option<SecretRef>,
    /// PEM file of a private CA for `rediss://`.
    pub tls_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSection {
    /// `postgres://…` or `sqlite://…`; empty means a local SQLite file in the
    /// OS data dir.
    pub url: String,
    pub password: Option<SecretRef>,
    /// PEM file of the CA that signed the Postgres server's certificate.
    /// With it, a URL without `sslmode` connects with `verify-full`, and
    /// `sslmode=require` checks the chain (`verify-ca`), as libpq does.
    pub tls_ca_file: Option<PathBuf>,
}

/// Per-profile defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Defaults {
    /// Stale-after for new datasources, e.g. "4h".
    pub stale_after: String,
    /// Entry TTL for new datasources, e.g. "48h".
    pub ttl: String,
    /// Global number of warms that may run at once.
    pub concurrency: u32,
    /// Warms younger than this are skipped unless forced, e.g. "5m".
    pub skip_if_warmed_within: String,
    /// Warm operations per hour per admin (0 turns the limit off).
    pub warm_rate_limit: u32,
    /// Invalidations per hour per admin (0 turns the limit off).
    pub invalidate_rate_limit: u32,
    /// Seconds between metric refreshes in the window.
    pub refresh_interval_secs: u64,
    /// A warm pauses when Redis used_memory passes this percent of maxmemory.
    pub memory_pause_percent: u32,
    /// Webhook the agent POSTs error-level health alerts to (Slack-compatible
    /// `{"text": …}`); none turns alerts off. `CACHEDECK_ALERT_WEBHOOK` wins.
    pub alert_webhook: Option<String>,
    /// One issue is alerted at most once per this interval, e.g. "1h".
    pub alert_interval: String,
    /// How long audit rows are kept, e.g. "365d" (older ones are pruned when
    /// the agent or the window starts).
    pub audit_retention: String,
    /// A warm job running longer than this is ended (shadow removed, lock
    /// freed, job failed with that cause), e.g. "30m".
    pub warm_timeout: String,
    /// How many times a job whose worker died is run again from the start
    /// by another worker before it ends failed.
    pub job_retries: u32,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            stale_after: "4h".into(),
            ttl: "48h".into(),
            concurrency: 2,
            skip_if_warmed_within: "5m".into(),
            warm_rate_limit: 10,
            invalidate_rate_limit: 20,
            refresh_interval_secs: 5,
            memory_pause_percent: 90,
            alert_webhook: None,
            alert_interval: "1h".into(),
            audit_retention: "365d".into(),
            warm_timeout: "30m".into(),
            job_retries: 0,
        }
    }
}

/// Parses "4h", "90m", "2d", "30s" (humantime syntax).
pub fn parse_duration(text: &str) -> Result<Duration> {
    humantime::parse_duration(text.trim())
        .map_err(|e| Error::Invalid(format!("`{text}` is not a duration like 4h or 90m: {e}")))
}

/// Where the profile file lives.
pub fn config_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CACHEDECK_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "cachedeck")
        .map(|d| d.config_dir().to_path_buf())
        .ok_or_else(|| Error::Config("no home directory to keep the profile file in".into()))
}

/// Where local data (SQLite store, demo Redis) lives.
pub fn data_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CACHEDECK_DATA_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("CACHEDECK_CONFIG_DIR") {
        return Ok(PathBuf::from(dir).join("data"));
    }
    directories::ProjectDirs::from("", "", "cachedeck")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| Error::Config("no home directory to keep local data in".into()))
}

/// The profile file's path.
pub fn config_path() -> Result<PathBuf> {
    Ok(config_dir()?.join("profiles.toml"))
}

impl ConfigFile {
    /// The profile a run uses: `--profile`, else the file's default, else
    /// its only profile; `None` when nothing names one.
    pub fn wanted_profile(&self, ov: &Overrides) -> Option<String> {
        ov.profile
            .clone()
            .or_else(|| self.default_profile.clone())
            .or_else(|| match self.profiles.len() {
                1 => self.profiles.keys().next().cloned(),
                _ => None,
            })
    }

    /// Reads the file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        Self::parse(&text, path)
    }

    /// Parses the text of `path`, naming file and line on error.
    pub fn parse(text: &str, path: &Path) -> Result<ConfigFile> {
        toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(1);
            Error::Config(format!(
                "{} line {line}: {} (fix the file; cachedeck will not overwrite it)",
                path.display(),
                e.message()
            ))
        })
    }

    /// Writes atomically with owner-only permissions from the first byte:
    /// a temporary file created with mode 0600 next to `path`, synced, then
    /// renamed over it. A mode that cannot be set is an error.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self)
            .map_err(|e| Error::Config(format!("cannot encode profiles: {e}")))?;
        write_private(path, text.as_bytes())
    }
}

/// Writes `bytes` to `path` atomically, readable by the owner only: the
/// temporary file is created with mode 0600 (never wider, whatever the
/// umask), written, synced and renamed over `path`.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| -> Result<()> {
        let mut f = match options.open(&tmp) {
            // A leftover of a run that stopped half-way: start afresh.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::remove_file(&tmp)
                .and_then(|_| options.open(&tmp))
                .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?,
            other => other.map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?,
        };
        // The umask can only narrow 0600; make sure nothing widened it.
        set_owner_only(&f, &tmp)?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        std::fs::rename(&tmp, path)
            .map_err(|e| Error::io(format!("replacing {}", path.display()), e))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Sets mode 0600 on an open file; failing to is an error.
pub fn set_owner_only(file: &std::fs::File, path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| {
                Error::io(
                    format!("making {} readable by its owner only", path.display()),
                    e,
                )
            })?;
    }
    #[cfg(not(unix))]
    let _ = (file, path);
    Ok(())
}

/// What the command line and environment say, overriding the profile.
#[derive(Clone, Default)]
pub struct Overrides {
    pub profile: Option<String>,
    /// May carry a password (`redis://:pw@host`): `Debug` redacts it.
    pub redis_urls: Option<String>,
    /// May carry a password: `Debug` redacts it.
    pub database_url: Option<String>,
}

impl std::fmt::Debug for Overrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overrides")
            .field("profile", &self.profile)
            .field(
                "redis_urls",
                &self.redis_urls.as_deref().map(crate::redact::url),
            )
            .field(
                "database_url",
                &self.database_url.as_deref().map(crate::redact::url),
            )
            .finish()
    }
}

/// A profile with its secrets read and overrides applied: ready to connect.
/// `Debug` redacts the passwords it holds.
#[derive(Clone)]
pub struct Resolved {
    /// Profile name ("(command line)" when none was used).
    pub name: String,
    pub production: bool,
    pub redis: RedisTarget,
    /// Database URL with any password put in.
    pub database_url: String,
    pub defaults: Defaults,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("name", &self.name)
            .field("production", &self.production)
            .field("redis", &self.redis)
            .field("database_url", &crate::redact::url(&self.database_url))
            .field("defaults", &self.defaults)
            .finish()
    }
}

/// The local SQLite store used when a profile names no database.
pub fn local_store_url() -> Result<String> {
    let dir = data_dir()?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    Ok(format!(
        "sqlite://{}?mode=rwc",
        dir.join("cachedeck.db").display()
    ))
}

/// Puts `sslrootcert=<ca>` into a Postgres URL (unless it names one), and
/// `sslmode=verify-full` when the URL does not choose a mode: a CA file is
/// given to be checked against. A URL's `sslmode=require` then checks the
/// chain as `verify-ca` does (libpq's rule, applied by
/// [`crate::store::pg_tls`]).
fn with_ca_file(url: &str, ca: &Path) -> Result<String> {
    if !url.starts_with("postgres") {
        return Ok(url.to_string());
    }
    let mut u = url::Url::parse(url).map_err(|e| Error::Config(format!("database URL: {e}")))?;
    let has = |name: &str| u.query_pairs().any(|(k, _)| k == name);
    let (mode, root) = (
        has("sslmode"),
        has("sslrootcert") || has("ssl-root-cert") || has("ssl-ca"),
    );
    {
        let mut q = u.query_pairs_mut();
        if !root {
            q.append_pair("sslrootcert", &ca.to_string_lossy());
        }
        if !mode {
            q.append_pair("sslmode", "verify-full");
        }
    }
    Ok(u.to_string())
}

pub fn with_password(url: &str, password: &str) -> Result<String> {
    let mut u = url::Url::parse(url).map_err(|e| Error::Config(format!("database URL: {e}")))?;
    u.set_password(Some(password))
        .map_err(|_| Error::Config("this database URL cannot carry a password".into()))?;
    Ok(u.to_string())
}

impl Resolved {
    /// Picks the profile, applies overrides and reads its passwords, from
    /// async code: the keyring is asked on a blocking thread (see
    /// [`secrets::off_runtime`]), never on the runtime.
    pub async fn resolve(file: &ConfigFile, ov: &Overrides) -> Result<Resolved> {
        let (file, ov) = (file.clone(), ov.clone());
        secrets::off_runtime("reading the profile's passwords", move || {
            Resolved::resolve_blocking(&file, &ov)
        })
        .await
    }

    /// The same on a thread outside the async runtime (blocking: the
    /// keyring).
    pub fn resolve_blocking(file: &ConfigFile, ov: &Overrides) -> Result<Resolved> {
        let wanted = ov.profile.clone().or_else(|| file.default_profile.clone());
        let named = |field: &str, secret: &SecretRef| {
            secret.resolve_blocking().map_err(|e| {
                let which = format!(
                    "profile `{}`, {field} {secret}",
                    file.wanted_profile(ov).unwrap_or_default()
                );
                match e {
                    Error::KeyringUnavailable(why) => {
                        Error::KeyringUnavailable(format!("{which}: {why}"))
                    }
                    Error::Config(why) => Error::Config(format!("{which}: {why}")),
                    other => other,
                }
            })
        };
        let (name, profile) = match wanted {
            Some(n) => match file.profiles.get(&n) {
                Some(p) => (n, p.clone()),
                None => {
                    return Err(Error::Config(format!(
                        "no profile named `{n}` in {} (profiles: {})",
                        config_path()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default(),
                        file.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
            },
            None if file.profiles.len() == 1 => {
                let (n, p) = file.profiles.iter().next().expect("one profile");
                (n.clone(), p.clone())
            }
            None => ("(command line)".to_string(), Profile::default()),
        };
        let mut redis = RedisTarget {
            urls: profile.redis.urls.clone(),
            username: profile.redis.username.clone(),
            password: None,
            tls_ca_file: profile.redis.tls_ca_file.clone(),
        };
        if let Some(urls) = &ov.redis_urls {
            redis.urls = urls
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        } else if let Some(secret) = &profile.redis.password {
            redis.password = Some(named("redis.password", secret)?.expose().to_string());
        }
        if redis.urls.is_empty() {
            return Err(Error::Config(
                "no Redis configured: pass --redis-url, set CACHEDECK_REDIS_URL, or add a profile (cachedeck profile add)".into(),
            ));
        }
        let database_url = match &ov.database_url {
            Some(u) => u.clone(),
            None if profile.database.url.is_empty() => local_store_url()?,
            None => match &profile.database.password {
                Some(secret) => with_password(
                    &profile.database.url,
                    named("database.password", secret)?.expose(),
                )?,
                None => profile.database.url.clone(),
            },
        };
        let database_url = match &profile.database.tls_ca_file {
            Some(ca) => with_ca_file(&database_url, ca)?,
            None => database_url,
        };
        Ok(Resolved {
            name,
            production: profile.production,
            redis,
            database_url,
            defaults: profile.defaults.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_file_names_its_line() {
        let text = "[profiles.a]\nredis.urls = [\"redis://x\"]\nproduction = maybe\n";
        let err = ConfigFile::parse(text, Path::new("/tmp/p.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/tmp/p.toml line 3"), "{msg}");
    }

    #[test]
    fn profile_round_trips_without_plain_secrets() {
        let mut file = ConfigFile::default();
        let mut p = Profile::default();
        p.redis.urls = vec!["redis://127.0.0.1:6379".into()];
        p.redis.password = Some(SecretRef::Env {
            env: "REDIS_PW".into(),
        });
        file.profiles.insert("a".into(), p);
        let text = toml::to_string_pretty(&file).unwrap();
        assert!(text.contains("env = \"REDIS_PW\""), "{text}");
        assert_eq!(ConfigFile::parse(&text, Path::new("x")).unwrap(), file);
    }

    #[test]
    fn a_database_ca_file_verifies_unless_the_url_says_otherwise() {
        let ca = Path::new("/etc/ca.pem");
        assert_eq!(
            with_ca_file("postgres://u@db/x", ca).unwrap(),
            "postgres://u@db/x?sslrootcert=%2Fetc%2Fca.pem&sslmode=verify-full"
        );
        assert_eq!(
            with_ca_file("postgres://u@db/x?sslmode=require", ca).unwrap(),
            "postgres://u@db/x?sslmode=require&sslrootcert=%2Fetc%2Fca.pem"
        );
        assert_eq!(
            with_ca_file("sqlite:///tmp/a.db", ca).unwrap(),
            "sqlite:///tmp/a.db"
        );
    }

    #[test]
    fn overrides_win() {
        let file = ConfigFile::default();
        let r = Resolved::resolve_blocking(
            &file,
            &Overrides {
                profile: None,
                redis_urls: Some("redis://a:1, redis://b:2".into()),
                database_url: Some("postgres://x@y/z".into()),
            },
        )
        .unwrap();
        assert_eq!(r.redis.urls, vec!["redis://a:1", "redis://b:2"]);
        assert_eq!(r.database_url, "postgres://x@y/z");
    }
}
