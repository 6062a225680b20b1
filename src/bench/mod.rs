//! `quantrec bench`: median timings, one JSON object per line, and a human-readable table.
//!
//! Field names follow `../shared/peers/torch_bench.py` so ours and the peers' lines can be joined on
//! `op` and `shape`: `{"impl": "quantrec", "isa", "op", "shape", "seconds", "rate", "unit"}`.

mod embedding;
mod formats;
mod harness;
mod interaction;
mod linear;
mod linear_int8;
mod model;
mod peak;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

pub use harness::{Reporter, time_median};

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
    Model(model::ModelBenchArgs),
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
}

/// Runs `quantrec bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    match args.what {
        BenchWhat::Kernels(k) => run_kernels(&k),
        BenchWhat::Model(m) => model::run(&m),
    }
}

/// Runs every kernel benchmark family that matches the filter.
pub fn run_kernels(args: &KernelBenchArgs) -> Result<()> {
    let mut rep = Reporter::new(args.json.as_deref(), args.filter.clone())?;
    println!(
        "quantrec bench kernels — {}",
        quantrec_kernels::isa::describe()
    );
    peak::run(args, &mut rep)?;
    formats::run(args, &mut rep)?;
    linear_int8::run(args, &mut rep)?;
    interaction::run(args, &mut rep)?;
    linear::run(args, &mut rep)?;
    embedding::run(args, &mut rep)?;
    rep.finish()
}
