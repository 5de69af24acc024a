//! The Settings editor's fields for one profile, and how they become a
//! [`ProfileEdit`]: passwords are typed here but only ever leave as a
//! keyring request or an environment-variable name.

use std::path::PathBuf;

use crate::backend::{ProfileEdit, Secret, SecretInput};
use crate::config::{Profile, SecretRef};

/// Where one password comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretMode {
    /// Keep what the profile file references now.
    Keep,
    /// No password.
    None,
    /// Typed here, stored in the OS keyring.
    Keyring,
    /// Read from an environment variable.
    Env,
}

/// One password's fields. `Debug` hides the typed password.
#[derive(Clone, PartialEq)]
pub struct SecretForm {
    /// The chosen source.
    pub mode: SecretMode,
    /// What the file references now (offered as "Keep").
    pub current: Option<SecretRef>,
    /// The password typed (Keyring mode); sent once, then cleared.
    pub typed: String,
    /// The environment variable's name (Env mode).
    pub env: String,
}

impl std::fmt::Debug for SecretForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretForm")
            .field("mode", &self.mode)
            .field("current", &self.current)
            .field(
                "typed",
                &crate::config::secrets::Secret::new(self.typed.clone()),
            )
            .field("env", &self.env)
            .finish()
    }
}

impl SecretForm {
    /// Fields for a reference from the file.
    pub fn from_ref(current: Option<SecretRef>, suggested_env: &str) -> SecretForm {
        let env = match &current {
            Some(SecretRef::Env { env }) => env.clone(),
            _ => suggested_env.to_string(),
        };
        SecretForm {
            mode: if current.is_some() {
                SecretMode::Keep
            } else {
                SecretMode::None
            },
            current,
            typed: String::new(),
            env,
        }
    }

    /// What the backend should do with this password.
    pub fn input(&self) -> SecretInput {
        match self.mode {
            SecretMode::Keep if self.current.is_some() => SecretInput::Keep,
            SecretMode::Keep | SecretMode::None => SecretInput::Clear,
            SecretMode::Keyring => SecretInput::Keyring(Secret::new(self.typed.clone())),
            SecretMode::Env => SecretInput::Env(self.env.trim().to_string()),
        }
    }

    /// How the current reference reads: `OS keyring (prod/redis)`.
    pub fn current_label(&self) -> String {
        match &self.current {
            Some(SecretRef::Keyring { keyring }) => format!("keep: OS keyring ({keyring})"),
            Some(SecretRef::Env { env }) => format!("keep: environment variable {env}"),
            None => "keep: none".into(),
        }
    }
}

/// The editor's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileForm {
    /// The name in the file when editing began (`None`: new profile).
    pub original: Option<String>,
    /// Name.
    pub name: String,
    /// Destructive actions need typed confirmation.
    pub production: bool,
    /// Redis URLs, one per line (several: cluster seed nodes).
    pub redis_urls: String,
    /// Redis ACL user.
    pub username: String,
    /// The Redis password.
    pub redis_secret: SecretForm,
    /// PEM file of a private CA for `rediss://`.
    pub tls_ca: String,
    /// Database URL; empty for the local SQLite store.
    pub database_url: String,
    /// The database password.
    pub db_secret: SecretForm,
    /// Make it the default profile.
    pub make_default: bool,
    /// The profile as loaded: defaults and anything the editor does not
    /// show are kept as they are.
    pub base: Profile,
}

fn env_name(profile: &str, server: &str) -> String {
    let p: String = profile
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("CACHEDECK_{p}_{server}_PASSWORD")
}

impl ProfileForm {
    /// A blank profile (standalone Redis on localhost, local SQLite store).
    pub fn new_profile() -> ProfileForm {
        ProfileForm {
            original: None,
            name: String::new(),
            production: false,
            redis_urls: "redis://127.0.0.1:6379".into(),
            username: String::new(),
            redis_secret: SecretForm::from_ref(None, ""),
            tls_ca: String::new(),
            database_url: String::new(),
            db_secret: SecretForm::from_ref(None, ""),
            make_default: false,
            base: Profile::default(),
        }
    }

