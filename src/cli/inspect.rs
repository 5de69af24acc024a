//! `cachedeck inspect KEY | --key-hex HEX`: type, TTL, encoding, memory, the
//! decoded cachedeck meaning and one page of the value.

use super::{Ctx, InspectArgs};
use crate::error::{Error, Result};
use crate::redis_admin::{Blob, Inspection, PageRequest, ValuePage, inspect};

/// The key bytes from `KEY` or `--key-hex`.
pub(super) fn key_bytes(key: Option<String>, key_hex: Option<String>) -> Result<Vec<u8>> {
    match (key, key_hex) {
        (Some(k), None) => Ok(k.into_bytes()),
        (None, Some(h)) => {
            hex::decode(h.trim()).map_err(|e| Error::Invalid(format!("--key-hex is not hex: {e}")))
        }
        _ => Err(Error::Invalid("give either KEY or --key-hex HEX".into())),
    }
}

/// The text, and for an element cut at 64 KiB what its full length is.
fn blob(b: &Blob) -> String {
    match b.full_length {
        Some(n) => format!("{} … (first 64 KiB of {n} bytes)", b.text),
        None => b.text.clone(),
    }
}

fn human(i: &Inspection) -> String {
    let mut out = Vec::new();
    out.push(format!("key:       {}", i.key.display));
    out.push(format!("key hex:   {}", i.key.key_hex));
    if !i.exists {
        out.push("exists:    no".into());
        return out.join("\n");
    }
    out.push(format!(
        "type:      {}{}",
        i.key_type,
        i.encoding
            .as_deref()
            .map(|e| format!(" (encoding {e})"))
            .unwrap_or_default()
    ));
    out.push(format!(
        "ttl:       {}",
        match i.ttl_ms {
            Some(ms) =>
                humantime::format_duration(std::time::Duration::from_millis(ms as u64)).to_string(),
            None => "no expiry".into(),
        }
    ));
    if let Some(m) = i.memory_bytes {
        out.push(format!("memory:    {m} bytes"));
    }
    if let Some(l) = i.length {
        let unit = if i.key_type == "string" {
            "bytes"
        } else {
            "elements"
        };
        out.push(format!("length:    {l} {unit}"));
    }
    if let Some(p) = &i.parsed {
        let mut parts = vec![format!("{} of datasource {}", p.kind, p.datasource)];
        if let Some(g) = &p.generation {
            parts.push(format!("generation {g}"));
        }
        for (name, v) in [
            ("measure", &p.measure),
            ("practice", &p.practice),
            ("provider", &p.provider),
            ("frequency", &p.frequency),
        ] {
            if let Some(v) = v {
                parts.push(format!("{name} {v}"));
            }
        }
        if p.provider_is_null {
            parts.push("provider NULL".into());
        }
        if let Some(n) = p.member_count {
            parts.push(format!("{n} members"));
        }
        out.push(format!("meaning:   {}", parts.join(", ")));
    }
    match &i.value {
        Some(ValuePage::String {
            offset,
            value,
            truncated,
            pretty_json,
            json_rows,
        }) => {
            if let Some(rows) = json_rows {
                out.push(format!("rows:      {rows}"));
            }
            out.push(format!(
                "value (from byte {offset}{}):",
                if *truncated { ", truncated" } else { "" }
            ));
            out.push(pretty_json.clone().unwrap_or_else(|| blob(value)));
        }
        Some(ValuePage::Hash { fields }) => {
            out.push("fields:".into());
            out.extend(
                fields
                    .iter()
                    .map(|f| format!("  {} = {}", blob(&f.field), blob(&f.value))),
            );
        }
        Some(ValuePage::List { offset, items }) => {
            out.push("items:".into());
            out.extend(
                items
                    .iter()
                    .enumerate()
                    .map(|(n, v)| format!("  [{}] {}", *offset + n as u64, blob(v))),
            );
        }
        Some(ValuePage::Set { members }) => {
            out.push("members:".into());
            out.extend(members.iter().map(|m| format!("  {}", blob(m))));
        }
        Some(ValuePage::Zset { members, .. }) => {
            out.push("members (score member):".into());
            out.extend(
                members
                    .iter()
                    .map(|m| format!("  {} {}", m.score, blob(&m.member))),
            );
        }
        Some(ValuePage::Stream { entries }) => {
            out.push("entries:".into());
            for e in entries {
                let fields: Vec<String> = e
                    .fields
                    .iter()
                    .map(|f| format!("{}={}", blob(&f.field), blob(&f.value)))
                    .collect();
                out.push(format!("  {} {}", e.id, fields.join(" ")));
            }
        }
        Some(ValuePage::Unsupported { note }) => out.push(note.clone()),
        None => {}
    }
    if let Some(c) = &i.next_cursor {
        out.push(format!("(more: run again with --cursor {c})"));
    }
    out.join("\n")
}

/// Inspects one key; exit 1 when it does not exist.
pub async fn run(ctx: &Ctx, args: InspectArgs) -> Result<i32> {
    let key = key_bytes(args.key, args.key_hex)?;
    let redis = ctx.redis().await?;
    let page = PageRequest {
        cursor: args.cursor,
        count: args.count,
    };
    let i = inspect(redis, &key, &page).await?;
    ctx.print(&i, || human(&i));
    if !i.exists {
        eprintln!("error: no such key");
        return Ok(1);
    }
    Ok(0)
}
