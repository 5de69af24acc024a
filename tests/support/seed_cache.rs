//! A cache as the seed's application writes it (`analytics-cache-v2.ts`,
//! the key format of `seed-plan.md`), not by cachedeck: entry strings
//! `cache:{ds:N}:m:<m>:p:<p>:prov:<prov>:freq:<f>`, the master set
//! `idx:{ds:N}:master`, the three secondary index kinds and
//! `cache:meta:{ds:N}:last_warm`, but no meta hash and no index list.
//!
//! Its shape is fixed: 3 measures × 2 frequencies × 8 practices × 5
//! providers (4 numeric ones and a NULL) = 240 entries, 6 + 48 + 30 = 84
//! secondary indexes.

use cachedeck::redis_conn::Redis;

/// Measures written.
pub const SEED_MEASURES: [&str; 3] = ["Charges", "Payments", "Adjustments"];
/// Frequencies written.
pub const SEED_FREQUENCIES: [&str; 2] = ["Monthly", "Weekly"];
/// Practices written (ids 114…121).
pub const SEED_PRACTICES: u32 = 8;
/// Non-NULL providers written (5…8), plus one NULL.
pub const SEED_PROVIDERS: u32 = 4;
/// Entries written.
pub const SEED_ENTRIES: u64 = 240;
/// Secondary indexes written.
pub const SEED_INDEXES: u64 = 6 + 48 + 30;

/// How one seed cache is written.
pub struct SeedCache<'a> {
    /// The datasource id.
    pub ds: i64,
    /// The value of `cache:meta:{ds:N}:last_warm`; `None` writes no such key.
    pub last_warm: Option<String>,
    /// Remaining time to live of every key, ms.
    pub remaining_ms: i64,
    /// How a NULL provider is written, used in turn (`null`, `NULL`, ``, `%N`).
    pub null_forms: &'a [&'a str],
    /// Measures to write (a prefix of [`SEED_MEASURES`] or others).
    pub measures: &'a [&'a str],
}

impl SeedCache<'_> {
    /// The standard 240-entry cache of `ds`.
    pub fn standard(ds: i64, last_warm: Option<String>, remaining_ms: i64) -> SeedCache<'static> {
        SeedCache {
            ds,
            last_warm,
            remaining_ms,
            null_forms: &["null"],
            measures: &SEED_MEASURES,
        }
    }

    /// Writes it with one pipeline (every key is in the `{ds:N}` slot).
    pub async fn write(&self, redis: &Redis) {
        let ds = self.ds;
        let master = format!("idx:{{ds:{ds}}}:master");
        let ttl = self.remaining_ms;
        let mut p = redis::pipe();
        let mut n = 0usize;
        for m in self.measures {
            for f in SEED_FREQUENCIES {
                for practice in 114..114 + SEED_PRACTICES {
                    for prov in 0..=SEED_PROVIDERS {
                        let prov = if prov == SEED_PROVIDERS {
                            let form = self.null_forms[n % self.null_forms.len()];
                            n += 1;
                            form.to_string()
                        } else {
                            (5 + prov).to_string()
                        };
                        let key =
                            format!("cache:{{ds:{ds}}}:m:{m}:p:{practice}:prov:{prov}:freq:{f}");
                        let rows = serde_json::json!([{
                            "measure": m, "practice_uid": practice, "provider_uid": prov,
                            "frequency": f, "date_index": "2025-10-01", "measure_value": 1234.5,
                            "note": "x".repeat(200),
                        }]);
                        p.cmd("SET")
                            .arg(&key)
                            .arg(rows.to_string())
                            .arg("PX")
                            .arg(ttl)
                            .ignore();
                        p.cmd("SADD").arg(&master).arg(&key).ignore();
                        for idx in [
                            format!("idx:{{ds:{ds}}}:m:{m}:freq:{f}"),
                            format!("idx:{{ds:{ds}}}:m:{m}:p:{practice}:freq:{f}"),
                            format!("idx:{{ds:{ds}}}:m:{m}:prov:{prov}:freq:{f}"),
                        ] {
                            p.cmd("SADD").arg(&idx).arg(&key).ignore();
                            p.cmd("PEXPIRE").arg(&idx).arg(ttl).ignore();
                        }
                    }
                }
            }
        }
        p.cmd("PEXPIRE").arg(&master).arg(ttl).ignore();
        if let Some(lw) = &self.last_warm {
            p.cmd("SET")
                .arg(format!("cache:meta:{{ds:{ds}}}:last_warm"))
                .arg(lw)
                .ignore();
        }
        let () = redis
            .pipe("writing a seed-format cache", &p)
            .await
            .expect("write the seed cache");
    }
}
