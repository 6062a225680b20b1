//! `quantrec search`: the precision search alone (no artifact written): evaluated plans, Pareto
//! frontier, choice, Markdown + PNG + JSON report.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use quantrec_model::Plan;
use quantrec_quant::builder::ModelBuilder;
use quantrec_quant::calibrate::calibrate;
use quantrec_quant::load::{load_data, load_model};
use quantrec_quant::plans::summary;
use quantrec_quant::report::search_report::{markdown, write_report};
use quantrec_quant::search::{SearchOptions, search};

use super::args::{DataArgs, ObjectiveArg, TableRounding};

/// Arguments of `quantrec search`.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// The f32 model (artifact or state dict).
    pub model: PathBuf,
    /// Data and gate.
    #[command(flatten)]
    pub data: DataArgs,
    /// What the search minimizes.
    #[arg(long, value_enum, default_value = "bytes")]
    pub objective: ObjectiveArg,
    /// Samples per batch of the latency model.
    #[arg(long, default_value_t = 256)]
    pub latency_batch: usize,
    /// Samples of the one-unit-at-a-time sensitivity runs.
    #[arg(long, default_value_t = 16_384)]
    pub sensitivity_rows: usize,
    /// How N-bit table rows are rounded (as `quantize --table-rounding`).
    #[arg(long, value_enum, default_value = "curvature")]
    pub table_rounding: TableRounding,
    /// Directory for report.md, report.json and frontier.png.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print the whole outcome as JSON instead of the Markdown report.
    #[arg(long)]
    pub json: bool,
}

/// Runs `quantrec search`.
pub fn run(args: SearchArgs) -> Result<()> {
    let m = load_model(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let d = &args.data;
    let schema = d.schema.as_deref();
    let calib = load_data(&d.calib, &m.config, schema, Some(d.calib_rows))?;
    let eval = load_data(&d.eval, &m.config, schema, Some(d.eval_rows))?;
    let builder = ModelBuilder::new(m.config.clone(), m.weights)?
        .with_table_refit(args.table_rounding.refit())
        .with_curvature_measured_on(args.table_rounding.curvature(), &calib)?
        .with_row_ranking_measured_on(&calib)?;
    let reference = builder.build(&Plan::f32(&m.config))?;
    let cal = calibrate(&reference, &calib, d.calib_method.method())?;
    let s = search(
        &builder,
        &cal,
        &eval,
        &SearchOptions {
            budget: d.budget()?,
            objective: args.objective.objective(),
            latency_batch: args.latency_batch,
            presets: true,
            sensitivity_rows: args.sensitivity_rows,
            table_refit: args.table_rounding.refit(),
            table_curvature: args.table_rounding.curvature(),
            tiers: !d.no_row_tiers,
        },
    )?;
    if let Some(dir) = &args.report {
        write_report(dir, &s)?;
        eprintln!("report: {}", dir.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print!("{}", markdown(&s)?);
        println!("\nchosen plan: {}", summary(&s.chosen().plan));
    }
    Ok(())
}
