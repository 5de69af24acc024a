//! Profiles from the Settings tab: read the file, save (passwords to the OS
//! keyring or as environment-variable references, never into the file),
//! remove, and test a connection with edited values. File and keyring work
//! runs on blocking threads; the keyring gets a time limit, since a hung
//! Secret Service must not hang the Settings tab.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::protocol::{ProfileEdit, ProfileFileView, ProfileTest, SecretInput};
use super::{AdminEvent, AdminInternal, send};
use crate::backend::{Emitter, Internal};
use crate::config::edit::{Server, check_profile_name, remove_profile, upsert_profile};
use crate::config::secrets::{self, KeyringState};
use crate::config::{ConfigFile, Overrides, Profile, Resolved, SecretRef};
use crate::error::{Error, Result};
use crate::redis_conn::{Redis, RedisTarget, Topology};
use crate::store::Store;

/// Longest wait for one server of a test.
const BLOCKING_LIMIT: Duration = secrets::KEYRING_LIMIT;

/// Runs keyring and file work on a blocking thread, bounded in time.
async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    secrets::off_runtime(what, f).await
}

/// Reads the file and probes the keyring (blocking).
fn read_view(path: &Path) -> ProfileFileView {
    ProfileFileView {
        path: path.display().to_string(),
        file: ConfigFile::load(path).map_err(|e| e.to_string()),
        keyring: secrets::keyring_state_blocking(),
    }
}

/// Sends the profile file and the keyring state to the window.
pub(super) async fn send_file(emit: Emitter, path: std::result::Result<PathBuf, String>) {
    let view = match path {
        Ok(path) => blocking("reading the profile file", move || Ok(read_view(&path))).await,
        Err(e) => Err(Error::Config(e)),
    };
    match view {
        Ok(v) => send(&emit, AdminEvent::ProfileFile(Box::new(v))),
        Err(e) => {
            let message = format!("cannot read the profile file: {e}");
            send(
                &emit,
                AdminEvent::ProfileFile(Box::new(ProfileFileView {
                    path: String::new(),
                    file: Err(message.clone()),
                    keyring: KeyringState::Unavailable(e.to_string()),
                })),
            );
            emit.error(message);
        }
    }
}

/// `FOO_BAR`-style names only: what a shell can export.
fn check_env_name(var: &str) -> Result<()> {
    let ok = !var.is_empty()
        && !var.starts_with(|c: char| c.is_ascii_digit())
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "`{var}` is not an environment variable name (letters, digits and _, not starting with a digit)"
        )))
    }
}

/// Refuses a URL that carries a password: passwords belong in the keyring
/// or an environment variable, never in the profile file.
fn check_no_password(what: &str, url: &str) -> Result<()> {
    if let Ok(u) = url::Url::parse(url)
        && u.password().is_some()
    {
        return Err(Error::Invalid(format!(
            "the {what} URL contains a password: remove it from the URL and give it in the password field (OS keyring or environment variable), so it never lands in the profile file"
        )));
    }
    Ok(())
}

