//! Streaming a Postgres datasource with `COPY (<sql>) TO STDOUT` (text
//! format): the same path and cost as the database's own fastest export.
//! Each line is split on tabs, unescaped, and written as a JSON object using
//! the column types from `describe`: numbers pass through as their exact text
//! (NUMERIC included), booleans become true/false, dates and times become
//! ISO-8601 (the session runs with DateStyle ISO and TimeZone UTC), NULL is null.

use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::postgres::PgPool;

use super::group::{GroupAcc, GroupChunk};
use super::json::push_str;
use super::{KeyColumns, explain, source_err};
use crate::error::Result;
use crate::keys::DsId;

/// How a column's COPY text becomes JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Integers, floats, NUMERIC: the text is the JSON number.
    Number,
    Bool,
    Text,
    /// `2025-01-02 03:04:05.6` → `2025-01-02T03:04:05.6`.
    Timestamp,
    /// `2025-01-02 03:04:05.6+00` → `2025-01-02T03:04:05.6Z`.
    TimestampTz,
    /// json / jsonb: already JSON.
    Json,
}

pub(crate) fn kind_of(type_name: &str) -> Kind {
    match type_name {
        "INT2" | "INT4" | "INT8" | "OID" | "FLOAT4" | "FLOAT8" | "NUMERIC" => Kind::Number,
        "BOOL" => Kind::Bool,
        "TIMESTAMP" => Kind::Timestamp,
        "TIMESTAMPTZ" => Kind::TimestampTz,
        "JSON" | "JSONB" => Kind::Json,
        _ => Kind::Text,
    }
}

/// Undoes COPY text escaping (`\t`, `\n`, `\\`, …).
fn unescape(field: &str) -> std::borrow::Cow<'_, str> {
    if !field.contains('\\') {
        return std::borrow::Cow::Borrowed(field);
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some(o) => out.push(o),
            None => {}
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Parses one COPY line and appends its JSON object to its group's buffer.
/// `spans` is scratch space for the field boundaries, reused across lines.
pub(crate) fn append_line(
    ds: DsId,
    line: &str,
    names: &[String],
    kinds: &[Kind],
    key: KeyColumns,
    acc: &mut GroupAcc,
    spans: &mut Vec<(usize, usize)>,
) -> Result<()> {
    spans.clear();
    let mut start = 0;
    for tab in memchr::memchr_iter(b'\t', line.as_bytes()) {
        spans.push((start, tab));
        start = tab + 1;
    }
    spans.push((start, line.len()));
    if spans.len() != names.len() {
        return Err(source_err(
            ds,
            "COPY returned a different number of columns than described",
        ));
    }
    let field = |i: usize| {
        let (a, b) = spans[i];
        &line[a..b]
    };
    let part = |i: usize| -> Option<std::borrow::Cow<'_, str>> {
        let f = field(i);
        (f != "\\N").then(|| unescape(f))
    };
    let (m, p, prov, f) = (
        part(key.measure),
        part(key.practice),
        part(key.provider),
        part(key.frequency),
    );
    let target = acc.target([m.as_deref(), p.as_deref(), prov.as_deref(), f.as_deref()])?;
    target.push('{');
    for (i, (name, kind)) in names.iter().zip(kinds).enumerate() {
        let raw = field(i);
        if i > 0 {
            target.push(',');
        }
        target.push_str(name);
        if raw == "\\N" {
            target.push_str("null");
            continue;
        }
        match kind {
            Kind::Number => match raw {
                "NaN" | "Infinity" | "-Infinity" => target.push_str("null"),
                n => target.push_str(n),
            },
            Kind::Bool => target.push_str(if raw == "t" { "true" } else { "false" }),
            Kind::Text => push_str(target, &unescape(raw)),
            Kind::Timestamp | Kind::TimestampTz => {
                let (body, utc) = match raw.strip_suffix("+00") {
                    Some(b) if *kind == Kind::TimestampTz => (b, true),
                    _ => (raw, false),
                };
                target.push('"');
                match body.split_once(' ') {
                    Some((d, t)) => {
                        target.push_str(d);
                        target.push('T');
                        target.push_str(t);
                    }
                    None => target.push_str(body),
                }
                if utc {
                    target.push('Z');
                }
                target.push('"');
            }
            Kind::Json => target.push_str(&unescape(raw)),
        }
    }
    target.push('}');
    let n = target.len();
    acc.written(n);
    Ok(())
}

