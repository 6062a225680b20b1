//! Prometheus metrics of the remote tables (register them in the server's registry with
//! [`TablesMetrics::register`]):
//!
//! - `quantrec_tables_lookups_total{result="hit"|"miss"}`: unique rows asked of the cache.
//! - `quantrec_tables_cache_bytes`, `quantrec_tables_cache_rows`: what the cache holds.
//! - `quantrec_tables_cache_capacity_bytes`.
//! - `quantrec_tables_fetch_seconds`: latency of one model call's fetch from the cluster.
//! - `quantrec_tables_fetched_rows_total`: rows read from the cluster.
//! - `quantrec_tables_wire_bytes_total{direction="sent"|"received"}`: RESP bytes of the row
//!   fetches (commands sent, replies received).
//! - `quantrec_tables_fetch_errors_total{kind="timeout"|"redis"|"data"}`: failed fetches.

use prometheus::core::Collector;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::Result;

/// The remote tables' metric families.
#[derive(Clone, Debug)]
pub struct TablesMetrics {
    /// Cache lookups by result.
    pub lookups: IntCounterVec,
    /// Bytes held by the cache.
    pub cache_bytes: IntGauge,
    /// Rows held by the cache.
    pub cache_rows: IntGauge,
    /// Capacity of the cache.
    pub cache_capacity: IntGauge,
    /// Fetch latency.
    pub fetch_seconds: Histogram,
    /// Rows read from the cluster.
    pub fetched_rows: IntCounter,
    /// Wire bytes by direction.
    pub wire_bytes: IntCounterVec,
    /// Failed fetches by kind.
    pub errors: IntCounterVec,
}

impl Default for TablesMetrics {
    fn default() -> Self {
        TablesMetrics::new()
    }
}

fn must<T>(r: prometheus::Result<T>) -> T {
    // Names, labels and buckets are constants of this file: a failure is a bug here.
    r.unwrap_or_else(|e| panic!("constant metric definition refused: {e}"))
}

impl TablesMetrics {
    /// Fresh metrics, all zero, registered nowhere yet.
    pub fn new() -> TablesMetrics {
        let counter_vec = |name: &str, help: &str, label: &str| {
            must(IntCounterVec::new(Opts::new(name, help), &[label]))
        };
        TablesMetrics {
            lookups: counter_vec(
                "quantrec_tables_lookups_total",
                "Unique rows looked up in the hot-row cache",
                "result",
            ),
            cache_bytes: must(IntGauge::new(
                "quantrec_tables_cache_bytes",
                "Bytes held by the hot-row cache (rows plus per-entry overhead)",
            )),
            cache_rows: must(IntGauge::new(
                "quantrec_tables_cache_rows",
                "Rows held by the hot-row cache",
            )),
            cache_capacity: must(IntGauge::new(
                "quantrec_tables_cache_capacity_bytes",
                "Capacity of the hot-row cache",
            )),
            fetch_seconds: must(Histogram::with_opts(
                HistogramOpts::new(
                    "quantrec_tables_fetch_seconds",
                    "Latency of fetching one batch's missing rows from the cluster",
                )
                .buckets(must(prometheus::exponential_buckets(50e-6, 2.0, 17))),
            )),
            fetched_rows: must(IntCounter::new(
                "quantrec_tables_fetched_rows_total",
                "Rows read from the cluster",
            )),
            wire_bytes: counter_vec(
                "quantrec_tables_wire_bytes_total",
                "RESP bytes of row fetches",
                "direction",
            ),
            errors: counter_vec(
                "quantrec_tables_fetch_errors_total",
                "Failed row fetches",
                "kind",
            ),
        }
    }

    pub(crate) fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.lookups.clone()),
            Box::new(self.cache_bytes.clone()),
            Box::new(self.cache_rows.clone()),
            Box::new(self.cache_capacity.clone()),
            Box::new(self.fetch_seconds.clone()),
            Box::new(self.fetched_rows.clone()),
            Box::new(self.wire_bytes.clone()),
            Box::new(self.errors.clone()),
        ]
    }

    /// Registers every family in `registry` (an error if one is registered there already).
    pub fn register(&self, registry: &Registry) -> Result<()> {
        for c in self.collectors() {
            registry.register(c)?;
        }
        Ok(())
    }

    /// Hit ratio so far (`None` before the first lookup).
    pub fn hit_ratio(&self) -> Option<f64> {
        let hits = self.lookups.with_label_values(&["hit"]).get();
        let misses = self.lookups.with_label_values(&["miss"]).get();
        (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_register_and_render() {
        let m = TablesMetrics::new();
        let r = Registry::new();
        m.register(&r).unwrap();
        assert!(m.register(&r).is_err(), "registered twice");
        m.lookups.with_label_values(&["hit"]).inc_by(3);
        m.lookups.with_label_values(&["miss"]).inc();
        assert_eq!(m.hit_ratio(), Some(0.75));
        let names: Vec<String> = r.gather().iter().map(|f| f.name().to_string()).collect();
        assert!(names.contains(&"quantrec_tables_lookups_total".to_string()));
        assert!(names.contains(&"quantrec_tables_fetch_seconds".to_string()));
    }
}
