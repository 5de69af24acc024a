//! `cachedeck profile list|set-secret`: the profiles of the profile file,
//! their password references and whether those answer; storing a password
//! in the OS keyring. The keyring is only ever asked on a blocking thread
//! (see `config::secrets`).

use std::io::{BufRead, IsTerminal};

use clap::{Args, Subcommand};
use serde::Serialize;

use super::Ctx;
use crate::config::edit::{Server, check_profile_name, set_secret_ref};
use crate::config::secrets::{self, KeyringState, SecretRef, off_runtime};
use crate::config::{ConfigFile, config_path};
use crate::error::{Error, Result};

#[derive(Debug, Subcommand)]
pub enum ProfileCmd {
    /// Every profile with its servers, password references and whether each
    /// password can be read now (the keyring is asked, nothing is printed).
    List,
    /// Store a password in the OS keyring for the profile named by
    /// `--profile` and point the profile at it. Reads one line from
    /// standard input (without echo on a terminal).
    SetSecret(SetSecretArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("server").required(true).args(["redis", "database"])))]
pub struct SetSecretArgs {
    /// The Redis password (`redis.password`).
    #[arg(long)]
    pub redis: bool,
    /// The database password (`database.password`).
    #[arg(long)]
    pub database: bool,
}

/// One password reference of a profile and whether it answers now.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretView {
    /// As written in the file: `{ keyring = "…" }` or `{ env = "…" }`.
    reference: String,
    /// `stored`, `missing`, `set`, `not set` or `keyring unavailable`.
    state: &'static str,
    /// Why, when the keyring did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// One profile as listed (URLs redacted, passwords never read out).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProfileView {
    name: String,
    default: bool,
    production: bool,
    redis_urls: Vec<String>,
    redis_username: Option<String>,
    redis_password: Option<SecretView>,
    database_url: String,
    database_password: Option<SecretView>,
}

/// What `profile list --json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ListView {
    path: String,
    /// Whether the OS keyring answers here, and why not.
    keyring: String,
    profiles: Vec<ProfileView>,
}

/// Checks one reference (blocking: the keyring).
fn check(reference: &SecretRef, keyring: &KeyringState) -> SecretView {
    let (state, detail) = match reference {
        SecretRef::Env { env } => match std::env::var_os(env) {
            Some(_) => ("set", None),
            None => ("not set", None),
        },
        SecretRef::Keyring { keyring: account } => match keyring {
            KeyringState::Unavailable(why) => ("keyring unavailable", Some(why.clone())),
            KeyringState::Available => match secrets::keyring_has_blocking(account) {
                Ok(true) => ("stored", None),
                Ok(false) => ("missing", None),
                Err(e) => ("keyring unavailable", Some(e.to_string())),
            },
        },
    };
    SecretView {
        reference: reference.to_string(),
        state,
        detail,
    }
}

/// Reads the file and asks the keyring about every reference (blocking).
fn list_blocking() -> Result<ListView> {
    let path = config_path()?;
    let file = ConfigFile::load(&path)?;
    let uses_keyring = file.profiles.values().any(|p| {
        [&p.redis.password, &p.database.password]
            .iter()
            .any(|r| matches!(r, Some(SecretRef::Keyring { .. })))
    });
    let keyring = secrets::keyring_state_blocking();
    let profiles = file
        .profiles
        .iter()
        .map(|(name, p)| ProfileView {
            name: name.clone(),
            default: file.default_profile.as_deref() == Some(name.as_str()),
            production: p.production,
            redis_urls: p.redis.urls.iter().map(|u| crate::redact::url(u)).collect(),
            redis_username: p.redis.username.clone(),
            redis_password: p.redis.password.as_ref().map(|r| check(r, &keyring)),
            database_url: crate::redact::url(&p.database.url),
            database_password: p.database.password.as_ref().map(|r| check(r, &keyring)),
        })
        .collect();
    let keyring = match keyring {
        KeyringState::Available => "available".to_string(),
        KeyringState::Unavailable(why) if uses_keyring => why,
        KeyringState::Unavailable(why) => format!("not used ({why})"),
    };
    Ok(ListView {
        path: path.display().to_string(),
        keyring,
        profiles,
    })
}

