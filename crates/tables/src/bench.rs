//! `bench model --tables-redis`: predict throughput and latency with tables in the cluster at
//! several cache sizes, against the same model with its tables in memory, on Zipf-distributed
//! one-hot ids; and the bytes each lookup moves over the wire.
//!
//! Each configuration first runs `warmup` batches (the cache fills), then times `batches` fresh
//! ones (different ids), one `predict` call each: samples/s is `batches × batch / total time`,
//! p50/p99 are over the per-call latencies. The remote predictions of the first timed batch are
//! checked bit for bit against the in-memory ones.

use std::sync::Arc;
use std::time::Instant;

use quantrec_kernels::rng::Rng;
use quantrec_model::{Model, Scratch};
use serde::Serialize;

use crate::cache::Policy;
use crate::remote::RemoteTables;
use crate::store::Store;
use crate::zipf::{Zipf, zipf_batch};
use crate::{Result, TablesError};

/// Options of the benchmark.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteBenchOptions {
    /// The model's name in the store.
    pub model: String,
    /// Samples per call.
    pub batch: usize,
    /// Timed calls per configuration.
    pub batches: usize,
    /// Untimed calls before them.
    pub warmup: usize,
    /// Cache sizes as fractions of the table bytes (0 = no cache).
    pub cache_fractions: Vec<f64>,
    /// Explicit cache sizes in bytes (in addition to the fractions).
    pub cache_bytes: Vec<usize>,
    /// Zipf exponent of the ids.
    pub zipf: f64,
    /// Seed of the ids.
    pub seed: u64,
}

/// One configuration's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RemoteBenchLine {
    /// `in-memory` or `redis`.
    pub tables: String,
    /// Cache bytes (remote only).
    pub cache_bytes: usize,
    /// Cache bytes / table bytes.
    pub cache_fraction: f64,
    /// Samples per call.
    pub batch: usize,
    /// Samples per second.
    pub samples_per_s: f64,
    /// Median latency of a call, ms.
    pub p50_ms: f64,
    /// 99th percentile latency of a call, ms.
    pub p99_ms: f64,
    /// Cache hit ratio over the timed calls (unique rows per call).
    pub hit_ratio: f64,
    /// Ids looked up per call (all tables).
    pub ids_per_call: f64,
    /// Rows read from the cluster per call.
    pub fetched_rows_per_call: f64,
    /// RESP bytes (sent + received) per id looked up.
    pub wire_bytes_per_lookup: f64,
    /// RESP bytes per row read from the cluster.
    pub wire_bytes_per_fetched_row: f64,
}

