//! `quantrec demo`: the end-to-end story on this machine.
//!
//! Today it runs what exists, for real: a self-check of every kernel at every ISA level this CPU
//! supports against the scalar oracle, then `bench kernels --quick`.

use anyhow::Result;
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
    println!(
        "(the model, quantization and serving stages are not built yet; this runs the kernels that exist)\n"
    );
    println!("== kernel benchmarks (quick) ==");
    let _ = args.quick;
    bench::run_kernels(&KernelBenchArgs {
        quick: true,
        json: None,
        filter: None,
    })
}
