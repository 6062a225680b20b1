//! The `quantrec` command line: a thin layer over the library crates.

mod bench;
mod cmd;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Low-precision inference for recommendation models.
#[derive(Parser, Debug)]
#[command(name = "quantrec", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the end-to-end story on this machine (today: kernel self-check and quick kernel benchmarks).
    Demo(cmd::demo::DemoArgs),
    /// Benchmark kernels (one JSON object per line with --json).
    Bench(bench::BenchArgs),
    /// Quantize the 2-D tables of a safetensors file to a row-wise format (FBGEMM-compatible).
    Convert(cmd::convert::ConvertArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // A bad QUANTREC_ISA is reported up front instead of being silently capped.
    quantrec_kernels::Isa::from_env()?;
    match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Convert(args) => cmd::convert::run(args),
    }
}
