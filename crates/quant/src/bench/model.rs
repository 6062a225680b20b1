//! `dlrm_predict` lines: whole-model predict throughput, on batch-size slices of a real inputs
//! file (multi-hot included) or on synthetic batches with the shape's pooling sizes, at one or
//! more thread counts in the same run.

use std::path::PathBuf;
use std::time::Duration;

use quantrec_data::{Batch, batch_ops};
use quantrec_model::artifact::Artifact;
use quantrec_model::inputs::load_inputs;
use quantrec_model::{Model, Scratch};

use super::line::{Line, ModelExtra, ModelShape};
use super::synthetic;
use super::{BenchRecord, Sink};
use crate::timing::time_median;
use crate::{QuantError, Result};

/// Batches timed per batch size (rotated so that table rows are not all cache-hot, like the peers).
const ROTATION: usize = 8;

/// Which model `bench model` runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelSource {
    /// An artifact.
    Artifact {
        /// The file.
        path: PathBuf,
        /// Copy its tables into memory (huge pages from 2 MiB) instead of running them from the
        /// file mapping.
        tables_in_memory: bool,
    },
    /// A random model with the shapes of `../shared/peers/dlrm_bench.py`: `kaggle` (d=16, bottom
    /// 13-512-256-64-16, top 367-512-256-1, Criteo cardinalities capped at 1M rows) or `mlperf`
    /// (d=128, bottom 13-512-256-128, top 479-1024-1024-512-256-1, capped at 100k rows), or of
    /// `dlrmv2_bench.py`: `dlrmv2` (TorchRec `DLRM_DCN`, d=128, bottom 13-512-256-128, DCN-v2
    /// 3 layers of rank 512 over 3456 features, top 3456-1024-1024-512-256-1, Criteo 1TB
    /// cardinalities capped at 200k rows, MLPerf's multi-hot pooling sizes).
    Synthetic {
        /// `kaggle`, `mlperf` or `dlrmv2`.
        which: String,
        /// `f32`, or `quantized` (dynamic per-tensor int8 MLPs and 4-bit tables: the dlrm repo's
        /// inference recipe that the peer runs).
        plan: String,
    },
}

/// Options of `bench model`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelBenchOptions {
    /// The model.
    pub source: ModelSource,
    /// Batch sizes.
    pub batch: Vec<usize>,
    /// Rayon thread counts, each timed in turn at every batch size (1 = single thread, like the
    /// peers' default).
    pub threads: Vec<usize>,
    /// Time batch-size slices of this inputs file (`dense`, `offsets_T`, `indices_T`, as
    /// `quantrec predict --inputs` reads and `dlrmv2_bench.py --export` writes) instead of
    /// synthetic batches.
    pub inputs: Option<PathBuf>,
    /// Samples per chunk (the model's default when `None`; see `Model::set_chunk_size`).
    pub chunk: Option<usize>,
    /// Shorter timings.
    pub quick: bool,
}

/// A model ready to be timed.
pub struct BenchModel {
    /// The model.
    pub model: Model,
    /// Its name in the lines (the artifact's file stem, or `kaggle-f32` ...).
    pub name: String,
    /// Whether ids are skewed like the peer's (`n·u³`; synthetic models) rather than uniform.
    zipf: bool,
    /// Ids per sample of each table in synthetic batches.
    pooling: Vec<usize>,
    /// The inputs file's batch, when batches are slices of it.
    inputs: Option<(String, Batch)>,
}

/// CPU time of every thread of this process so far (Linux `schedstat`, nanoseconds); `None` elsewhere.
fn process_cpu_seconds() -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 * 1e-9)
}

