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

use anyhow::{Context, Result};
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
    /// Dense-layer shapes to time instead of the defaults, as `MxKxN` (comma-separated), e.g.
    /// `1024x1024x1024,16x479x1024`.
    #[arg(long, value_delimiter = ',')]
    pub shapes: Vec<String>,
}

/// The DLRM MLP `(k, n)` pairs `../shared/peers/torch_bench.py` times.
const LINEAR_KNS: [(usize, usize); 5] = [
    (512, 256),
    (256, 128),
    (1024, 1024),
    (1024, 512),
    (479, 1024),
];

/// Dense-layer shapes to time, grouped by weight shape: `(k, n, batch sizes)`. The defaults (every
/// `LINEAR_KNS` pair at m ∈ {1, 16, 64, 256, 1024}, or {1, 256} with `--quick`), or `--shapes`.
pub fn linear_shapes(args: &KernelBenchArgs) -> Result<Vec<(usize, usize, Vec<usize>)>> {
    if args.shapes.is_empty() {
        let ms: Vec<usize> = if args.quick {
            vec![1, 256]
        } else {
            vec![1, 16, 64, 256, 1024]
        };
        return Ok(LINEAR_KNS
            .iter()
            .map(|&(k, n)| (k, n, ms.clone()))
            .collect());
    }
    let mut groups: Vec<(usize, usize, Vec<usize>)> = Vec::new();
    for s in &args.shapes {
        let dims: Vec<usize> = s
            .split('x')
            .map(|d| d.trim().parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .ok()
            .filter(|d: &Vec<usize>| d.len() == 3 && d.iter().all(|&v| v > 0))
            .with_context(|| format!("--shapes: `{s}` is not MxKxN with positive sizes"))?;
        let (m, k, n) = (dims[0], dims[1], dims[2]);
        match groups.iter_mut().find(|g| g.0 == k && g.1 == n) {
            Some(g) => g.2.push(m),
            None => groups.push((k, n, vec![m])),
        }
    }
    Ok(groups)
}

/// Runs `quantrec bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    match args.what {
        BenchWhat::Kernels(k) => run_kernels(&k),
        BenchWhat::Model(m) => model::run(&m),
    }
}

/// A benchmark routine of one or more kernel families.
type BenchFn = fn(&KernelBenchArgs, &mut Reporter) -> Result<()>;

/// The benchmark of a registered kernel family (`quantrec_kernels::registry::FAMILIES`), by name.
/// A family without one is an error, so a newly registered family cannot be left out.
fn bench_for(family: &str) -> Option<BenchFn> {
    Some(match family {
        "formats_codes" | "formats_decode" | "formats_greedy" => formats::run,
        "embedding_bag" => embedding::run,
        "gemm_dense" => linear::run,
        "gemm_int8" => linear_int8::run,
        "interaction" => interaction::run,
        _ => return None,
    })
}

/// Runs the peak loops, then the benchmark of every registered kernel family (each routine once),
/// keeping the ops that match the filter.
pub fn run_kernels(args: &KernelBenchArgs) -> Result<()> {
    let mut rep = Reporter::new(args.json.as_deref(), args.filter.clone())?;
    println!(
        "quantrec bench kernels — {}",
        quantrec_kernels::isa::describe()
    );
    peak::run(args, &mut rep)?;
    let mut done: Vec<BenchFn> = Vec::new();
    for family in quantrec_kernels::registry::FAMILIES {
        let bench = bench_for(family.name)
            .with_context(|| format!("kernel family `{}` has no benchmark", family.name))?;
        if !done.iter().any(|f| std::ptr::fn_addr_eq(*f, bench)) {
            bench(args, &mut rep)?;
            done.push(bench);
        }
    }
    rep.finish()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_registered_kernel_family_has_a_benchmark() {
        for family in quantrec_kernels::registry::FAMILIES {
            assert!(super::bench_for(family.name).is_some(), "{}", family.name);
        }
    }
}