fn human(list: &ListView) -> String {
    if list.profiles.is_empty() {
        return format!(
            "no profiles in {} (add one in the window's Settings tab)",
            list.path
        );
    }
    let secret = |s: &Option<SecretView>| match s {
        None => "no password".to_string(),
        Some(v) => format!("password {} ({})", v.reference, v.state),
    };
    let mut out = vec![format!("{} (keyring: {})", list.path, list.keyring)];
    for p in &list.profiles {
        out.push(format!(
            "{}{}{}",
            p.name,
            if p.default { " (default)" } else { "" },
            if p.production { " [production]" } else { "" }
        ));
        out.push(format!(
            "  redis     {}{}  {}",
            p.redis_urls.join(","),
            p.redis_username
                .as_deref()
                .map(|u| format!(" as {u}"))
                .unwrap_or_default(),
            secret(&p.redis_password)
        ));
        out.push(format!(
            "  database  {}  {}",
            if p.database_url.is_empty() {
                "(local SQLite store)"
            } else {
                &p.database_url
            },
            secret(&p.database_password)
        ));
    }
    out.join("\n")
}

/// One line of standard input without its line ending; without echo when
/// standard input is a terminal.
fn read_password(prompt: &str) -> Result<String> {
    let line = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)
            .map_err(|e| Error::io("reading the password from the terminal", e))?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::io("reading the password from standard input", e))?;
        let trimmed = line.strip_suffix('\n').unwrap_or(&line);
        trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string()
    };
    if line.is_empty() {
        return Err(Error::Invalid(
            "no password given: type it, or pipe one line into standard input".into(),
        ));
    }
    Ok(line)
}

/// [`read_password`] on a blocking thread (standard input blocks).
pub(super) async fn read_password_off_runtime(prompt: String) -> Result<String> {
    tokio::task::spawn_blocking(move || read_password(&prompt))
        .await
        .map_err(|e| Error::Config(format!("reading the password stopped: {e}")))?
}

/// What `profile set-secret --json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SetView {
    profile: String,
    server: &'static str,
    reference: String,
    path: String,
}

async fn set_secret(ctx: &Ctx, profile: Option<&str>, args: SetSecretArgs) -> Result<i32> {
    let name = profile
        .ok_or_else(|| Error::Invalid("name the profile with --profile NAME".into()))?
        .to_string();
    check_profile_name(&name)?;
    let server = if args.redis {
        Server::Redis
    } else {
        Server::Database
    };
    let path = config_path()?;
    // The profile must exist before a password is asked for.
    let p = path.clone();
    let n = name.clone();
    off_runtime("reading the profile file", move || {
        let file = ConfigFile::load(&p)?;
        if file.profiles.contains_key(&n) {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "there is no profile named `{n}` in {} (add it first)",
                p.display()
            )))
        }
    })
    .await?;
    let account = server.account(&name);
    let password =
        read_password_off_runtime(format!("{} password of profile {name}: ", server.word()))
            .await?;
    let p = path.clone();
    let n = name.clone();
    let reference = off_runtime("storing the password in the OS keyring", move || {
        if let KeyringState::Unavailable(why) = secrets::keyring_state_blocking() {
            return Err(Error::KeyringUnavailable(why));
        }
        let reference = secrets::store_in_keyring_blocking(&account, &password)?;
        set_secret_ref(&p, &n, server, reference.clone())?;
        Ok(reference)
    })
    .await?;
    let view = SetView {
        profile: name.clone(),
        server: server.word(),
        reference: reference.to_string(),
        path: path.display().to_string(),
    };
    ctx.print(&view, || {
        format!(
            "stored the {} password of profile {name} in the OS keyring; {} now says password = {}",
            view.server, view.path, view.reference
        )
    });
    Ok(0)
}

pub async fn run(ctx: &Ctx, profile: Option<&str>, cmd: ProfileCmd) -> Result<i32> {
    match cmd {
        ProfileCmd::List => {
            let list = off_runtime("listing the profiles", list_blocking).await?;
            ctx.print(&list, || human(&list));
            Ok(0)
        }
        ProfileCmd::SetSecret(args) => set_secret(ctx, profile, args).await,
    }
}