/// Checks the edited values before anything is stored.
fn check_edit(edit: &ProfileEdit) -> Result<()> {
    check_profile_name(&edit.name)?;
    let p = &edit.profile;
    if p.redis.urls.is_empty() {
        return Err(Error::Invalid(
            "give at least one Redis URL (redis://host:6379 or rediss://…)".into(),
        ));
    }
    for u in &p.redis.urls {
        if !(u.starts_with("redis://") || u.starts_with("rediss://")) {
            return Err(Error::Invalid(format!(
                "`{u}` is not a Redis URL: it starts with redis:// or rediss://"
            )));
        }
        check_no_password("Redis", u)?;
    }
    let db = p.database.url.trim();
    if !db.is_empty() {
        if !(db.starts_with("postgres://")
            || db.starts_with("postgresql://")
            || db.starts_with("sqlite:"))
        {
            return Err(Error::Invalid(format!(
                "`{db}` is not a database URL: use postgres://… or sqlite://…, or leave it empty for the local SQLite store"
            )));
        }
        check_no_password("database", db)?;
    }
    for input in [&edit.redis_password, &edit.database_password] {
        match input {
            SecretInput::Env(var) => check_env_name(var)?,
            SecretInput::Keyring(s) if s.expose().is_empty() => {
                return Err(Error::Invalid(
                    "type the password to store in the OS keyring".into(),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Applies one password choice: the reference to write, storing a typed
/// password in the keyring first (blocking). A keyring that cannot be used
/// is an error naming the environment-variable route; the password is then
/// written nowhere.
fn apply_secret(
    input: &SecretInput,
    current: Option<SecretRef>,
    account: &str,
) -> Result<Option<SecretRef>> {
    match input {
        SecretInput::Keep => Ok(current),
        SecretInput::Clear => Ok(None),
        SecretInput::Env(var) => Ok(Some(SecretRef::Env { env: var.clone() })),
        SecretInput::Keyring(secret) => {
            if let KeyringState::Unavailable(why) = secrets::keyring_state_blocking() {
                return Err(Error::Config(why));
            }
            secrets::store_in_keyring_blocking(account, secret.expose()).map(Some)
        }
    }
}

/// Keyring entries of `old` that the new references no longer use.
fn unused_entries(old: &Profile, new: &Profile) -> Vec<String> {
    let in_use = [&new.redis.password, &new.database.password];
    [&old.redis.password, &old.database.password]
        .into_iter()
        .filter_map(|r| match r {
            Some(SecretRef::Keyring { keyring }) => Some(keyring.clone()),
            _ => None,
        })
        .filter(|k| {
            !in_use
                .iter()
                .any(|r| matches!(r, Some(SecretRef::Keyring { keyring }) if keyring == k))
        })
        .collect()
}

/// The blocking part of a save: passwords, then the file. Returns the file
/// written, and the resolved profile when the one in use was edited.
fn save_blocking(
    path: &Path,
    edit: &ProfileEdit,
    reconnect: bool,
) -> Result<(ConfigFile, Option<Result<Resolved>>)> {
    check_edit(edit)?;
    // Read first: a malformed file stops the save before any password moves.
    let before = ConfigFile::load(path)?;
    let old = edit
        .original
        .as_ref()
        .and_then(|o| before.profiles.get(o))
        .cloned();
    let mut profile = edit.profile.clone();
    profile.redis.password = apply_secret(
        &edit.redis_password,
        profile.redis.password.take(),
        &Server::Redis.account(&edit.name),
    )?;
    profile.database.password = apply_secret(
        &edit.database_password,
        profile.database.password.take(),
        &Server::Database.account(&edit.name),
    )?;
    let file = upsert_profile(
        path,
        edit.original.as_deref(),
        &edit.name,
        profile.clone(),
        edit.make_default,
    )?;
    if let Some(old) = old {
        for entry in unused_entries(&old, &profile) {
            if let Err(e) = secrets::delete_from_keyring_blocking(&entry) {
                tracing::warn!("could not delete the keyring entry {entry}: {e}");
            }
        }
    }
    let resolved = reconnect.then(|| {
        Resolved::resolve_blocking(
            &file,
            &Overrides {
                profile: Some(edit.name.clone()),
                ..Overrides::default()
            },
        )
    });
    Ok((file, resolved))
}

/// Saves a profile; on success the backend re-reads the names and, when
/// the profile in use was edited, reconnects with it.
pub(super) async fn save(
    emit: Emitter,
    internal: UnboundedSender<Internal>,
    path: std::result::Result<PathBuf, String>,
    edit: ProfileEdit,
    in_use: Option<String>,
) {
    let name = edit.name.clone();
    let edited = edit.original.clone().unwrap_or_else(|| edit.name.clone());
    let reconnect = in_use.as_deref() == Some(edited.as_str());
    let outcome = match path {
        Ok(path) => {
            let p = path.clone();
            blocking("saving the profile", move || {
                save_blocking(&p, &edit, reconnect)
            })
            .await
            .map(|r| (r, path))
        }
        Err(e) => Err(Error::Config(e)),
    };
    match outcome {
        Ok(((file, resolved), path)) => {
            emit.notice(format!("Saved profile {name} to {}", path.display()));
            send(
                &emit,
                AdminEvent::ProfileSaved {
                    name,
                    result: Ok(()),
                },
            );
            send_file(emit, Ok(path)).await;
            let _ = internal.send(Internal::Admin(AdminInternal::ProfilesChanged {
                names: file.profiles.keys().cloned().collect(),
                reconnect: resolved.map(Box::new),
            }));
        }
        Err(e) => {
            let message = format!("cannot save profile {name}: {e}");
            emit.error(message.clone());
            send(
                &emit,
                AdminEvent::ProfileSaved {
                    name,
                    result: Err(message),
                },
            );
        }
    }
}

/// Removes a profile and its keyring entries.
pub(super) async fn remove(
    emit: Emitter,
    internal: UnboundedSender<Internal>,
    path: std::result::Result<PathBuf, String>,
    name: String,
) {
    let n = name.clone();
    let outcome = match path {
        Ok(path) => {
            let p = path.clone();
            blocking("removing the profile", move || {
                let (file, removed) = remove_profile(&p, &n)?;
                let mut kept = Vec::new();
                for entry in unused_entries(&removed, &Profile::default()) {
                    if let Err(e) = secrets::delete_from_keyring_blocking(&entry) {
                        kept.push(format!("{entry} ({e})"));
                    }
                }
                Ok((file, kept))
            })
            .await
            .map(|r| (r, path))
        }
        Err(e) => Err(Error::Config(e)),
    };
    match outcome {
        Ok(((file, kept), path)) => {
            if kept.is_empty() {
                emit.notice(format!("Removed profile {name}"));
            } else {
                emit.notice(format!(
                    "Removed profile {name}; its keyring entries could not be deleted: {}",
                    kept.join(", ")
                ));
            }
            send(
                &emit,
                AdminEvent::ProfileRemoved {
                    name,
                    result: Ok(()),
                },
            );
            send_file(emit, Ok(path)).await;
            let _ = internal.send(Internal::Admin(AdminInternal::ProfilesChanged {
                names: file.profiles.keys().cloned().collect(),
                reconnect: None,
            }));
        }
        Err(e) => {
            let message = format!("cannot remove profile {name}: {e}");
            emit.error(message.clone());
            send(
                &emit,
                AdminEvent::ProfileRemoved {
                    name,
                    result: Err(message),
                },
            );
        }
    }
}

/// Reads one password for a test: typed, from the environment, or the
/// stored reference (blocking: the keyring).
fn test_secret(input: &SecretInput, current: Option<&SecretRef>) -> Result<Option<String>> {
    match input {
        SecretInput::Clear => Ok(None),
        SecretInput::Keyring(s) => Ok(Some(s.expose().to_string())),
        SecretInput::Env(var) => std::env::var(var).map(Some).map_err(|_| {
            Error::Config(format!(
                "environment variable {var} is not set in cachedeck's environment"
            ))
        }),
        SecretInput::Keep => current
            .map(|r| r.resolve_blocking().map(|s| s.expose().to_string()))
            .transpose(),
    }
}

/// What a test connects to, with its passwords read.
struct TestTarget {
    /// Redis, or why its password could not be read.
    redis: Result<RedisTarget>,
    /// The database URL with its password, or why not.
    database: Result<String>,
}

fn test_target(edit: &ProfileEdit) -> TestTarget {
    let p = &edit.profile;
    let redis = check_edit(edit).and_then(|_| {
        Ok(RedisTarget {
            urls: p.redis.urls.clone(),
            username: p.redis.username.clone(),
            password: test_secret(&edit.redis_password, p.redis.password.as_ref())?,
            tls_ca_file: p.redis.tls_ca_file.clone(),
        })
    });
    let database = check_edit(edit).and_then(|_| {
        if p.database.url.trim().is_empty() {
            return crate::config::local_store_url();
        }
        match test_secret(&edit.database_password, p.database.password.as_ref())? {
            Some(pw) => {
                let mut u = url::Url::parse(p.database.url.trim())
                    .map_err(|e| Error::Config(format!("database URL: {e}")))?;
                u.set_password(Some(&pw)).map_err(|_| {
                    Error::Config("this database URL cannot carry a password".into())
                })?;
                Ok(u.to_string())
            }
            None => Ok(p.database.url.trim().to_string()),
        }
    });
    TestTarget { redis, database }
}

/// PING and INFO server on the first master: version and topology.
async fn test_redis(target: RedisTarget) -> Result<String> {
    let redis = Redis::connect(&target).await?;
    let masters = redis.masters().await?;
    let first = masters
        .into_iter()
        .next()
        .ok_or_else(|| Error::Config("the cluster reports no master node".into()))?;
    let mut conn = first.conn;
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| Error::redis("PING", e))?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .map_err(|e| Error::redis("INFO server", e))?;
    let version = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("redis_version:"))
        .unwrap_or("(version not reported)")
        .to_string();
    let kind = match redis.topology() {
        Topology::Standalone => "standalone".to_string(),
        Topology::Cluster => {
            let nodes = redis.masters().await.map(|m| m.len()).unwrap_or(0);
            format!("cluster of {nodes} masters")
        }
    };
    Ok(format!(
        "Redis {version}, {kind}, at {} ({pong})",
        redis.label()
    ))
}

/// Connects to the store (running its migrations, as the window would).
async fn test_database(url: String) -> Result<String> {
    let store = Store::connect(&url).await?;
    Ok(format!(
        "{} as {}{}",
        store.label(),
        store.identity(),
        if store.is_local() {
            " (local SQLite store)"
        } else {
            ""
        }
    ))
}

/// Bounds one server's test.
async fn within<T>(what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(BLOCKING_LIMIT, f)
        .await
        .unwrap_or_else(|_| {
            Err(Error::Config(format!(
                "{what} did not answer within {} s",
                BLOCKING_LIMIT.as_secs()
            )))
        })
}

/// Tries the edited values: Redis and the database side by side, one line
/// each. Nothing is saved.
pub(super) async fn test(emit: Emitter, edit: ProfileEdit) {
    let name = edit.name.clone();
    let e2 = edit.clone();
    let target = blocking("reading the passwords", move || Ok(test_target(&e2))).await;
    let (redis, database) = match target {
        Ok(TestTarget { redis, database }) => {
            let r = async {
                match redis {
                    Ok(t) => within("Redis", test_redis(t)).await,
                    Err(e) => Err(e),
                }
            };
            let d = async {
                match database {
                    Ok(u) => within("the database", test_database(u)).await,
                    Err(e) => Err(e),
                }
            };
            let (r, d) = tokio::join!(r, d);
            (r.map_err(|e| e.to_string()), d.map_err(|e| e.to_string()))
        }
        Err(e) => (Err(e.to_string()), Err(e.to_string())),
    };
    send(
        &emit,
        AdminEvent::ProfileTested(ProfileTest {
            name,
            redis,
            database,
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Secret;

    fn edit() -> ProfileEdit {
        let mut p = Profile::default();
        p.redis.urls = vec!["redis://127.0.0.1:6379".into()];
        ProfileEdit {
            original: None,
            name: "a".into(),
            profile: p,
            redis_password: SecretInput::Clear,
            database_password: SecretInput::Clear,
            make_default: false,
        }
    }

    #[test]
    fn passwords_in_urls_and_bad_names_are_refused() {
        assert!(check_edit(&edit()).is_ok());
        let mut e = edit();
        e.profile.redis.urls = vec!["redis://:hunter2@host:6379".into()];
        let msg = check_edit(&e).unwrap_err().to_string();
        assert!(msg.contains("password"), "{msg}");
        let mut e = edit();
        e.profile.database.url = "postgres://u:hunter2@db/x".into();
        assert!(check_edit(&e).is_err());
        let mut e = edit();
        e.redis_password = SecretInput::Env("1BAD".into());
        assert!(check_edit(&e).is_err());
        let mut e = edit();
        e.redis_password = SecretInput::Keyring(Secret::new(""));
        assert!(check_edit(&e).is_err());
        let mut e = edit();
        e.profile.redis.urls.clear();
        assert!(check_edit(&e).is_err());
    }

    #[test]
    fn an_env_reference_is_saved_and_a_keyring_password_never_in_plain_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.toml");
        let mut e = edit();
        e.redis_password = SecretInput::Env("CACHEDECK_TEST_PW".into());
        save_blocking(&path, &e, false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("env = \"CACHEDECK_TEST_PW\""), "{text}");

        let mut e = edit();
        e.original = Some("a".into());
        e.profile.redis.password = Some(SecretRef::Env {
            env: "CACHEDECK_TEST_PW".into(),
        });
        e.redis_password = SecretInput::Keyring(Secret::new("hunter2-secret"));
        let r = save_blocking(&path, &e, false);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("hunter2-secret"), "{text}");
        match secrets::keyring_state_blocking() {
            KeyringState::Available => {
                r.unwrap();
                assert!(text.contains("keyring = \"a/redis\""), "{text}");
                secrets::delete_from_keyring_blocking("a/redis").unwrap();
            }
            KeyringState::Unavailable(_) => {
                let msg = r.unwrap_err().to_string();
                assert!(msg.contains("environment variable"), "{msg}");
                // Unchanged: still the env reference.
                assert!(text.contains("env = \"CACHEDECK_TEST_PW\""), "{text}");
            }
        }
    }

    #[test]
    fn keyring_entries_no_longer_used_are_found() {
        let mut old = Profile::default();
        old.redis.password = Some(SecretRef::Keyring {
            keyring: "a/redis".into(),
        });
        old.database.password = Some(SecretRef::Keyring {
            keyring: "a/database".into(),
        });
        let mut new = old.clone();
        new.database.password = Some(SecretRef::Env { env: "X".into() });
        assert_eq!(unused_entries(&old, &new), vec!["a/database".to_string()]);
        assert_eq!(unused_entries(&old, &Profile::default()).len(), 2);
    }
}
