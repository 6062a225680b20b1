//! `quantrec bench model`: whole-model predict throughput on synthetic one-hot batches.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use quantrec_kernels::rng::Rng;
use quantrec_model::artifact::Artifact;
use quantrec_model::{Batch, Scratch, SparseFeature};

use super::{Reporter, time_median};

/// Arguments of `quantrec bench model`.
#[derive(Args, Debug)]
pub struct ModelBenchArgs {
    /// The artifact to run.
    pub model: PathBuf,
    /// Batch sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,64,1024")]
    pub batch: Vec<usize>,
    /// Rayon threads for batch-parallel chunks (1 = single thread, like the peers' default).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Shorter timings.
    #[arg(long)]
    pub quick: bool,
    /// Also write one JSON object per line to this file (`-` for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// A batch of `size` samples with uniform dense values in [0, 5) and one uniform id per table.
fn synthetic(size: usize, n_dense: usize, rows: &[usize], seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    Batch {
        size,
        n_dense,
        dense: (0..size * n_dense)
            .map(|_| rng.uniform_f32(0.0, 5.0))
            .collect(),
        sparse: rows
            .iter()
            .map(|&r| {
                SparseFeature::one_hot((0..size).map(|_| rng.below(r as u64) as i64).collect())
            })
            .collect(),
        labels: None,
    }
}

/// Runs `quantrec bench model`.
pub fn run(args: &ModelBenchArgs) -> Result<()> {
    let a =
        Artifact::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let model = &a.model;
    let c = model.config();
    let rows: Vec<usize> = c.tables.iter().map(|t| t.rows).collect();
    let plan: Vec<String> = a
        .meta
        .plan
        .bottom
        .iter()
        .chain(&a.meta.plan.top)
        .map(|p| p.short_name())
        .collect();
    let tables: Vec<&str> = a.meta.plan.tables.iter().map(|f| f.name()).collect();
    let name = args
        .model
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().to_string());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.max(1))
        .build()?;
    let mut rep = Reporter::new(args.json.as_deref(), None)?;
    println!(
        "quantrec bench model {} — {}",
        args.model.display(),
        quantrec_kernels::isa::describe()
    );
    let min_time = Duration::from_millis(if args.quick { 200 } else { 1000 });
    for &b in &args.batch {
        let batch = synthetic(b, c.dense_features, &rows, 42 + b as u64);
        let mut scratch = Scratch::new();
        let secs = pool.install(|| -> Result<f64> {
            model.predict(&batch, &mut scratch)?;
            Ok(time_median(min_time, 5, || {
                std::hint::black_box(model.predict(&batch, &mut scratch).map(|p| p[0]).ok());
            }))
        })?;
        rep.record_with(
            quantrec_kernels::Isa::active().name(),
            "dlrm_predict",
            json!({"model": name, "batch": b, "threads": args.threads}),
            secs,
            b as f64 / secs,
            "samples/s",
            json!({"layers": plan.join(","), "tables": tables.join(",")}),
        )?;
    }
    rep.finish()
}
