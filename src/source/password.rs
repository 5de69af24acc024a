//! Where a datasource's source database password comes from. The store
//! never holds the password: its `source_password` column holds a reference,
//! as a profile does, written as text:
//!
//! - `keyring:NAME`: the OS keyring entry NAME (service `cachedeck`);
//! - `env:VAR`: the environment variable VAR of the process that warms;
//! - `profile`: the password of the profile's database.
//!
//! A source URL that carries a password itself is refused when a datasource
//! is saved ([`check_source_url`]); the password is put into the URL only
//! in memory, when a warm or a check opens the source ([`source_url`]).

use std::fmt;
use std::str::FromStr;

use crate::config::SecretRef;
use crate::error::{Error, Result};

/// A datasource's source password reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourcePassword {
    /// In the OS keyring under this account.
    Keyring(String),
    /// In this environment variable.
    Env(String),
    /// The password of the profile's database.
    Profile,
}

impl fmt::Display for SourcePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourcePassword::Keyring(name) => write!(f, "keyring:{name}"),
            SourcePassword::Env(var) => write!(f, "env:{var}"),
            SourcePassword::Profile => f.write_str("profile"),
        }
    }
}

impl FromStr for SourcePassword {
    type Err = Error;

    fn from_str(text: &str) -> Result<SourcePassword> {
        let bad = || {
            Error::Invalid(format!(
                "`{text}` is not a source password reference: use keyring:NAME, env:VAR or profile"
            ))
        };
        if text == "profile" {
            return Ok(SourcePassword::Profile);
        }
        let (kind, name) = text.split_once(':').ok_or_else(bad)?;
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        match kind {
            "keyring" => Ok(SourcePassword::Keyring(name.to_string())),
            "env" => {
                let ok = !name.starts_with(|c: char| c.is_ascii_digit())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if ok {
                    Ok(SourcePassword::Env(name.to_string()))
                } else {
                    Err(Error::Invalid(format!(
                        "`{name}` is not an environment variable name (letters, digits and _, not starting with a digit)"
                    )))
                }
            }
            _ => Err(bad()),
        }
    }
}

/// What to say instead of storing a password given in a URL.
pub const HOW_TO: &str = "give the URL without it and say where the password is: --source-password-env VAR, --source-password-keyring NAME (stored with `cachedeck datasource set-secret`) or --source-password-profile (the profile's database password); in the window, the Source password field";

/// Refuses a source URL that carries a password (user info, or a
/// `password=`-like parameter): it would be stored in clear.
pub fn check_source_url(url: &str) -> Result<()> {
    let user_info_password = url::Url::parse(url).is_ok_and(|u| u.password().is_some());
    if user_info_password || crate::redact::redact(url) != url {
        return Err(Error::Invalid(format!(
            "the source URL {} carries a password, which cachedeck will not store: {HOW_TO}",
            crate::redact::url(url)
        )));
    }
    Ok(())
}

/// The password in a URL's user info, decoded.
fn password_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let pw = u.password()?;
    Some(
        percent_encoding::percent_decode_str(pw)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// The URL a datasource's rows are read from, with its password put in:
/// the datasource's own URL (or the profile's database URL, which already
/// carries the profile's password) and the referenced password, read now
/// (the keyring on a blocking thread, never on the runtime).
pub async fn source_url(
    own_url: Option<&str>,
    password: Option<&str>,
    profile_url: &str,
) -> Result<String> {
    let url = own_url.unwrap_or(profile_url);
    let Some(reference) = password else {
        return Ok(url.to_string());
    };
    let secret = match reference.parse::<SourcePassword>()? {
        SourcePassword::Profile => password_of(profile_url).ok_or_else(|| {
            Error::Config(
                "the datasource takes the profile's database password, but the profile's database URL has none".into(),
            )
        })?,
        SourcePassword::Env(env) => SecretRef::Env { env }
            .resolve()
            .await?
            .expose()
            .to_string(),
        SourcePassword::Keyring(keyring) => SecretRef::Keyring { keyring }
            .resolve()
            .await?
            .expose()
            .to_string(),
    };
    crate::config::with_password(url, &secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip_and_bad_ones_are_refused() {
        for text in ["keyring:ds/3", "env:SRC_PW", "profile"] {
            assert_eq!(text.parse::<SourcePassword>().unwrap().to_string(), text);
        }
        for bad in [
            "",
            "keyring:",
            "env:1X",
            "env:A-B",
            "vault:x",
            "profile:x",
            "keyring:a b",
        ] {
            assert!(bad.parse::<SourcePassword>().is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_with_passwords_are_refused_with_the_way_to_do_it() {
        assert!(check_source_url("postgres://u@db/x").is_ok());
        assert!(check_source_url("sqlite:///tmp/a.db?mode=ro").is_ok());
        for bad in [
            "postgres://u:hunter2@db/x",
            "postgres://u@db/x?password=hunter2",
            "postgres://u@db/x?sslpassword=hunter2",
            // As the window shows a stored one: still refused.
            "postgres://u:***@db/x",
        ] {
            let msg = check_source_url(bad).unwrap_err().to_string();
            assert!(!msg.contains("hunter2"), "{msg}");
            assert!(msg.contains("--source-password-env"), "{msg}");
        }
    }

    #[tokio::test]
    async fn the_password_is_put_in_only_in_memory() {
        let profile = "postgres://admin:pr%40file@db/app";
        assert_eq!(
            source_url(Some("postgres://u@src/x"), None, profile)
                .await
                .unwrap(),
            "postgres://u@src/x"
        );
        assert_eq!(
            source_url(Some("postgres://u@src/x"), Some("profile"), profile)
                .await
                .unwrap(),
            "postgres://u:pr%40file@src/x"
        );
        assert_eq!(source_url(None, None, profile).await.unwrap(), profile);
        let err = source_url(
            Some("postgres://u@src/x"),
            Some("env:CACHEDECK_UNSET_TEST_VAR"),
            profile,
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("CACHEDECK_UNSET_TEST_VAR"),
            "{err}"
        );
    }
}
