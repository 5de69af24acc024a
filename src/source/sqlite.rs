//! Streaming a datasource's rows from SQLite.

use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Column, Row, TypeInfo, ValueRef};

use super::json::{RowWriter, Val};
use super::postgres::{BATCH, group_key};
use super::{KeyColumns, SourceRow, source_err};
use crate::error::Result;
use crate::keys::DsId;

fn value(row: &SqliteRow, i: usize) -> std::result::Result<Val, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Val::Null);
    }
    let t = raw.type_info().name().to_string();
    Ok(match t.as_str() {
        "INTEGER" | "BOOLEAN" => Val::Int(row.try_get::<i64, _>(i)?),
        "REAL" => Val::Float(row.try_get::<f64, _>(i)?),
        "BLOB" => Val::Text(hex::encode(row.try_get::<Vec<u8>, _>(i)?)),
        _ => Val::Text(row.try_get::<String, _>(i)?),
    })
}

fn convert(ds: DsId, row: &SqliteRow, names: &[String], key: KeyColumns) -> Result<SourceRow> {
    let mut w = RowWriter::new();
    let mut k: [Option<String>; 4] = Default::default();
    for (i, name) in names.iter().enumerate() {
        let v = value(row, i).map_err(|e| source_err(ds, e))?;
        if i == key.measure {
            k[0] = v.key_text();
        } else if i == key.practice {
            k[1] = v.key_text();
        } else if i == key.provider {
            k[2] = v.key_text();
        } else if i == key.frequency {
            k[3] = v.key_text();
        }
        w.push(name, &v);
    }
    let [m, p, prov, f] = k;
    Ok(SourceRow {
        group: group_key(ds, m, p, prov, f)?,
        json: w.finish(),
    })
}

/// Streams batches of rows from a task of its own.
pub(crate) fn rows(pool: SqlitePool, ds: DsId, sql: String) -> BoxStream<'static, Result<Vec<SourceRow>>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<SourceRow>>>(8);
    tokio::spawn(async move {
        let mut stream = sqlx::query(&sql).fetch(&pool);
        let mut layout: Option<(Vec<String>, KeyColumns)> = None;
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(item) = stream.next().await {
            let converted = item.map_err(|e| source_err(ds, e)).and_then(|row| {
                if layout.is_none() {
                    let names: Vec<String> = row.columns().iter().map(|c| c.name().to_string()).collect();
                    let key = KeyColumns::find(ds, &names)?;
                    layout = Some((names, key));
                }
                let (names, key) = layout.as_ref().expect("layout set");
                convert(ds, &row, names, *key)
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