/// Streams chunks of grouped rows, parsed on a task of its own.
pub(crate) fn rows(
    pool: PgPool,
    timeout_ms: u64,
    ds: DsId,
    sql: String,
    columns: Vec<(String, String)>,
    budget: usize,
) -> BoxStream<'static, Result<GroupChunk>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<GroupChunk>>(1);
    tokio::spawn(async move {
        let plain: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
        // `"name":` written once per column, not once per row.
        let names: Vec<String> = plain
            .iter()
            .map(|n| {
                let mut q = String::new();
                push_str(&mut q, n);
                q.push(':');
                q
            })
            .collect();
        let kinds: Vec<Kind> = columns.iter().map(|(_, t)| kind_of(t)).collect();
        let key = match KeyColumns::find(ds, &plain) {
            Ok(k) => k,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let result: Result<()> = async {
            let timeout = Some(std::time::Duration::from_millis(timeout_ms));
            let err = |e| explain(ds, timeout, e);
            // One read-only transaction for the whole COPY, rolled back when
            // it is dropped: session settings the query might change die
            // with it.
            let mut txn = super::pg_read(&pool, timeout_ms).await.map_err(err)?;
            sqlx::query("SET LOCAL DateStyle = ISO, YMD")
                .execute(&mut *txn)
                .await
                .map_err(err)?;
            sqlx::query("SET LOCAL TimeZone = 'UTC'")
                .execute(&mut *txn)
                .await
                .map_err(err)?;
            let mut stream = txn
                .copy_out_raw(&format!("COPY ({sql}) TO STDOUT"))
                .await
                .map_err(err)?;
            // Postgres sends one row per message; a line split across
            // messages (other servers, proxies) waits in `carry`.
            let mut carry: Vec<u8> = Vec::new();
            let mut spans = Vec::with_capacity(names.len());
            let mut acc = GroupAcc::new(ds, budget);
            let mut line_of = |bytes: &[u8], acc: &mut GroupAcc| -> Result<()> {
                let line = std::str::from_utf8(bytes)
                    .map_err(|e| source_err(ds, format!("COPY returned invalid UTF-8: {e}")))?;
                append_line(ds, line, &names, &kinds, key, acc, &mut spans)
            };
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(err)?;
                let mut rest: &[u8] = &chunk;
                if !carry.is_empty() {
                    let Some(pos) = memchr::memchr(b'\n', rest) else {
                        carry.extend_from_slice(rest);
                        continue;
                    };
                    carry.extend_from_slice(&rest[..pos]);
                    line_of(&carry, &mut acc)?;
                    carry.clear();
                    rest = &rest[pos + 1..];
                }
                while let Some(pos) = memchr::memchr(b'\n', rest) {
                    line_of(&rest[..pos], &mut acc)?;
                    rest = &rest[pos + 1..];
                }
                carry.extend_from_slice(rest);
                if acc.full() && tx.send(Ok(acc.take())).await.is_err() {
                    return Ok(());
                }
            }
            if !carry.is_empty() {
                line_of(&carry, &mut acc)?;
            }
            if !acc.is_empty() {
                let _ = tx.send(Ok(acc.take())).await;
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = tx.send(Err(e)).await;
        }
    });
    super::receiver_stream(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_becomes_typed_json() {
        let plain = [
            "measure",
            "practice_uid",
            "provider_uid",
            "frequency",
            "amount",
            "at",
            "ok",
            "note",
        ];
        let names: Vec<String> = plain.iter().map(|n| format!("\"{n}\":")).collect();
        let plain: Vec<String> = plain.iter().map(|s| s.to_string()).collect();
        let kinds = [
            Kind::Text,
            Kind::Number,
            Kind::Number,
            Kind::Text,
            Kind::Number,
            Kind::TimestampTz,
            Kind::Bool,
            Kind::Text,
        ];
        let key = KeyColumns::find(1, &plain).unwrap();
        let mut acc = GroupAcc::new(1, 1 << 20);
        append_line(
            1,
            "Charges\t114\t\\N\tMonthly\t12.50\t2025-01-02 03:04:05.5+00\tt\ta\\tb\\\\c",
            &names,
            &kinds,
            key,
            &mut acc,
            &mut Vec::new(),
        )
        .unwrap();
        let chunk = acc.take();
        let (g, json) = &chunk.groups[0];
        assert_eq!(g.provider, None);
        assert_eq!(g.practice, "114");
        assert_eq!(
            json,
            r#"[{"measure":"Charges","practice_uid":114,"provider_uid":null,"frequency":"Monthly","amount":12.50,"at":"2025-01-02T03:04:05.5Z","ok":true,"note":"a\tb\\c"}]"#
        );
    }
}
