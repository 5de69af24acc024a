//! Changing the profile file from the window: add or replace one profile,
//! remove one. Each change re-reads the file first (so an edit made
//! meanwhile by hand is kept), refuses to touch a malformed file, and writes
//! atomically with owner-only permissions ([`ConfigFile::save`]). The path is
//! always passed in, so tests work on a temporary directory.

use std::path::Path;

use super::{ConfigFile, Profile, SecretRef};
use crate::error::{Error, Result};

/// Checks a profile name: letters, digits, `-`, `_` and `.`, at most 64
/// characters. The name also names the profile's keyring entries
/// (`NAME/redis`), so it stays plain.
pub fn check_profile_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::Invalid("give the profile a name".into()));
    }
    if name.len() > 64 {
        return Err(Error::Invalid(
            "a profile name has at most 64 characters".into(),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(Error::Invalid(format!(
            "`{name}` cannot be a profile name ({c:?} is not allowed): use letters, digits, - _ and ."
        )));
    }
    Ok(())
}

/// Adds profile `name`, or replaces it. `original` is the name it had when
/// the edit began (a rename drops the old entry; the default follows the
/// rename). `make_default` makes it the file's default profile. Returns the
/// file as written. A malformed file is an error and is left as it is.
pub fn upsert_profile(
    path: &Path,
    original: Option<&str>,
    name: &str,
    profile: Profile,
    make_default: bool,
) -> Result<ConfigFile> {
    check_profile_name(name)?;
    let mut file = ConfigFile::load(path)?;
    let renamed = original.filter(|o| *o != name);
    if original.is_none() && file.profiles.contains_key(name) {
        return Err(Error::Invalid(format!(
            "a profile named `{name}` exists already: edit it, or choose another name"
        )));
    }
    if let Some(old) = renamed {
        if file.profiles.contains_key(name) {
            return Err(Error::Invalid(format!(
                "cannot rename `{old}` to `{name}`: a profile named `{name}` exists already"
            )));
        }
        file.profiles.remove(old);
        if file.default_profile.as_deref() == Some(old) {
            file.default_profile = Some(name.to_string());
        }
    }
    file.profiles.insert(name.to_string(), profile);
    if make_default {
        file.default_profile = Some(name.to_string());
    } else if file.default_profile.as_deref() == Some(name) {
        file.default_profile = None;
    }
    file.save(path)?;
    Ok(file)
}

/// Removes profile `name`; returns the file as written and the removed
/// profile (its keyring entries are the caller's to delete). A missing
/// profile is an error; a malformed file is left as it is.
pub fn remove_profile(path: &Path, name: &str) -> Result<(ConfigFile, Profile)> {
    let mut file = ConfigFile::load(path)?;
    let removed = file.profiles.remove(name).ok_or_else(|| {
        Error::Invalid(format!(
            "there is no profile named `{name}` in {}",
            path.display()
        ))
    })?;
    if file.default_profile.as_deref() == Some(name) {
        file.default_profile = None;
    }
    file.save(path)?;
    Ok((file, removed))
}

/// Which password of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// `redis.password`.
    Redis,
    /// `database.password`.
    Database,
}

impl Server {
    /// The word used in keyring account names and messages.
    pub fn word(self) -> &'static str {
        match self {
            Server::Redis => "redis",
            Server::Database => "database",
        }
    }

    /// The keyring account of profile `profile`'s password: `NAME/redis`
    /// or `NAME/database`, as the window's Settings tab stores it.
    pub fn account(self, profile: &str) -> String {
        format!("{profile}/{}", self.word())
    }
}

/// Points one password of profile `name` at `reference` (never a secret:
/// a keyring entry or an environment variable name), re-reading the file
/// first and writing it atomically. Returns the reference it replaced.
pub fn set_secret_ref(
    path: &Path,
    name: &str,
    server: Server,
    reference: SecretRef,
) -> Result<Option<SecretRef>> {
    check_profile_name(name)?;
    let mut file = ConfigFile::load(path)?;
    let profile = file.profiles.get_mut(name).ok_or_else(|| {
        Error::Invalid(format!(
            "there is no profile named `{name}` in {} (add it first)",
            path.display()
        ))
    })?;
    let slot = match server {
        Server::Redis => &mut profile.redis.password,
        Server::Database => &mut profile.database.password,
    };
    let old = slot.replace(reference);
    file.save(path)?;
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(url: &str) -> Profile {
        let mut p = Profile::default();
        p.redis.urls = vec![url.into()];
        p.redis.password = Some(SecretRef::Env {
            env: "REDIS_PW".into(),
        });
        p
    }

    #[test]
    fn names_are_plain() {
        assert!(check_profile_name("prod-eu_1.a").is_ok());
        for bad in ["", "a b", "a/b", "ünï", &"x".repeat(65)] {
            assert!(check_profile_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn add_rename_and_remove_keep_the_rest_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/profiles.toml");
        upsert_profile(&path, None, "a", profile("redis://a:1"), true).unwrap();
        upsert_profile(&path, None, "b", profile("redis://b:1"), false).unwrap();
        let err = upsert_profile(&path, None, "b", profile("redis://x:1"), false).unwrap_err();
        assert!(err.to_string().contains("exists already"), "{err}");

        // A rename of the default keeps it the default.
        let file = upsert_profile(&path, Some("a"), "a2", profile("redis://a:2"), true).unwrap();
        assert_eq!(file.default_profile.as_deref(), Some("a2"));
        assert!(!file.profiles.contains_key("a"));
        let read = ConfigFile::load(&path).unwrap();
        assert_eq!(read, file);
        assert_eq!(read.profiles["a2"].redis.urls, vec!["redis://a:2"]);
        assert_eq!(read.profiles["b"].redis.urls, vec!["redis://b:1"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let (file, removed) = remove_profile(&path, "a2").unwrap();
        assert_eq!(removed.redis.urls, vec!["redis://a:2"]);
        assert_eq!(file.default_profile, None);
        assert_eq!(
            ConfigFile::load(&path)
                .unwrap()
                .profiles
                .keys()
                .collect::<Vec<_>>(),
            vec!["b"]
        );
        assert!(remove_profile(&path, "a2").is_err());
    }

    #[test]
    fn a_secret_reference_is_set_and_the_file_is_private_from_the_first_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.toml");
        upsert_profile(&path, None, "a", profile("redis://a:1"), true).unwrap();
        let old = set_secret_ref(
            &path,
            "a",
            Server::Database,
            SecretRef::Keyring {
                keyring: Server::Database.account("a"),
            },
        )
        .unwrap();
        assert_eq!(old, None);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("keyring = \"a/database\""), "{text}");
        assert!(
            set_secret_ref(
                &path,
                "nope",
                Server::Redis,
                SecretRef::Env { env: "X".into() }
            )
            .is_err()
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("profiles.toml")]);
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_created_0600_whatever_the_umask_allows() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.toml");
        // An existing world-readable file is replaced by a private one.
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        upsert_profile(&path, None, "a", profile("redis://a:1"), true).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_malformed_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.toml");
        let text = "[profiles.a]\nredis.urls = [\"redis://x\"\n";
        std::fs::write(&path, text).unwrap();
        let err = upsert_profile(&path, None, "b", profile("redis://b:1"), false).unwrap_err();
        assert!(err.to_string().contains("line"), "{err}");
        assert!(remove_profile(&path, "a").is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}
