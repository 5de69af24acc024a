//! A realistic demo analytics table: measures, hundreds of practices with their
//! providers (and practice-level rows with no provider), Monthly, Weekly and
//! Quarterly periods, plausible amounts. Written with COPY on Postgres and
//! multi-row INSERTs in transactions on SQLite.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use sqlx::postgres::PgPoolCopyExt;

use crate::error::{Error, Result};

/// Measures and the typical size of one period's amount.
const MEASURES: [(&str, f64); 8] = [
    ("Charges", 42_000.0),
    ("Payments", 35_000.0),
    ("Adjustments", 4_000.0),
    ("Refunds", 900.0),
    ("Write-offs", 2_500.0),
    ("Visits", 310.0),
    ("New Patients", 45.0),
    ("No-shows", 18.0),
];

/// Frequencies with the number of periods generated and the period length.
const FREQUENCIES: [(&str, u32); 3] = [("Monthly", 24), ("Weekly", 52), ("Quarterly", 8)];

/// Columns of the demo table, in COPY order.
pub const COLUMNS: &str =
    "measure, practice_uid, provider_uid, frequency, period_start, amount, visit_count, updated_at";

/// What was written.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoSummary {
    pub table: String,
    pub rows: u64,
    pub practices: u64,
    pub groups: u64,
    pub duration_ms: u64,
}

/// Checks a table name is a plain identifier (it is put into SQL).
pub fn check_table_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "`{name}` is not a plain table name (lower-case letters, digits, _)"
        )))
    }
}

/// The SQL of a datasource reading the demo table, optionally only some measures.
pub fn datasource_sql(table: &str, measures: Option<&[&str]>) -> String {
    let filter = measures
        .map(|m| {
            let list: Vec<String> = m
                .iter()
                .map(|x| format!("'{}'", x.replace('\'', "''")))
                .collect();
            format!(" WHERE measure IN ({})", list.join(", "))
        })
        .unwrap_or_default();
    format!("SELECT {COLUMNS} FROM {table}{filter}")
}

/// One generated row.
struct DemoRow {
    measure: &'static str,
    practice: u64,
    provider: Option<u64>,
    frequency: &'static str,
    period_start: chrono::NaiveDate,
    amount: f64,
    visits: i64,
}

/// Generates rows in group order until `rows` are made.
struct Generator {
    rng: StdRng,
    left: u64,
    practices: u64,
    groups: u64,
}

impl Generator {
    fn new(rows: u64, seed: u64) -> Self {
        Generator {
            rng: StdRng::seed_from_u64(seed),
            left: rows,
            practices: 0,
            groups: 0,
        }
    }

