//! `quantrec debug`: per-layer and per-table error of a quantized model against its f32 reference.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use quantrec_model::{Model, Plan};
use quantrec_quant::debug::debug;
use quantrec_quant::load::{load_data, load_model};

/// Arguments of `quantrec debug`.
#[derive(Args, Debug)]
pub struct DebugArgs {
    /// The quantized artifact.
    pub quantized: PathBuf,
    /// The f32 reference (artifact or state dict).
    #[arg(long)]
    pub reference: PathBuf,
    /// Labelled data (any form the runtime reads).
    #[arg(long)]
    pub data: PathBuf,
    /// Schema JSON of text data (default: Criteo TSV).
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Samples to compare.
    #[arg(long, default_value_t = 20_000)]
    pub rows: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `quantrec debug`.
pub fn run(args: DebugArgs) -> Result<()> {
    let q = load_model(&args.quantized)
        .with_context(|| format!("loading {}", args.quantized.display()))?;
    let r = load_model(&args.reference)
        .with_context(|| format!("loading {}", args.reference.display()))?;
    let plan = q
        .meta
        .as_ref()
        .map(|m| m.plan.clone())
        .unwrap_or_else(|| Plan::f32(&q.config));
    let quantized = Model::from_parts(&q.config, &q.weights, &plan)?;
    let reference = Model::from_parts(&r.config, &r.weights, &Plan::f32(&r.config))?;
    let data = load_data(
        &args.data,
        &q.config,
        args.schema.as_deref(),
        Some(args.rows),
    )?;
    let report = debug(&quantized, &reference, &data)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}
