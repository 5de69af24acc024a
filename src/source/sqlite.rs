//! Streaming a datasource's rows from SQLite.

use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Column, Row, TypeInfo, ValueRef};

use super::group::{GroupAcc, GroupChunk};
use super::json::{RowWriter, Val};
use super::{KeyColumns, source_err};
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

fn append(
    ds: DsId,
    row: &SqliteRow,
    names: &[String],
    key: KeyColumns,
    acc: &mut GroupAcc,
) -> Result<()> {
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
    let json = w.finish();
    let target = acc.target([
        k[0].as_deref(),
        k[1].as_deref(),
        k[2].as_deref(),
        k[3].as_deref(),
    ])?;
    target.push_str(&json);
    let n = target.len();
    acc.written(n);
    Ok(())
}

/// Streams chunks of grouped rows from a task of its own.
pub(crate) fn rows(
    pool: SqlitePool,
    ds: DsId,
    sql: String,
    budget: usize,
) -> BoxStream<'static, Result<GroupChunk>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<GroupChunk>>(1);
    tokio::spawn(async move {
        let mut stream = sqlx::query(&sql).fetch(&pool);
        let mut layout: Option<(Vec<String>, KeyColumns)> = None;
        let mut acc = GroupAcc::new(ds, budget);
        while let Some(item) = stream.next().await {
            let done = item
                .map_err(|e| super::explain(ds, None, e))
                .and_then(|row| {
                    if layout.is_none() {
                        let names: Vec<String> =
                            row.columns().iter().map(|c| c.name().to_string()).collect();
                        let key = KeyColumns::find(ds, &names)?;
                        layout = Some((names, key));
                    }
                    let (names, key) = layout.as_ref().expect("layout set");
                    append(ds, &row, names, *key, &mut acc)
                });
            if let Err(e) = done {
                let _ = tx.send(Err(e)).await;
                return;
            }
            if acc.full() && tx.send(Ok(acc.take())).await.is_err() {
                return;
            }
        }
        if !acc.is_empty() {
            let _ = tx.send(Ok(acc.take())).await;
        }
    });
    super::receiver_stream(rx)
}
