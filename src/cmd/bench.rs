//! `quantrec bench`: median timings ([`quantrec_quant::bench`]) as a table on stdout and, with
//! `--json`, one JSON object per line. Field names follow `../shared/peers/torch_bench.py` so ours
//! and the peers' lines can be joined on `op` and `shape`:
//! `{"impl": "quantrec", "isa", "op", "shape", "seconds", "rate", "unit"}`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use quantrec_quant::bench::model::{BenchModel, ModelBenchOptions, ModelSource};
use quantrec_quant::bench::{BenchOutput, KernelBenchOptions, parse_shape, run_kernels};

/// Arguments of `quantrec bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

/// What to benchmark.
#[derive(Subcommand, Debug)]
pub enum BenchWhat {
    /// Kernel micro-benchmarks: peaks, embedding bags, dense layers, interaction.
    Kernels(KernelBenchArgs),
    /// Whole-model predict throughput (samples/s) of an artifact at several batch sizes.
    Model(ModelBenchArgs),
}

/// Options shared by kernel benchmarks.
#[derive(Args, Debug, Clone)]
pub struct KernelBenchArgs {
    /// Fewer shapes and shorter timings (seconds instead of minutes).
    #[arg(long)]
    pub quick: bool,
    /// Also write one JSON object per line to this file (`-` for stdout only).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Only run benchmarks whose op name contains this substring.
    #[arg(long)]
    pub filter: Option<String>,
    /// Dense-layer shapes to time instead of the defaults, as `MxKxN` (comma-separated), e.g.
    /// `1024x1024x1024,16x479x1024`.
    #[arg(long, value_delimiter = ',')]
    pub shapes: Vec<String>,
}

/// Arguments of `quantrec bench model`.
#[derive(Args, Debug)]
pub struct ModelBenchArgs {
    /// The artifact to run (or use `--synthetic`).
    #[arg(required_unless_present = "synthetic", conflicts_with = "synthetic")]
    pub model: Option<PathBuf>,
    /// With an artifact: copy its tables into memory (huge pages from 2 MiB) instead of running
    /// them from the file mapping. Synthetic models are built in memory anyway.
    #[arg(long, requires = "model")]
    pub tables_in_memory: bool,
    /// A random model with the shapes of `../shared/peers/dlrm_bench.py`: `kaggle` (d=16, bottom
    /// 13-512-256-64-16, top 367-512-256-1, Criteo cardinalities capped at 1M rows) or `mlperf`
    /// (d=128, bottom 13-512-256-128, top 479-1024-1024-512-256-1, capped at 100k rows), or of
    /// `dlrmv2_bench.py`: `dlrmv2` (TorchRec DLRM_DCN, d=128, DCN-v2 3 layers of rank 512, top
    /// 3456-1024-1024-512-256-1, capped at 200k rows, MLPerf's multi-hot pooling sizes).
    #[arg(long)]
    pub synthetic: Option<String>,
    /// With an artifact: time batch-size slices of this inputs file (`dense`, `offsets_T`,
    /// `indices_T`, as `predict --inputs` reads and `dlrmv2_bench.py --export` writes; multi-hot
    /// bags welcome) instead of synthetic one-hot batches.
    #[arg(long, requires = "model")]
    pub inputs: Option<PathBuf>,
    /// Plan of a synthetic model: `f32`, or `quantized` (dynamic per-tensor int8 MLPs and 4-bit
    /// tables: the dlrm repo's inference recipe that the peer runs).
    #[arg(long, default_value = "f32")]
    pub plan: String,
    /// Batch sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,64,1024")]
    pub batch: Vec<usize>,
    /// Rayon thread counts for batch-parallel chunks, comma separated, each timed at every batch
    /// size in the same run (1 = single thread, like the peers' default).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub threads: Vec<usize>,
    /// Samples per chunk (the model's default when absent; see `Model::set_chunk_size`).
    #[arg(long)]
    pub chunk: Option<usize>,
    /// Shorter timings.
    #[arg(long)]
    pub quick: bool,
    /// Also write one JSON object per line to this file (`-` for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// With `--tables-redis`: the artifact's tables from the Redis Cluster at cache sizes 0%,
    /// 1%, 10% of the table bytes (and `--cache-bytes`) against in-memory tables, Zipf ids.
    #[command(flatten)]
    pub remote: super::tables::RemoteTablesArgs,
}

/// Runs `quantrec bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    match args.what {
        BenchWhat::Kernels(k) => kernels(&k),
        BenchWhat::Model(m) => model(m),
    }
}

fn kernels(args: &KernelBenchArgs) -> Result<()> {
    let shapes = args
        .shapes
        .iter()
        .map(|s| parse_shape(s).with_context(|| format!("--shapes: `{s}`")))
        .collect::<Result<_>>()?;
    let options = KernelBenchOptions {
        quick: args.quick,
        filter: args.filter.clone(),
        shapes,
    };
    let mut printer = BenchOutput::open(args.json.as_deref())?;
    println!(
        "quantrec bench kernels — {}",
        quantrec_kernels::isa::describe()
    );
    printer.feed(options.filter.clone(), |s| run_kernels(&options, s))?;
    Ok(printer.finish()?)
}

fn model(args: ModelBenchArgs) -> Result<()> {
    if let Some(path) = &args.model
        && let Some(spec) = args.remote.spec(path)
    {
        let mut out = BenchOutput::open(args.json.as_deref())?;
        println!(
            "quantrec bench model {} with remote tables — {}",
            path.display(),
            quantrec_kernels::isa::describe()
        );
        spec.bench_artifact(path, &args.batch, args.quick, |line| out.line(line))
            .with_context(|| format!("benchmarking {} with remote tables", path.display()))?;
        return Ok(out.finish()?);
    }
    let source = match (args.model, args.synthetic) {
        (Some(path), _) => ModelSource::Artifact {
            path,
            tables_in_memory: args.tables_in_memory,
        },
        (None, Some(which)) => ModelSource::Synthetic {
            which,
            plan: args.plan,
        },
        (None, None) => anyhow::bail!("give an artifact or --synthetic"),
    };
    let options = ModelBenchOptions {
        source,
        batch: args.batch,
        threads: args.threads,
        inputs: args.inputs,
        chunk: args.chunk,
        quick: args.quick,
    };
    let bench = BenchModel::open(&options)?;
    let mut printer = BenchOutput::open(args.json.as_deref())?;
    println!(
        "quantrec bench model {} — {}",
        bench.name,
        quantrec_kernels::isa::describe()
    );
    printer.feed(None, |s| bench.run(&options, s))?;
    Ok(printer.finish()?)
}
