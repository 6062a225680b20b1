//! `quantrec demo`: the end-to-end story on this machine.
//!
//! Today it runs what exists, for real: a self-check of every kernel at every ISA level this CPU
//! supports against the scalar oracle, then `bench kernels --quick`.

use anyhow::{Result, bail};
use clap::Args;

use crate::bench::{self, KernelBenchArgs};

/// Arguments of `quantrec demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The short version (under two minutes).
    #[arg(long)]
    pub quick: bool,
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> Result<()> {
    println!("quantrec demo — {}", quantrec_kernels::isa::describe());
    println!("\n== kernel self-check: every ISA level against the scalar oracle ==");
    selfcheck()?;
    println!("\n== kernel benchmarks (quick) ==");
    let _ = args.quick;
    bench::run_kernels(&KernelBenchArgs {
        quick: true,
        json: None,
        filter: None,
    })
}

/// Prints one line per kernel family and implementation; fails if any disagrees with its oracle.
pub fn selfcheck() -> Result<()> {
    let results = quantrec_kernels::selfcheck::run_all(0x5eed)?;
    println!(
        "{:<16} {:<12} {:>6} {:>12} {:>12}  result",
        "family", "impl", "cases", "max error", "tolerance"
    );
    for r in &results {
        println!(
            "{:<16} {:<12} {:>6} {:>12.3e} {:>12.3e}  {}",
            r.family,
            r.implementation,
            r.cases,
            r.max_error,
            r.tolerance,
            if r.passed { "ok" } else { "MISMATCH" }
        );
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    if failed > 0 {
        bail!("{failed} kernel self-checks disagree with the scalar oracle");
    }
    println!("all {} checks agree with the oracle", results.len());
    Ok(())
}