    /// The fields of profile `name` of the file.
    pub fn edit(name: &str, p: &Profile, is_default: bool) -> ProfileForm {
        ProfileForm {
            original: Some(name.to_string()),
            name: name.to_string(),
            production: p.production,
            redis_urls: p.redis.urls.join("\n"),
            username: p.redis.username.clone().unwrap_or_default(),
            redis_secret: SecretForm::from_ref(p.redis.password.clone(), &env_name(name, "REDIS")),
            tls_ca: p
                .redis
                .tls_ca_file
                .as_ref()
                .map(|f| f.display().to_string())
                .unwrap_or_default(),
            database_url: p.database.url.clone(),
            db_secret: SecretForm::from_ref(p.database.password.clone(), &env_name(name, "DB")),
            make_default: is_default,
            base: p.clone(),
        }
    }

    /// The Redis URLs typed (blank lines and commas separate).
    pub fn urls(&self) -> Vec<String> {
        self.redis_urls
            .split(['\n', ',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    /// What to send, or the first problem a person can fix here.
    pub fn to_edit(&self) -> Result<ProfileEdit, String> {
        let name = self.name.trim();
        crate::config::edit::check_profile_name(name).map_err(|e| e.to_string())?;
        let urls = self.urls();
        if urls.is_empty() {
            return Err("give at least one Redis URL".into());
        }
        for s in [&self.redis_secret, &self.db_secret] {
            match s.mode {
                SecretMode::Keyring if s.typed.is_empty() => {
                    return Err("type the password to store in the OS keyring".into());
                }
                SecretMode::Env if s.env.trim().is_empty() => {
                    return Err("name the environment variable that holds the password".into());
                }
                _ => {}
            }
        }
        let mut p = self.base.clone();
        p.production = self.production;
        p.redis.urls = urls;
        p.redis.username = Some(self.username.trim().to_string()).filter(|u| !u.is_empty());
        p.redis.password = self.redis_secret.current.clone();
        p.redis.tls_ca_file = Some(self.tls_ca.trim())
            .filter(|t| !t.is_empty())
            .map(PathBuf::from);
        p.database.url = self.database_url.trim().to_string();
        p.database.password = self.db_secret.current.clone();
        Ok(ProfileEdit {
            original: self.original.clone(),
            name: name.to_string(),
            profile: p,
            redis_password: self.redis_secret.input(),
            database_password: self.db_secret.input(),
            make_default: self.make_default,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_password_leaves_only_as_a_keyring_request() {
        let mut f = ProfileForm::new_profile();
        f.name = "prod".into();
        f.redis_urls = "redis://a:1\nredis://b:1".into();
        f.redis_secret.mode = SecretMode::Keyring;
        f.redis_secret.typed = "hunter2".into();
        f.db_secret.mode = SecretMode::Env;
        f.db_secret.env = "PGPASSWORD".into();
        let e = f.to_edit().unwrap();
        assert_eq!(e.profile.redis.urls.len(), 2);
        assert_eq!(e.profile.redis.password, None);
        assert_eq!(e.database_password, SecretInput::Env("PGPASSWORD".into()));
        assert!(matches!(&e.redis_password, SecretInput::Keyring(s) if s.expose() == "hunter2"));
        assert!(!format!("{e:?}").contains("hunter2"));
    }

    #[test]
    fn editing_keeps_references_and_defaults() {
        let mut p = Profile::default();
        p.redis.urls = vec!["rediss://c:6380".into()];
        p.redis.password = Some(SecretRef::Keyring {
            keyring: "x/redis".into(),
        });
        p.defaults.concurrency = 7;
        let f = ProfileForm::edit("x", &p, true);
        assert_eq!(f.redis_secret.mode, SecretMode::Keep);
        assert_eq!(f.db_secret.env, "CACHEDECK_X_DB_PASSWORD");
        let e = f.to_edit().unwrap();
        assert_eq!(e.redis_password, SecretInput::Keep);
        assert_eq!(e.profile, p);
        assert!(e.make_default);
    }
}
