//! `cachedeck datasource add|edit|list|remove`

use super::{Ctx, DatasourceCmd};
use crate::config::parse_duration;
use crate::error::Result;
use crate::source::{Source, password};
use crate::store::{Datasource, DatasourceInput};

fn secs(text: &str) -> Result<i64> {
    Ok(parse_duration(text)?.as_secs() as i64)
}

/// Checks the query on its source before anything is stored.
async fn validate(ctx: &Ctx, input: &DatasourceInput) -> Result<()> {
    if let Some(u) = &input.source_url {
        password::check_source_url(u)?;
    }
    let url = password::source_url(
        input.source_url.as_deref(),
        input.source_password.as_deref(),
        &ctx.database_url().await?,
    )
    .await?;
    let source = Source::open(&url, input.statement_timeout()).await?;
    let checked = source.validate(input.id, &input.sql).await;
    source.close().await;
    checked.map(|_| ())
}

fn line(d: &Datasource) -> String {
    format!(
        "#{:<4} {:<32} stale after {:>6}  ttl {:>6}  timeout {:>6}  {}{}{}",
        d.id,
        d.name,
        humantime::format_duration(std::time::Duration::from_secs(d.stale_after_secs as u64))
            .to_string(),
        humantime::format_duration(std::time::Duration::from_secs(d.ttl_secs as u64)).to_string(),
        humantime::format_duration(d.statement_timeout()).to_string(),
        if d.enabled { "" } else { "(disabled) " },
        d.source_url
            .as_deref()
            .map(crate::redact::url)
            .unwrap_or_default(),
        d.source_password
            .as_deref()
            .map(|p| format!(" (password: {p})"))
            .unwrap_or_default()
    )
}

pub async fn run(ctx: &Ctx, cmd: DatasourceCmd) -> Result<i32> {
    let store = ctx.store().await?;
    match cmd {
        DatasourceCmd::Add(a) => {
            let defaults = ctx
                .resolved()
                .await
                .map(|r| r.defaults.clone())
                .unwrap_or_default();
            let input = DatasourceInput {
                id: a.id,
                name: a.name,
                source_url: a.source_url,
                source_password: a.source_password.reference().flatten(),
                sql: a.sql,
                stale_after_secs: secs(a.stale_after.as_deref().unwrap_or(&defaults.stale_after))?,
                ttl_secs: secs(a.ttl.as_deref().unwrap_or(&defaults.ttl))?,
                enabled: !a.disabled,
                statement_timeout_secs: secs(&a.statement_timeout)?,
            };
            let actor = ctx.actor().await?;
            crate::governance::require_write(
                &actor,
                "add a datasource",
                Some(input.id),
                serde_json::json!({}),
            )
            .await?;
            validate(ctx, &input).await?;
            let d = crate::governance::datasources::add(store, &actor, &input).await?;
            ctx.print(&d, || format!("added {}", line(&d)));
        }
        DatasourceCmd::Edit(a) => {
            let cur = store.datasource(a.id).await?;
            let input = DatasourceInput {
                id: cur.id,
                name: a.name.unwrap_or(cur.name),
                source_url: a.source_url.or(cur.source_url),
                source_password: a.source_password.reference().unwrap_or(cur.source_password),
                sql: a.sql.unwrap_or(cur.sql),
                stale_after_secs: match a.stale_after {
                    Some(s) => secs(&s)?,
                    None => cur.stale_after_secs,
                },
                ttl_secs: match a.ttl {
                    Some(s) => secs(&s)?,
                    None => cur.ttl_secs,
                },
                enabled: a.enabled.unwrap_or(cur.enabled),
                statement_timeout_secs: match a.statement_timeout {
                    Some(s) => secs(&s)?,
                    None => cur.statement_timeout_secs,
                },
            };
            let actor = ctx.actor().await?;
            crate::governance::require_write(
                &actor,
                "edit a datasource",
                Some(input.id),
                serde_json::json!({}),
            )
            .await?;
            validate(ctx, &input).await?;
            let d = crate::governance::datasources::update(store, &actor, &input).await?;
            ctx.print(&d, || format!("updated {}", line(&d)));
        }
        DatasourceCmd::List => {
            let all = store.datasources().await?;
            ctx.print(&all, || {
                if all.is_empty() {
                    "no datasources (add one with `cachedeck datasource add` or `cachedeck demo-data`)".into()
                } else {
                    all.iter().map(line).collect::<Vec<_>>().join("\n")
                }
            });
        }
        DatasourceCmd::SetSecret { id } => {
            let cur = store.datasource(id).await?;
            let actor = ctx.actor().await?;
            let account = format!("datasource/{id}");
            let input = DatasourceInput {
                source_password: Some(format!("keyring:{account}")),
                ..DatasourceInput::from(cur)
            };
            crate::governance::require_write(
                &actor,
                "store a datasource's source password",
                Some(id),
                serde_json::json!({}),
            )
            .await?;
            let password = super::profile::read_password_off_runtime(format!(
                "source password of datasource {id}: "
            ))
            .await?;
            crate::config::secrets::off_runtime("storing the password in the OS keyring", {
                let account = account.clone();
                move || {
                    if let crate::config::secrets::KeyringState::Unavailable(why) =
                        crate::config::secrets::keyring_state_blocking()
                    {
                        return Err(crate::Error::KeyringUnavailable(why));
                    }
                    crate::config::secrets::store_in_keyring_blocking(&account, &password)
                }
            })
            .await?;
            let d = crate::governance::datasources::update(store, &actor, &input).await?;
            ctx.print(&d, || {
                format!("stored the source password of datasource #{id} in the OS keyring (entry {account})")
            });
        }
        DatasourceCmd::Remove { id } => {
            let actor = ctx.actor().await?;
            crate::governance::datasources::remove(store, &actor, id).await?;
            ctx.print(&serde_json::json!({"removed": id}), || {
                format!("removed datasource #{id}")
            });
        }
        DatasourceCmd::Discover => {
            let redis = ctx.redis().await?;
            let found = crate::metrics::discover::discover(redis, store).await?;
            ctx.print(&found, || discover_text(&found));
        }
    }
    Ok(0)
}

/// The human form of `datasource discover`.
fn discover_text(found: &[crate::metrics::discover::Discovered]) -> String {
    if found.is_empty() {
        return "no cache in Redis belongs to an unregistered datasource".into();
    }
    let mut out = String::from("found in Redis, not registered:");
    for d in found {
        let warmed = d
            .last_warmed
            .as_deref()
            .map(|t| format!(" • last warmed {t}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "\n  DS #{}: {} entries • ~{:.2} MB (estimated){warmed} — register it: `cachedeck datasource add --id {} --name … --sql …`",
            d.datasource_id, d.total_entries, d.estimated_memory_mb, d.datasource_id
        ));
    }
    out
}
