//! `cachedeck grant add|list|remove`: permission grants (a write action itself).

use clap::Subcommand;

use super::Ctx;
use crate::error::Result;
use crate::governance::grants::{self, GrantChange};
use crate::governance::permissions::PERM_WRITE;

/// `cachedeck grant …`
#[derive(Debug, Subcommand)]
pub enum GrantCmd {
    /// Grant a permission to an admin identity (the database user, or
    /// user@host for a local SQLite store).
    Add {
        /// The identity to grant to.
        #[arg(long)]
        identity: String,
        /// settings:write:all or settings:read:all.
        #[arg(long, default_value = PERM_WRITE)]
        permission: String,
    },
    /// List the grants, whether the bootstrap rule is in force, and what you hold.
    List,
    /// Withdraw a permission from an identity.
    Remove {
        /// The identity to withdraw from.
        #[arg(long)]
        identity: String,
        /// settings:write:all or settings:read:all.
        #[arg(long, default_value = PERM_WRITE)]
        permission: String,
    },
}

fn describe(verb: &str, c: &GrantChange) -> String {
    let mut lines: Vec<String> = c
        .changed
        .iter()
        .map(|g| {
            format!(
                "{verb} {} {} {}",
                g.permission,
                if verb == "granted" { "to" } else { "from" },
                g.identity
            )
        })
        .collect();
    lines.extend(c.unchanged.iter().cloned());
    lines.extend(c.note.iter().cloned());
    lines.join("\n")
}

/// Runs `cachedeck grant add|list|remove`.
pub async fn run(ctx: &Ctx, cmd: GrantCmd) -> Result<i32> {
    let store = ctx.store().await?;
    let actor = ctx.actor().await?;
    match cmd {
        GrantCmd::Add {
            identity,
            permission,
        } => {
            let c = grants::add(store, &actor, &identity, &permission).await?;
            ctx.print(&c, || describe("granted", &c));
        }
        GrantCmd::Remove {
            identity,
            permission,
        } => {
            let c = grants::remove(store, &actor, &identity, &permission).await?;
            ctx.print(&c, || describe("withdrew", &c));
        }
        GrantCmd::List => {
            let l = grants::list(store, &actor).await?;
            ctx.print(&l, || {
                let mut out = Vec::new();
                if l.bootstrap {
                    out.push(format!(
                        "no {PERM_WRITE} grant exists: every identity may write (bootstrap rule; the first grant ends it)"
                    ));
                }
                for g in &l.grants {
                    out.push(format!(
                        "{:<32} {:<20} granted {} by {}",
                        g.identity,
                        g.permission,
                        crate::jobs::iso(g.granted_at_ms),
                        g.granted_by
                    ));
                }
                out.push(format!(
                    "you: {} — {}{}",
                    l.you.identity,
                    l.you.permissions.join(", "),
                    l.you
                        .read_only_reason
                        .as_deref()
                        .map(|r| format!(" (read-only: {r})"))
                        .unwrap_or_default()
                ));
                out.join("\n")
            });
        }
    }
    Ok(0)
}