/// `a×3,b` for runs of equal names.
fn summarize(names: impl Iterator<Item = String>) -> String {
    let mut runs: Vec<(String, usize)> = Vec::new();
    for n in names {
        match runs.last_mut() {
            Some((last, count)) if *last == n => *count += 1,
            _ => runs.push((n, 1)),
        }
    }
    runs.iter()
        .map(|(n, c)| {
            if *c == 1 {
                n.clone()
            } else {
                format!("{n}×{c}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl BenchModel {
    /// Loads or builds the model of `options`, with its chunk size set.
    pub fn open(options: &ModelBenchOptions) -> Result<BenchModel> {
        let (mut model, name, zipf, pooling) = match &options.source {
            ModelSource::Artifact {
                path,
                tables_in_memory,
            } => {
                let mut a = Artifact::load(path)?;
                if *tables_in_memory {
                    a.model.load_tables_into_memory()?;
                }
                let name = path
                    .file_stem()
                    .map_or("model".into(), |s| s.to_string_lossy().to_string());
                let one_hot = vec![1; a.model.config().tables.len()];
                (a.model, name, false, one_hot)
            }
            ModelSource::Synthetic { which, plan } => (
                synthetic::model(which, plan)?,
                format!("{which}-{plan}"),
                true,
                synthetic::pooling_of(which)?,
            ),
        };
        if let Some(chunk) = options.chunk {
            model.set_chunk_size(chunk);
        }
        let inputs = match &options.inputs {
            Some(path) => {
                let batch = load_inputs(path)?.batch;
                if let Some(&b) = options.batch.iter().find(|&&b| b > batch.size || b == 0) {
                    return Err(QuantError::BatchBeyondInputs {
                        batch: b,
                        rows: batch.size,
                        path: path.clone(),
                    });
                }
                let name = path
                    .file_name()
                    .map_or("inputs".into(), |s| s.to_string_lossy().to_string());
                Some((name, batch))
            }
            None => None,
        };
        Ok(BenchModel {
            model,
            name,
            zipf,
            pooling,
            inputs,
        })
    }

    /// The batches timed at batch size `b`: up to [`ROTATION`] consecutive `b`-row slices of the
    /// inputs file, or that many synthetic batches.
    fn batches(&self, b: usize) -> Vec<Batch> {
        let c = self.model.config();
        match &self.inputs {
            Some((_, all)) => (0..(all.size / b).clamp(1, ROTATION))
                .map(|i| batch_ops::slice(all, i * b, (i + 1) * b))
                .collect(),
            None => {
                let rows: Vec<usize> = c.tables.iter().map(|t| t.rows).collect();
                (0..ROTATION as u64)
                    .map(|i| {
                        let seed = 42 + ROTATION as u64 * b as u64 + i;
                        synthetic::batch(b, c.dense_features, &rows, &self.pooling, seed, self.zipf)
                    })
                    .collect()
            }
        }
    }

    /// Times `predict` at every batch size of `options` (a `dlrm_predict` line each).
    pub fn run(&self, options: &ModelBenchOptions, sink: &mut Sink<'_>) -> Result<()> {
        let model = &self.model;
        let plan: Vec<String> = model
            .plan()
            .bottom
            .iter()
            .chain(model.plan().cross.iter().flat_map(|c| [&c.v, &c.w]))
            .chain(&model.plan().top)
            .map(|p| p.short_name())
            .collect();
        let tables = summarize(model.plan().tables.iter().map(|f| f.name().to_string()));
        let layers = summarize(plan.into_iter());
        let pools = options
            .threads
            .iter()
            .map(|&t| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t.max(1))
                    .build()
                    .map(|p| (t.max(1), p))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let inputs = self
            .inputs
            .as_ref()
            .map_or_else(|| "synthetic".to_string(), |(n, _)| n.clone());
        let min_time = Duration::from_millis(if options.quick { 200 } else { 1000 });
        for &b in &options.batch {
            let batches = self.batches(b);
            for (threads, pool) in &pools {
                let (secs, cpu_rate) = pool.install(|| time_model(model, &batches, min_time))?;
                let shape = ModelShape {
                    model: self.name.clone(),
                    batch: b,
                    threads: *threads,
                    chunk: model.chunk_size(),
                };
                let extra = ModelExtra {
                    layers: layers.clone(),
                    tables: tables.clone(),
                    inputs: inputs.clone(),
                    cpu_rate,
                };
                sink.record(BenchRecord::Model(Line::new(
                    quantrec_kernels::Isa::active().name(),
                    "dlrm_predict",
                    shape,
                    secs,
                    b as f64 / secs,
                    "samples/s",
                    extra,
                )))?;
            }
        }
        Ok(())
    }
}

/// Median seconds of one `predict` call rotating over `batches`, and samples per CPU-second of
/// this process (all threads): steadier than wall time on a shared machine; wall time is what
/// compares with the peers.
fn time_model(model: &Model, batches: &[Batch], min_time: Duration) -> Result<(f64, Option<f64>)> {
    let mut scratch = Scratch::new();
    let mut calls = 0usize;
    let cpu0 = process_cpu_seconds();
    model.predict(&batches[0], &mut scratch)?;
    let secs = time_median(min_time, 5, || {
        let batch = &batches[calls % batches.len()];
        calls += 1;
        std::hint::black_box(model.predict(batch, &mut scratch).map(|p| p[0]).ok());
    });
    let cpu_rate = match (cpu0, process_cpu_seconds()) {
        (Some(t0), Some(t1)) if t1 > t0 => {
            Some((calls + 1) as f64 * batches[0].size as f64 / (t1 - t0))
        }
        _ => None,
    };
    Ok((secs, cpu_rate))
}
