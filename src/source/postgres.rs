//! Streaming a datasource's rows from Postgres.

use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{Column, Row, TypeInfo};

use super::json::{RowWriter, Val};
use super::{KeyColumns, SourceRow, source_err};
use crate::error::Result;
use crate::keys::{DsId, GroupKey};

/// Rows sent to the consumer at a time.
pub(crate) const BATCH: usize = 512;

/// How to decode each column, worked out from the first row.
#[derive(Clone, Copy)]
enum Kind {
    I16,
    I32,
    I64,
    F32,
    F64,
    Numeric,
    Bool,
    Text,
    Date,
    Timestamp,
    TimestampTz,
    Time,
    Json,
}

fn kind_of(type_name: &str) -> Option<Kind> {
    Some(match type_name {
        "INT2" => Kind::I16,
        "INT4" => Kind::I32,
        "INT8" => Kind::I64,
        "FLOAT4" => Kind::F32,
        "FLOAT8" => Kind::F64,
        "NUMERIC" => Kind::Numeric,
        "BOOL" => Kind::Bool,
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "CITEXT" => Kind::Text,
        "DATE" => Kind::Date,
        "TIMESTAMP" => Kind::Timestamp,
        "TIMESTAMPTZ" => Kind::TimestampTz,
        "TIME" => Kind::Time,
        "JSON" | "JSONB" => Kind::Json,
        _ => return None,
    })
}

struct Layout {
    names: Vec<String>,
    kinds: Vec<Kind>,
    key: KeyColumns,
}

fn layout(ds: DsId, row: &PgRow) -> Result<Layout> {
    let mut names = Vec::new();
    let mut kinds = Vec::new();
    for c in row.columns() {
        let t = c.type_info().name().to_string();
        let k = kind_of(&t).ok_or_else(|| {
            source_err(
                ds,
                format!(
                    "column `{}` has type {t}, which cachedeck does not carry; cast it in the query (e.g. {}::text)",
                    c.name(),
                    c.name()
                ),
            )
        })?;
        names.push(c.name().to_string());
        kinds.push(k);
    }
    let key = KeyColumns::find(ds, &names)?;
    Ok(Layout { names, kinds, key })
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    row: &'r PgRow,
    i: usize,
) -> std::result::Result<Option<T>, sqlx::Error> {
    row.try_get::<Option<T>, _>(i)
}

fn value(row: &PgRow, i: usize, kind: Kind) -> std::result::Result<Val, sqlx::Error> {
    let v = match kind {
        Kind::I16 => get::<i16>(row, i)?.map(|v| Val::Int(v.into())),
        Kind::I32 => get::<i32>(row, i)?.map(|v| Val::Int(v.into())),
        Kind::I64 => get::<i64>(row, i)?.map(Val::Int),
        Kind::F32 => get::<f32>(row, i)?.map(|v| Val::Float(v.into())),
        Kind::F64 => get::<f64>(row, i)?.map(Val::Float),
        Kind::Numeric => get::<rust_decimal::Decimal>(row, i)?.map(|d| Val::Decimal(d.to_string())),
        Kind::Bool => get::<bool>(row, i)?.map(Val::Bool),
        Kind::Text => get::<String>(row, i)?.map(Val::Text),
        Kind::Date => get::<chrono::NaiveDate>(row, i)?.map(|d| Val::Text(d.format("%Y-%m-%d").to_string())),
        Kind::Timestamp => get::<chrono::NaiveDateTime>(row, i)?
            .map(|d| Val::Text(d.format("%Y-%m-%dT%H:%M:%S%.f").to_string())),
        Kind::TimestampTz => get::<chrono::DateTime<chrono::Utc>>(row, i)?
            .map(|d| Val::Text(d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))),
        Kind::Time => get::<chrono::NaiveTime>(row, i)?.map(|d| Val::Text(d.to_string())),
        Kind::Json => get::<serde_json::Value>(row, i)?.map(|v| Val::Raw(v.to_string())),
    };
    Ok(v.unwrap_or(Val::Null))
}

fn convert(ds: DsId, row: &PgRow, l: &Layout) -> Result<SourceRow> {
    let mut w = RowWriter::new();
    let mut key: [Option<String>; 4] = Default::default();
    for (i, (name, kind)) in l.names.iter().zip(&l.kinds).enumerate() {
        let v = value(row, i, *kind).map_err(|e| source_err(ds, e))?;
        if i == l.key.measure {
            key[0] = v.key_text();
        } else if i == l.key.practice {
            key[1] = v.key_text();
        } else if i == l.key.provider {
            key[2] = v.key_text();
        } else if i == l.key.frequency {
            key[3] = v.key_text();
        }
        w.push(name, &v);
    }
    let [m, p, prov, f] = key;
    Ok(SourceRow {
        group: group_key(ds, m, p, prov, f)?,
        json: w.finish(),
    })
}

/// Builds a group key, refusing NULL where only the provider may be NULL.
pub(crate) fn group_key(
    ds: DsId,
    measure: Option<String>,
    practice: Option<String>,
    provider: Option<String>,
    frequency: Option<String>,
) -> Result<GroupKey> {
    match (measure, practice, frequency) {
        (Some(measure), Some(practice), Some(frequency)) => Ok(GroupKey {
            measure,
            practice,
            provider,
            frequency,
        }),
        _ => Err(source_err(
            ds,
            "a row has NULL in measure, practice_uid or frequency (only provider_uid may be NULL)",
        )),
    }
}

/// Streams batches of rows from a task of its own, so reading the source runs
/// beside the consumer's Redis writes.
pub(crate) fn rows(pool: PgPool, ds: DsId, sql: String) -> BoxStream<'static, Result<Vec<SourceRow>>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<SourceRow>>>(8);
    tokio::spawn(async move {
        let mut stream = sqlx::query(&sql).fetch(&pool);
        let mut l: Option<Layout> = None;
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(item) = stream.next().await {
            let converted = item.map_err(|e| source_err(ds, e)).and_then(|row| {
                if l.is_none() {
                    l = Some(layout(ds, &row)?);
                }
                convert(ds, &row, l.as_ref().expect("layout set"))
            });
            match converted {
                Ok(r) => batch.push(r),
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
            if batch.len() >= BATCH && tx.send(Ok(std::mem::take(&mut batch))).await.is_err() {
                return;
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(Ok(batch)).await;
        }
    });
    super::receiver_stream(rx)
}
