//! What the benchmarks watch beside the work they time: this process's
//! resident memory, and the latency another Redis client sees.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::redis_conn::Redis;

/// This process's resident set size in MB (0 where /proc is missing).
pub(crate) fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// A task sampling [`rss_mb`] until finished, keeping the highest figure.
pub(crate) struct RssPeak {
    /// Highest RSS seen so far, in KiB (an integer so it fits an atomic).
    peak_kib: Arc<AtomicU64>,
    /// Cleared to stop the sampling task.
    sampling: Arc<AtomicBool>,
    /// The sampling task, awaited by `finish` so its last sample counts.
    task: tokio::task::JoinHandle<()>,
}

impl RssPeak {
    /// Starts sampling every `every`; the figure at start counts too.
    pub(crate) fn start(every: Duration) -> RssPeak {
        let peak_kib = Arc::new(AtomicU64::new((rss_mb() * 1024.0) as u64));
        let sampling = Arc::new(AtomicBool::new(true));
        let task = {
            let (peak, sampling) = (peak_kib.clone(), sampling.clone());
            tokio::spawn(async move {
                while sampling.load(Ordering::Relaxed) {
                    peak.fetch_max((rss_mb() * 1024.0) as u64, Ordering::Relaxed);
                    tokio::time::sleep(every).await;
                }
            })
        };
        RssPeak {
            peak_kib,
            sampling,
            task,
        }
    }

    /// Stops sampling; the peak in MB.
    pub(crate) async fn finish(self) -> f64 {
        self.sampling.store(false, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

/// A PING loop on its own connection, recording when each PING was sent and
/// how long it took.
pub(crate) struct PingLoop {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<(Instant, Duration)>>,
}

impl PingLoop {
    pub(crate) async fn start(redis: &Redis) -> Result<PingLoop> {
        let mut node = redis
            .masters()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Invalid("no Redis node".into()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let t = Instant::now();
                let _: redis::RedisResult<String> =
                    redis::cmd("PING").query_async(&mut node.conn).await;
                samples.push((t, t.elapsed()));
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            samples
        });
        Ok(PingLoop { stop, task })
    }

    /// Stops the loop; the worst latency (ms) of PINGs that overlapped `window`.
    pub(crate) async fn finish(self, window: (Instant, Instant)) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.task.await.unwrap_or_default();
        samples
            .iter()
            .filter(|(sent, took)| *sent <= window.1 && *sent + *took >= window.0)
            .map(|(_, took)| took.as_secs_f64() * 1000.0)
            .fold(0.0, f64::max)
    }
}
