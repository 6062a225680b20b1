//! The demo's throughput stage: samples/s and median latency of `predict` for every model at
//! batch 1, 64 and 1024 on 1 and 2 threads.

use std::time::Duration;

use quantrec_data::{Batch, batch_ops};
use quantrec_model::{Model, Scratch};
use serde::Serialize;

use super::Story;
use crate::Result;
use crate::eval::EvalSet;
use crate::timing::time_median;

/// One measured (model, batch, threads) point.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThroughputRow {
    /// The model's name in the report (`f32`, `quantized`, `q-latency`).
    pub model: String,
    /// Samples per call.
    pub batch: usize,
    /// Rayon threads.
    pub threads: usize,
    /// Samples per second (batch / median call time).
    pub samples_per_second: f64,
    /// Median call time in µs.
    pub latency_p50_us: f64,
}

/// Batch sizes measured.
pub const BATCHES: [usize; 3] = [1, 64, 1024];
/// Thread counts measured.
pub const THREADS: [usize; 2] = [1, 2];

/// All rows of `eval` in one batch.
fn concat(eval: &EvalSet) -> Result<Batch> {
    let mut all = eval.batches[0].clone();
    for b in &eval.batches[1..] {
        batch_ops::append(&mut all, b)?;
    }
    Ok(all)
}

/// Measures every model of `models` (name, model) on slices of `eval`, telling each row.
pub fn bench_predict(
    models: &[(&str, &Model)],
    eval: &EvalSet,
    quick: bool,
    story: &mut Story<'_>,
) -> Result<Vec<ThroughputRow>> {
    let all = concat(eval)?;
    let min_time = Duration::from_millis(if quick { 150 } else { 400 });
    let mut rows = Vec::new();
    story.line(format!(
        "{:<10} {:>7} {:>7} {:>14} {:>14}",
        "model", "batch", "threads", "samples/s", "p50 latency"
    ));
    for threads in THREADS {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        for batch in BATCHES {
            if batch > all.size {
                continue;
            }
            // Eight different slices in rotation, so table rows are not all cache-hot.
            let slices: Vec<Batch> = (0..8)
                .map(|i| {
                    let start = (i * 7919 * batch) % (all.size - batch + 1);
                    batch_ops::slice(&all, start, start + batch)
                })
                .collect();
            for &(name, model) in models {
                let secs = pool.install(|| median_call(model, &slices, min_time))?;
                let rate = batch as f64 / secs;
                story.line(format!(
                    "{name:<10} {batch:>7} {threads:>7} {rate:>14.0} {:>11.1} µs",
                    secs * 1e6
                ));
                rows.push(ThroughputRow {
                    model: name.to_string(),
                    batch,
                    threads,
                    samples_per_second: rate,
                    latency_p50_us: secs * 1e6,
                });
            }
        }
    }
    Ok(rows)
}

/// Median seconds of one `predict` call, rotating over `slices`.
fn median_call(model: &Model, slices: &[Batch], min_time: Duration) -> Result<f64> {
    let mut scratch = Scratch::new();
    let mut i = 0;
    let mut failure = None;
    let secs = time_median(min_time, 10, || {
        if let Err(e) = model.predict(&slices[i % slices.len()], &mut scratch) {
            failure.get_or_insert(e);
        }
        i += 1;
    });
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(secs),
    }
}
