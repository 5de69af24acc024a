//! Where passwords live: the OS keyring or an environment variable, never the
//! profile file. A headless machine has no Secret Service; that is reported as
//! a state ("no keyring here, use an environment variable"), never papered over
//! by writing the secret somewhere in plain text.
//!
//! The keyring crate's calls block (its Secret Service client runs a runtime
//! of its own, which panics inside ours), so every keyring call here is a
//! `*_blocking` function for a thread outside the async runtime, and async
//! code goes through [`off_runtime`] (a blocking thread, with a time limit so
//! a hung Secret Service cannot hang a command or the window).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Service name under which cachedeck's keyring entries are stored.
pub const KEYRING_SERVICE: &str = "cachedeck";

/// Longest wait for the keyring (or a file read next to it).
pub const KEYRING_LIMIT: Duration = Duration::from_secs(15);

/// A password in memory: `Debug` shows `***`, so a logged value that holds
/// one cannot leak it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The password itself (for the keyring or a connection).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A reference to a secret, as written in the profile file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SecretRef {
    /// `{ env = "VAR" }`: read from this environment variable.
    Env { env: String },
    /// `{ keyring = "profile/redis" }`: stored in the OS keyring under this account.
    Keyring { keyring: String },
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::Env { env } => write!(f, "{{ env = \"{env}\" }}"),
            SecretRef::Keyring { keyring } => write!(f, "{{ keyring = \"{keyring}\" }}"),
        }
    }
}

/// Whether the OS keyring can be used on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyringState {
    Available,
    /// Why not, in words a person can act on.
    Unavailable(String),
}

/// Runs `f` (keyring or file work that blocks) on a blocking thread, outside
/// the async runtime, for at most [`KEYRING_LIMIT`].
pub async fn off_runtime<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::time::timeout(KEYRING_LIMIT, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(Error::Config(format!("{what} stopped: {e}"))),
        Err(_) => Err(Error::KeyringUnavailable(format!(
            "{what} did not finish within {} s (is the OS keyring locked or hung? an environment-variable reference {{ env = \"VAR\" }} needs no keyring)",
            KEYRING_LIMIT.as_secs()
        ))),
    }
}

fn entry(account: &str) -> Result<keyring::Entry> {
    keyring::Entry::new(KEYRING_SERVICE, account)
        .map_err(|e| Error::Config(format!("keyring entry {account}: {e}")))
}

/// The one line said when there is no usable keyring.
pub fn unavailable(e: &dyn std::fmt::Display) -> String {
    let e = e
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "the OS keyring is not available here ({e}); store the password in an environment variable and reference it with {{ env = \"VAR\" }}"
    )
}

/// Probes the keyring without storing anything (blocking).
pub fn keyring_state_blocking() -> KeyringState {
    match entry("probe").and_then(|e| match e.get_password() {
        Ok(_) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(err) => Err(Error::KeyringUnavailable(unavailable(&err))),
    }) {
        Ok(()) => KeyringState::Available,
        Err(Error::KeyringUnavailable(why) | Error::Config(why)) => KeyringState::Unavailable(why),
        Err(e) => KeyringState::Unavailable(e.to_string()),
    }
}

/// Probes the keyring from async code.
pub async fn keyring_state() -> KeyringState {
    off_runtime("asking the OS keyring", || Ok(keyring_state_blocking()))
        .await
        .unwrap_or_else(|e| KeyringState::Unavailable(e.to_string()))
}

/// Stores a secret in the keyring, or says why it cannot (blocking).
pub fn store_in_keyring_blocking(account: &str, secret: &str) -> Result<SecretRef> {
    entry(account)?
        .set_password(secret)
        .map_err(|e| Error::KeyringUnavailable(unavailable(&e)))?;
    Ok(SecretRef::Keyring {
        keyring: account.to_string(),
    })
}

/// Removes a keyring entry; a missing one is fine (blocking).
pub fn delete_from_keyring_blocking(account: &str) -> Result<()> {
    match entry(account)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(Error::KeyringUnavailable(unavailable(&e))),
    }
}

/// Whether a keyring entry holds a password (blocking): `Ok(false)` when
/// the keyring answers without one.
pub fn keyring_has_blocking(account: &str) -> Result<bool> {
    match entry(account)?.get_password() {
        Ok(_) => Ok(true),
        Err(keyring::Error::NoEntry) => Ok(false),
        Err(e) => Err(Error::KeyringUnavailable(unavailable(&e))),
    }
}

impl SecretRef {
    /// Reads the secret now (blocking for a keyring reference).
    pub fn resolve_blocking(&self) -> Result<Secret> {
        match self {
            SecretRef::Env { env } => std::env::var(env).map(Secret::new).map_err(|_| {
                Error::Config(format!(
                    "the password is referenced as environment variable {env}, which is not set"
                ))
            }),
            SecretRef::Keyring { keyring } => entry(keyring)?
                .get_password()
                .map(Secret::new)
                .map_err(|e| match e {
                    keyring::Error::NoEntry => Error::Config(format!(
                        "no password stored in the OS keyring for {keyring}; store it with `cachedeck profile set-secret` or in Settings"
                    )),
                    other => Error::KeyringUnavailable(unavailable(&other)),
                }),
        }
    }

    /// Reads the secret from async code: the keyring is asked on a blocking
    /// thread, never on the runtime.
    pub async fn resolve(&self) -> Result<Secret> {
        match self {
            SecretRef::Env { .. } => self.resolve_blocking(),
            SecretRef::Keyring { .. } => {
                let me = self.clone();
                off_runtime("reading the OS keyring", move || me.resolve_blocking()).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn references_print_as_written_in_the_file() {
        let k = SecretRef::Keyring {
            keyring: "prod/redis".into(),
        };
        assert_eq!(k.to_string(), "{ keyring = \"prod/redis\" }");
        let e = SecretRef::Env { env: "PW".into() };
        assert_eq!(e.to_string(), "{ env = \"PW\" }");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_keyring_reference_resolves_inside_the_runtime_without_a_panic() {
        // Whether or not a Secret Service runs here, this answers with a
        // value or an error; before, it panicked ("Cannot start a runtime
        // from within a runtime").
        let r = SecretRef::Keyring {
            keyring: "cachedeck-unit-test/none".into(),
        }
        .resolve()
        .await;
        assert!(r.is_err(), "no such entry");
        let _ = keyring_state().await;
    }
}
