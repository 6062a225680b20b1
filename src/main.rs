//! The `quantrec` command line: a thin layer over the library crates.

mod cmd;
mod progress;

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
    /// The whole story on this machine: self-check, data, training, automatic quantization, evaluation, throughput, reports.
    Demo(cmd::demo::DemoArgs),
    /// Benchmark kernels (one JSON object per line with --json).
    Bench(cmd::bench::BenchArgs),
    /// Write a synthetic Criteo-like data set and report its teacher's NE.
    Gen(cmd::r#gen::GenArgs),
    /// Import a PyTorch / TorchRec DLRM state dict (.safetensors) into a quantrec artifact.
    Import(cmd::import::ImportArgs),
    /// Show an artifact's architecture, plan and size per part.
    Inspect(cmd::inspect::InspectArgs),
    /// Run an artifact on a batch of inputs.
    Predict(cmd::predict::PredictArgs),
    /// Evaluate an artifact on labelled data: NE, log loss, AUC, calibration (optionally vs a baseline).
    Eval(cmd::eval::EvalArgs),
    /// Quantize the 2-D tables of a safetensors file to a row-wise format (FBGEMM-compatible).
    Convert(cmd::convert::ConvertArgs),
    /// Train an fp32 DLRM on a click log or synthetic data; writes a facebookresearch/dlrm state dict.
    Train(cmd::train::TrainArgs),
    /// Quantize an f32 model under an accuracy budget (calibrate, search, validate, write).
    Quantize(cmd::quantize::QuantizeArgs),
    /// Per-layer and per-table error of a quantized model against its f32 reference.
    Debug(cmd::debug::DebugArgs),
    /// Observe an f32 model on calibration data and write every tensor's selected range.
    Calibrate(cmd::calibrate::CalibrateArgs),
    /// Precision search only: evaluated plans, Pareto frontier, choice, report.
    Search(cmd::search::SearchArgs),
    /// Re-apply a quantized model's recipe to a new f32 snapshot, repairing it if needed.
    Refresh(cmd::refresh::RefreshArgs),
    /// Serve a model repository over KServe v2 / Triton-compatible HTTP and gRPC.
    Serve(cmd::serve::ServeArgs),
    /// Open-loop load (Poisson arrivals) against a server: achieved rate, latency quantiles, errors.
    Loadgen(cmd::loadgen::LoadgenArgs),
    /// Embedding tables in a Redis Cluster: push, verify, gc.
    Tables(cmd::tables::TablesArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // A bad QUANTREC_ISA is reported up front instead of being silently capped.
    quantrec_kernels::Isa::from_env()?;
    match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Gen(args) => cmd::r#gen::run(args),
        Command::Import(args) => cmd::import::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Predict(args) => cmd::predict::run(args),
        Command::Convert(args) => cmd::convert::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Quantize(args) => cmd::quantize::run(args),
        Command::Debug(args) => cmd::debug::run(args),
        Command::Refresh(args) => cmd::refresh::run(args),
        Command::Calibrate(args) => cmd::calibrate::run(args),
        Command::Search(args) => cmd::search::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Loadgen(args) => cmd::loadgen::run(args),
        Command::Tables(args) => cmd::tables::run(args),
    }
}
