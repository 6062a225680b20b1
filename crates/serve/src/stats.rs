//! Triton-style per-version inference statistics (`/v2/models/stats`, the ModelStatistics RPC).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// A count and a total duration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Duration2 {
    /// Number of events.
    pub count: u64,
    /// Their total duration in nanoseconds.
    pub ns: u64,
}

#[derive(Debug, Default)]
struct Counter {
    count: AtomicU64,
    ns: AtomicU64,
}

impl Counter {
    fn add(&self, d: Duration) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.ns.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }
    fn get(&self) -> Duration2 {
        Duration2 {
            count: self.count.load(Ordering::Relaxed),
            ns: self.ns.load(Ordering::Relaxed),
        }
    }
}

/// Live counters of one model version (updated by the batcher and the protocol handlers).
#[derive(Debug, Default)]
pub struct VersionStats {
    inference_count: AtomicU64,
    execution_count: AtomicU64,
    last_inference_ms: AtomicU64,
    success: Counter,
    fail: Counter,
    queue: Counter,
    compute: Counter,
    batches: Mutex<BTreeMap<u64, (u64, u64)>>,
}

/// A snapshot of [`VersionStats`], shaped like Triton's `ModelStatistics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// Requested rows inferred (padding excluded).
    pub inference_count: u64,
    /// Model calls.
    pub execution_count: u64,
    /// Milliseconds since the epoch of the last model call (0: none).
    pub last_inference: u64,
    /// Successful requests and their total latency.
    pub success: Duration2,
    /// Failed requests.
    pub fail: Duration2,
    /// Time in the queue.
    pub queue: Duration2,
    /// Model calls' compute time.
    pub compute_infer: Duration2,
    /// Per model-call size (merged and padded): `(rows, calls, total compute ns)`.
    pub batch_stats: Vec<(u64, u64, u64)>,
}

impl VersionStats {
    /// Records one model call computing `rows` requested rows in a call of `call_rows` rows
    /// (after padding).
    pub fn batch(&self, rows: usize, call_rows: usize, compute: Duration, queued: &[Duration]) {
        self.inference_count
            .fetch_add(rows as u64, Ordering::Relaxed);
        self.execution_count.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.last_inference_ms.store(now, Ordering::Relaxed);
        self.compute.add(compute);
        for q in queued {
            self.queue.add(*q);
        }
        let mut b = self.batches.lock().expect("stats lock");
        let e = b.entry(call_rows as u64).or_default();
        e.0 += 1;
        e.1 += compute.as_nanos() as u64;
    }

    /// Records an answered request.
    pub fn request(&self, ok: bool, latency: Duration) {
        if ok {
            self.success.add(latency);
        } else {
            self.fail.add(latency);
        }
    }

    /// The current values.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            inference_count: self.inference_count.load(Ordering::Relaxed),
            execution_count: self.execution_count.load(Ordering::Relaxed),
            last_inference: self.last_inference_ms.load(Ordering::Relaxed),
            success: self.success.get(),
            fail: self.fail.get(),
            queue: self.queue.get(),
            compute_infer: self.compute.get(),
            batch_stats: self
                .batches
                .lock()
                .expect("stats lock")
                .iter()
                .map(|(&s, &(c, ns))| (s, c, ns))
                .collect(),
        }
    }
}

impl StatsSnapshot {
    /// Triton's JSON `model_stats` entry.
    pub fn to_json(&self, name: &str, version: u64) -> serde_json::Value {
        let d = |x: Duration2| serde_json::json!({"count": x.count, "ns": x.ns});
        serde_json::json!({
            "name": name,
            "version": version.to_string(),
            "last_inference": self.last_inference,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {
                "success": d(self.success),
                "fail": d(self.fail),
                "queue": d(self.queue),
                "compute_input": d(Duration2::default()),
                "compute_infer": d(self.compute_infer),
                "compute_output": d(Duration2::default()),
                "cache_hit": d(Duration2::default()),
                "cache_miss": d(Duration2::default()),
            },
            "batch_stats": self.batch_stats.iter().map(|&(size, count, ns)| serde_json::json!({
                "batch_size": size,
                "compute_input": d(Duration2::default()),
                "compute_infer": d(Duration2 { count, ns }),
                "compute_output": d(Duration2::default()),
            })).collect::<Vec<_>>(),
        })
    }
}