impl std::fmt::Display for RemoteBenchLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<9} cache {:>10} B ({:>5.1}%)  batch {:>5}  {:>10.0} samples/s  p50 {:>8.3} ms  p99 {:>8.3} ms  hit {:>5.1}%  {:>7.1} wire B/lookup  {:>6.1} wire B/fetched row",
            self.tables,
            self.cache_bytes,
            100.0 * self.cache_fraction,
            self.batch,
            self.samples_per_s,
            self.p50_ms,
            self.p99_ms,
            100.0 * self.hit_ratio,
            self.wire_bytes_per_lookup,
            self.wire_bytes_per_fetched_row,
        )
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Runs `model` (tables in memory) and then the same model on `store`'s copy of its tables at
/// each cache size.
pub fn run_remote_bench(
    model: &Model,
    store: &Store,
    options: &RemoteBenchOptions,
) -> Result<Vec<RemoteBenchLine>> {
    if options.batch == 0 || options.batches == 0 {
        return Err(TablesError::InvalidArgument {
            what: "bench batches".into(),
            reason: "batch size and timed batches must be at least 1".into(),
        });
    }
    let c = model.config();
    let zipfs: Vec<Zipf> = c
        .tables
        .iter()
        .map(|t| Zipf::new(t.rows, options.zipf))
        .collect();
    let mut rng = Rng::new(options.seed);
    let warm: Vec<_> = (0..options.warmup)
        .map(|_| zipf_batch(options.batch, c.dense_features, &zipfs, &mut rng))
        .collect();
    let timed: Vec<_> = (0..options.batches)
        .map(|_| zipf_batch(options.batch, c.dense_features, &zipfs, &mut rng))
        .collect();
    let ids_per_call = timed
        .iter()
        .map(|b| b.sparse.iter().map(|f| f.ids.len()).sum::<usize>())
        .sum::<usize>() as f64
        / timed.len() as f64;
    let table_bytes = model.table_bytes();
    let mut scratch = Scratch::new();
    let reference: Vec<u32> = model
        .predict_logits(&timed[0], &mut scratch)?
        .iter()
        .map(|x| x.to_bits())
        .collect();

    let time = |m: &Model, scratch: &mut Scratch| -> Result<(f64, Vec<f64>)> {
        for b in &warm {
            m.predict(b, scratch)?;
        }
        let mut lat = Vec::with_capacity(timed.len());
        let t0 = Instant::now();
        for b in &timed {
            let t = Instant::now();
            m.predict(b, scratch)?;
            lat.push(t.elapsed().as_secs_f64());
        }
        let total = t0.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        Ok((total, lat))
    };
    let line = |tables: &str, cache: usize, total: f64, lat: &[f64]| RemoteBenchLine {
        tables: tables.into(),
        cache_bytes: cache,
        cache_fraction: cache as f64 / table_bytes.max(1) as f64,
        batch: options.batch,
        samples_per_s: (timed.len() * options.batch) as f64 / total,
        p50_ms: 1e3 * percentile(lat, 0.5),
        p99_ms: 1e3 * percentile(lat, 0.99),
        hit_ratio: 1.0,
        ids_per_call,
        fetched_rows_per_call: 0.0,
        wire_bytes_per_lookup: 0.0,
        wire_bytes_per_fetched_row: 0.0,
    };

    let mut lines = Vec::new();
    let (total, lat) = time(model, &mut scratch)?;
    lines.push(line("in-memory", 0, total, &lat));

    let mut sizes: Vec<usize> = options
        .cache_fractions
        .iter()
        .map(|f| (f * table_bytes as f64) as usize)
        .chain(options.cache_bytes.iter().copied())
        .collect();
    sizes.dedup();
    for cache in sizes {
        let tables = Arc::new(RemoteTables::open(
            store.clone(),
            &options.model,
            cache,
            Policy::WTinyLfu,
        )?);
        let mut remote = model.clone();
        remote.set_row_source(tables.clone())?;
        let got: Vec<u32> = remote
            .predict_logits(&timed[0], &mut scratch)?
            .iter()
            .map(|x| x.to_bits())
            .collect();
        if got != reference {
            return Err(TablesError::InvalidArgument {
                what: "remote tables".into(),
                reason:
                    "predictions differ from the in-memory model's (the store holds other tables)"
                        .into(),
            });
        }
        for b in &warm {
            remote.predict(b, &mut scratch)?;
        }
        let m = tables.metrics();
        let count = |r: &str| m.lookups.with_label_values(&[r]).get();
        let wire = || {
            m.wire_bytes.with_label_values(&["sent"]).get()
                + m.wire_bytes.with_label_values(&["received"]).get()
        };
        let (h0, m0, w0, f0) = (count("hit"), count("miss"), wire(), m.fetched_rows.get());
        let mut lat = Vec::with_capacity(timed.len());
        let t0 = Instant::now();
        for b in &timed {
            let t = Instant::now();
            remote.predict(b, &mut scratch)?;
            lat.push(t.elapsed().as_secs_f64());
        }
        let total = t0.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        let (hits, misses) = (count("hit") - h0, count("miss") - m0);
        let fetched = (m.fetched_rows.get() - f0) as f64;
        let wire_bytes = (wire() - w0) as f64;
        let mut l = line("redis", cache, total, &lat);
        l.hit_ratio = hits as f64 / (hits + misses).max(1) as f64;
        l.fetched_rows_per_call = fetched / timed.len() as f64;
        l.wire_bytes_per_lookup = wire_bytes / (ids_per_call * timed.len() as f64);
        l.wire_bytes_per_fetched_row = wire_bytes / fetched.max(1.0);
        lines.push(l);
    }
    Ok(lines)
}
