//! `cachedeck keys PATTERN [--type T] [--limit N]`: the key browser on a
//! terminal (SCAN over every master, never KEYS).

use std::io::Write as _;

use super::{Ctx, KeysArgs};
use crate::error::{Error, Result};
use crate::redis_admin::{KeyInfo, ScanCursor, ScanQuery};

/// SCAN calls spent looking for one more key after the limit, to say
/// whether the limit cut the list.
const PROBE_CALLS: usize = 20;

/// Lists up to `--limit` keys matching the pattern (JSON: `[{key, keyHex}]`),
/// saying on stderr when the limit cut the list.
pub async fn run(ctx: &Ctx, args: KeysArgs) -> Result<i32> {
    let redis = ctx.redis().await?;
    let limit = args.limit;
    let query = ScanQuery {
        pattern: args.pattern.into_bytes(),
        type_filter: args.key_type,
        count_hint: 0,
    };
    let mut cursor = ScanCursor::new(redis, query).await?;
    let mut found: Vec<KeyInfo> = Vec::new();
    while found.len() < limit && !cursor.is_done() {
        let page = cursor.next_page_max(limit - found.len()).await?;
        found.extend(page.keys);
    }
    // Did the limit cut the list? Look a little further without returning keys.
    let mut more = cursor.buffered() > 0;
    for _ in 0..PROBE_CALLS {
        if more || cursor.is_done() {
            break;
        }
        cursor.next_page_max(0).await?;
        more = cursor.buffered() > 0;
    }
    let unsure = !more && !cursor.is_done();

    if ctx.json {
        ctx.print(&found, String::new);
    } else {
        let mut out = std::io::stdout().lock();
        for k in &found {
            writeln!(out, "{}", k.display).map_err(|e| Error::io("writing to stdout", e))?;
        }
        if found.is_empty() {
            eprintln!("no keys match");
        }
    }
    if more {
        eprintln!(
            "stopped at the limit of {limit} keys; more keys match (raise --limit or narrow the pattern)"
        );
    } else if unsure {
        eprintln!("stopped at the limit of {limit} keys; more keys may match (raise --limit)");
    }
    Ok(0)
}