    /// Calls `emit` for every row, practice by practice.
    fn run(&mut self, mut emit: impl FnMut(&DemoRow) -> Result<()>) -> Result<()> {
        let base = chrono::NaiveDate::from_ymd_opt(2023, 1, 1).expect("valid date");
        while self.left > 0 {
            self.practices += 1;
            let practice = 100 + self.practices;
            let scale = self.rng.random_range(0.4..2.5);
            let n_prov = self.rng.random_range(2..=6u64);
            let providers: Vec<Option<u64>> = std::iter::once(None)
                .chain((1..=n_prov).map(|k| Some(practice * 100 + k)))
                .collect();
            for (measure, size) in MEASURES {
                for &provider in &providers {
                    for (frequency, periods) in FREQUENCIES {
                        if self.left == 0 {
                            return Ok(());
                        }
                        self.groups += 1;
                        let share = if provider.is_some() {
                            1.0 / n_prov as f64
                        } else {
                            1.0
                        };
                        let per = match frequency {
                            "Weekly" => 12.0 / 52.0,
                            "Quarterly" => 3.0,
                            _ => 1.0,
                        };
                        for i in 0..periods {
                            if self.left == 0 {
                                return Ok(());
                            }
                            self.left -= 1;
                            let period_start = match frequency {
                                "Weekly" => base + chrono::Duration::weeks(i.into()),
                                "Quarterly" => base
                                    .checked_add_months(chrono::Months::new(3 * i))
                                    .unwrap_or(base),
                                _ => base
                                    .checked_add_months(chrono::Months::new(i))
                                    .unwrap_or(base),
                            };
                            let noise: f64 = self.rng.random_range(0.75..1.25);
                            let amount =
                                (size * scale * share * per * noise * 100.0).round() / 100.0;
                            let visits = (310.0 * scale * share * per * noise).round() as i64;
                            emit(&DemoRow {
                                measure,
                                practice,
                                provider,
                                frequency,
                                period_start,
                                amount,
                                visits,
                            })?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn copy_line(r: &DemoRow, updated: &str, out: &mut String) {
    use std::fmt::Write as _;
    let prov = r
        .provider
        .map(|p| p.to_string())
        .unwrap_or_else(|| "\\N".into());
    let _ = writeln!(
        out,
        "{}\t{}\t{}\t{}\t{}\t{:.2}\t{}\t{}",
        r.measure, r.practice, prov, r.frequency, r.period_start, r.amount, r.visits, updated
    );
}

/// Creates `table` in the database at `url` with `rows` rows. An existing
/// table is refused unless `replace`.
pub async fn create(url: &str, table: &str, rows: u64, replace: bool) -> Result<DemoSummary> {
    check_table_name(table)?;
    let started = std::time::Instant::now();
    let updated = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut generator = Generator::new(rows, 20251015);
    let source = super::Writable::open(url).await?;
    let ctx = |e: sqlx::Error| Error::db(format!("writing demo table {table}"), e);
    match &source {
        super::Writable::Pg(pool) => {
            if replace {
                sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
                    .execute(pool)
                    .await
                    .map_err(ctx)?;
            }
            sqlx::query(&format!(
                "CREATE TABLE {table} (measure TEXT NOT NULL, practice_uid INTEGER NOT NULL, provider_uid INTEGER, \
                 frequency TEXT NOT NULL, period_start DATE NOT NULL, amount NUMERIC(14,2) NOT NULL, \
                 visit_count INTEGER NOT NULL, updated_at TIMESTAMPTZ NOT NULL)"
            ))
            .execute(pool)
            .await
            .map_err(|e| exists_or(e, table, ctx))?;
            let mut copy = pool
                .copy_in_raw(&format!("COPY {table} ({COLUMNS}) FROM STDIN"))
                .await
                .map_err(ctx)?;
            // Generate on a blocking thread and stream 1 MiB chunks: memory stays
            // bounded whatever the row count.
            let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4);
            let upd = updated.clone();
            let gen_task = tokio::task::spawn_blocking(move || {
                let mut buf = String::with_capacity(1 << 20);
                let res = generator.run(|r| {
                    copy_line(r, &upd, &mut buf);
                    if buf.len() > (1 << 20) - 200 {
                        let chunk = std::mem::replace(&mut buf, String::with_capacity(1 << 20));
                        tx.blocking_send(chunk).map_err(|_| Error::Cancelled)?;
                    }
                    Ok(())
                });
                let _ = tx.blocking_send(buf);
                res.map(|()| generator)
            });
            while let Some(c) = rx.recv().await {
                copy.send(c.into_bytes()).await.map_err(ctx)?;
            }
            generator = gen_task
                .await
                .map_err(|e| Error::Invalid(format!("demo generator stopped: {e}")))??;
            copy.finish().await.map_err(ctx)?;
            sqlx::query(&format!("ANALYZE {table}"))
                .execute(pool)
                .await
                .map_err(ctx)?;
        }
        super::Writable::Lite(pool) => {
            if replace {
                sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
                    .execute(pool)
                    .await
                    .map_err(ctx)?;
            }
            sqlx::query(&format!(
                "CREATE TABLE {table} (measure TEXT NOT NULL, practice_uid INTEGER NOT NULL, provider_uid INTEGER, \
                 frequency TEXT NOT NULL, period_start TEXT NOT NULL, amount REAL NOT NULL, \
                 visit_count INTEGER NOT NULL, updated_at TEXT NOT NULL)"
            ))
            .execute(pool)
            .await
            .map_err(|e| exists_or(e, table, ctx))?;
            type Pending = (String, u64, Option<u64>, String, String, f64, i64);
            let (btx, mut brx) = tokio::sync::mpsc::channel::<Vec<Pending>>(8);
            let gen_task = tokio::task::spawn_blocking(move || {
                let mut pending: Vec<Pending> = Vec::with_capacity(400);
                let res = generator.run(|r| {
                    pending.push((
                        r.measure.to_string(),
                        r.practice,
                        r.provider,
                        r.frequency.to_string(),
                        r.period_start.to_string(),
                        r.amount,
                        r.visits,
                    ));
                    if pending.len() == 400 {
                        btx.blocking_send(std::mem::take(&mut pending))
                            .map_err(|_| Error::Cancelled)?;
                    }
                    Ok(())
                });
                let _ = btx.blocking_send(pending);
                res.map(|()| generator)
            });
            let mut tx = pool.begin().await.map_err(ctx)?;
            let mut n = 0usize;
            while let Some(b) = brx.recv().await {
                n += 1;
                if b.is_empty() {
                    continue;
                }
                let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
                    "INSERT INTO {table} ({COLUMNS}) "
                ));
                qb.push_values(b, |mut row, v| {
                    row.push_bind(v.0)
                        .push_bind(v.1 as i64)
                        .push_bind(v.2.map(|p| p as i64))
                        .push_bind(v.3)
                        .push_bind(v.4)
                        .push_bind(v.5)
                        .push_bind(v.6)
                        .push_bind(updated.clone());
                });
                qb.build().execute(&mut *tx).await.map_err(ctx)?;
                if n.is_multiple_of(50) {
                    tx.commit().await.map_err(ctx)?;
                    tx = pool.begin().await.map_err(ctx)?;
                }
            }
            tx.commit().await.map_err(ctx)?;
            generator = gen_task
                .await
                .map_err(|e| Error::Invalid(format!("demo generator stopped: {e}")))??;
        }
    }
    source.close().await;
    Ok(DemoSummary {
        table: table.to_string(),
        rows,
        practices: generator.practices,
        groups: generator.groups,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

fn exists_or(e: sqlx::Error, table: &str, ctx: impl Fn(sqlx::Error) -> Error) -> Error {
    let msg = e.to_string();
    if msg.contains("already exists") {
        Error::Invalid(format!(
            "table {table} exists already (pass --replace to recreate it)"
        ))
    } else {
        ctx(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_makes_exactly_the_rows_asked() {
        let mut g = Generator::new(10_000, 1);
        let mut n = 0;
        g.run(|_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 10_000);
        assert!(g.practices >= 2);
    }

    #[test]
    fn table_names_are_checked() {
        assert!(check_table_name("analytics_demo").is_ok());
        assert!(check_table_name("x; drop table y").is_err());
    }
}
