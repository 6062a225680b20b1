//! `quantrec eval`: stream a labelled data file through an artifact (and optionally a baseline)
//! and report NE, log loss, AUC and calibration ([`quantrec_quant::eval::evaluate_file`]).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use quantrec_quant::eval::{FileEvalOptions, evaluate_file};

/// Arguments of `quantrec eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The artifact to evaluate.
    pub model: PathBuf,
    /// Labelled data: Criteo TSV (optionally gzip), schema-described text, or a safetensors batch
    /// file. Text ids are hashed into the model's table sizes.
    #[arg(long)]
    pub data: PathBuf,
    /// A second artifact (e.g. the f32 model) run on the same rows: reports ΔNE % and ΔAUC.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Evaluate only the first N rows.
    #[arg(long)]
    pub rows: Option<u64>,
    /// JSON schema of a text file (default: the Criteo preset).
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Samples per batch while streaming.
    #[arg(long, default_value_t = 4096)]
    pub batch_size: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `quantrec eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let options = FileEvalOptions {
        model: args.model,
        data: args.data,
        baseline: args.baseline,
        rows: args.rows,
        schema: args.schema,
        batch_size: args.batch_size,
    };
    let report = evaluate_file(&options)
        .with_context(|| format!("evaluating {}", options.model.display()))?;
    super::output::print_report(&report, args.json)
}
