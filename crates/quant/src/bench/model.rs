//! `dlrm_predict` lines: whole-model predict throughput on synthetic one-hot batches.

use std::path::PathBuf;
use std::time::Duration;

use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::formats::TableFormat;
use quantrec_kernels::rng::Rng;
use quantrec_model::artifact::Artifact;
use quantrec_model::config::{DotOrder, Interaction, Naming, PoolingMode, TableConfig};
use quantrec_model::plan::ActivationPlan;
use quantrec_model::weights::{Linear, TableData};
use quantrec_model::{LayerPrecision, Model, ModelConfig, Plan, Scratch, Weights};

use super::line::{Line, ModelExtra, ModelShape};
use super::{BenchRecord, Sink};
use crate::timing::time_median;
use crate::{QuantError, Result};

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
    /// (d=128, bottom 13-512-256-128, top 479-1024-1024-512-256-1, capped at 100k rows).
    Synthetic {
        /// `kaggle` or `mlperf`.
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
    /// Rayon threads for batch-parallel chunks (1 = single thread, like the peers' default).
    pub threads: usize,
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
}

/// A batch of `size` samples: dense values `log1p(100·u)`, one id per table, uniform or (`zipf`)
/// skewed like the peer's `n·u³`.
fn synthetic(size: usize, n_dense: usize, rows: &[usize], seed: u64, zipf: bool) -> Batch {
    let mut rng = Rng::new(seed);
    let dense = (0..size * n_dense)
        .map(|_| (100.0 * rng.uniform_f32(0.0, 1.0)).ln_1p())
        .collect();
    let sparse = rows
        .iter()
        .map(|&r| {
            let ids = (0..size)
                .map(|_| {
                    let u = rng.uniform();
                    let x = if zipf { u * u * u } else { u };
                    ((r as f64 * x) as i64).min(r as i64 - 1)
                })
                .collect();
            SparseFeature::one_hot(ids)
        })
        .collect();
    Batch {
        size,
        n_dense,
        dense,
        sparse,
        labels: None,
    }
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

/// Criteo Kaggle cardinalities (as in the peer).
const KAGGLE: [usize; 26] = [
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27, 14992,
    5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
];

/// A random DLRM with the peer's shapes; tables are generated directly in their stored format.
fn synthetic_model(which: &str, plan: &str) -> Result<Model> {
    let (d, bottom, top, cap): (usize, &[usize], &[usize], usize) = match which {
        "kaggle" => (16, &[512, 256, 64, 16], &[512, 256, 1], 1_000_000),
        "mlperf" => (128, &[512, 256, 128], &[1024, 1024, 512, 256, 1], 100_000),
        other => {
            return Err(QuantError::UnknownName {
                what: "synthetic model",
                name: other.to_string(),
                expected: "kaggle or mlperf",
            });
        }
    };
    let config = ModelConfig {
        dense_features: 13,
        bottom_mlp: bottom.to_vec(),
        tables: KAGGLE
            .iter()
            .map(|&n| TableConfig {
                rows: n.min(cap),
                dim: d,
                pooling: PoolingMode::Sum,
            })
            .collect(),
        interaction: Interaction::Dot {
            order: DotOrder::LowerByRow,
            self_interaction: false,
        },
        top_mlp: top.to_vec(),
        naming: Naming::Dlrm,
    };
    let (layer, format) = match plan {
        "f32" => (LayerPrecision::F32, TableFormat::F32),
        "quantized" => (
            LayerPrecision::Int8 {
                per_channel: false,
                activations: ActivationPlan::Dynamic,
            },
            TableFormat::Fused4,
        ),
        other => {
            return Err(QuantError::UnknownName {
                what: "benchmark plan",
                name: other.to_string(),
                expected: "f32 or quantized",
            });
        }
    };
    let mut rng = Rng::new(7);
    let mut linear = |(n, k): (usize, usize)| Linear {
        out: n,
        inp: k,
        weight: (0..n * k)
            .map(|_| rng.uniform_f32(-1.0, 1.0) / (k as f32).sqrt())
            .collect(),
        bias: (0..n).map(|_| rng.uniform_f32(-0.1, 0.1)).collect(),
    };
    let bottom = config
        .bottom_shapes()
        .into_iter()
        .map(&mut linear)
        .collect();
    let top = config.top_shapes().into_iter().map(&mut linear).collect();
    let tables = config
        .tables
        .iter()
        .map(|t| {
            let mut bytes = vec![0u8; t.rows * format.row_bytes(d)];
            if format == TableFormat::F32 {
                for c in bytes.chunks_exact_mut(4) {
                    c.copy_from_slice(&rng.uniform_f32(-0.05, 0.05).to_le_bytes());
                }
            } else {
                let codes = format.code_bytes(d);
                let scale = half::f16::from_f32(0.1 / 15.0).to_le_bytes();
                let bias = half::f16::from_f32(-0.05).to_le_bytes();
                for row in bytes.chunks_exact_mut(format.row_bytes(d)) {
                    for b in &mut row[..codes] {
                        *b = rng.below(256) as u8;
                    }
                    row[codes..codes + 2].copy_from_slice(&scale);
                    row[codes + 2..codes + 4].copy_from_slice(&bias);
                }
            }
            TableData::Encoded { format, bytes }
        })
        .collect();
    let weights = Weights {
        bottom,
        tables,
        table_names: Vec::new(),
        cross: Vec::new(),
        top,
    };
    let p = Plan::uniform(&config, layer, format);
    Ok(Model::from_parts_owned(config, weights, p)?)
}

impl BenchModel {
    /// Loads or builds the model of `options`, with its chunk size set.
    pub fn open(options: &ModelBenchOptions) -> Result<BenchModel> {
        let (mut model, name, zipf) = match &options.source {
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
                (a.model, name, false)
            }
            ModelSource::Synthetic { which, plan } => (
                synthetic_model(which, plan)?,
                format!("{which}-{plan}"),
                true,
            ),
        };
        if let Some(chunk) = options.chunk {
            model.set_chunk_size(chunk);
        }
        Ok(BenchModel { model, name, zipf })
    }

    /// Times `predict` at every batch size of `options` (a `dlrm_predict` line each).
    pub fn run(&self, options: &ModelBenchOptions, sink: &mut Sink<'_>) -> Result<()> {
        let model = &self.model;
        let c = model.config();
        let rows: Vec<usize> = c.tables.iter().map(|t| t.rows).collect();
        let plan: Vec<String> = model
            .plan()
            .bottom
            .iter()
            .chain(&model.plan().top)
            .map(|p| p.short_name())
            .collect();
        let tables = summarize(model.plan().tables.iter().map(|f| f.name().to_string()));
        let layers = summarize(plan.into_iter());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(options.threads.max(1))
            .build()?;
        let min_time = Duration::from_millis(if options.quick { 200 } else { 1000 });
        for &b in &options.batch {
            // Like the peer, rotate through 8 different batches so table rows are not all cache-hot.
            let batches: Vec<Batch> = (0..8)
                .map(|i| synthetic(b, c.dense_features, &rows, 42 + 8 * b as u64 + i, self.zipf))
                .collect();
            let (secs, cpu_rate) = pool.install(|| time_model(model, &batches, min_time))?;
            let shape = ModelShape {
                model: self.name.clone(),
                batch: b,
                threads: options.threads,
                chunk: model.chunk_size(),
            };
            let extra = ModelExtra {
                layers: layers.clone(),
                tables: tables.clone(),
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
