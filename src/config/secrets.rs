//! Where passwords live: the OS keyring or an environment variable, never the
//! profile file. A headless machine has no Secret Service; that is reported as
//! a state ("no keyring here, use an environment variable"), never papered over
//! by writing the secret somewhere in plain text.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Service name under which cachedeck's keyring entries are stored.
const KEYRING_SERVICE: &str = "cachedeck";

/// A reference to a secret, as written in the profile file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SecretRef {
    /// `{ env = "VAR" }`: read from this environment variable.
    Env { env: String },
    /// `{ keyring = "profile/redis" }`: stored in the OS keyring under this account.
    Keyring { keyring: String },
}

/// Whether the OS keyring can be used on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyringState {
    Available,
    /// Why not, in words a person can act on.
    Unavailable(String),
}

fn entry(account: &str) -> Result<keyring::Entry> {
    keyring::Entry::new(KEYRING_SERVICE, account)
        .map_err(|e| Error::Config(format!("keyring entry {account}: {e}")))
}

fn unavailable(e: &keyring::Error) -> String {
    format!(
        "the OS keyring is not available here ({e}); store the password in an environment variable and reference it with {{ env = \"VAR\" }}"
    )
}

/// Probes the keyring without storing anything.
pub fn keyring_state() -> KeyringState {
    match entry("probe").and_then(|e| match e.get_password() {
        Ok(_) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(err) => Err(Error::Config(unavailable(&err))),
    }) {
        Ok(()) => KeyringState::Available,
        Err(e) => KeyringState::Unavailable(e.to_string()),
    }
}

/// Stores a secret in the keyring, or says why it cannot.
pub fn store_in_keyring(account: &str, secret: &str) -> Result<SecretRef> {
    entry(account)?
        .set_password(secret)
        .map_err(|e| Error::Config(unavailable(&e)))?;
    Ok(SecretRef::Keyring {
        keyring: account.to_string(),
    })
}

/// Removes a keyring entry; a missing one is fine.
pub fn delete_from_keyring(account: &str) -> Result<()> {
    match entry(account)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(Error::Config(unavailable(&e))),
    }
}

impl SecretRef {
    /// Reads the secret now.
    pub fn resolve(&self) -> Result<String> {
        match self {
            SecretRef::Env { env } => std::env::var(env).map_err(|_| {
                Error::Config(format!(
                    "the password is referenced as environment variable {env}, which is not set"
                ))
            }),
            SecretRef::Keyring { keyring } => entry(keyring)?.get_password().map_err(|e| match e {
                keyring::Error::NoEntry => Error::Config(format!(
                    "no password stored in the OS keyring for {keyring}; set it again in Settings"
                )),
                other => Error::Config(unavailable(&other)),
            }),
        }
    }
}
