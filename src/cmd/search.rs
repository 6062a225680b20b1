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
use quantrec_quant::search::search;

use super::args::{DataArgs, SearchTuning};

/// Arguments of `quantrec search`.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// The f32 model (artifact or state dict).
    pub model: PathBuf,
    /// Data and gate.
    #[command(flatten)]
    pub data: DataArgs,
    /// Search objective and options.
    #[command(flatten)]
    pub tuning: SearchTuning,
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
        .with_table_refit(args.tuning.table_rounding.refit())
        .with_curvature_measured_on(args.tuning.table_rounding.curvature(), &calib)?
        .with_row_ranking_measured_on(&calib)?;
    let reference = builder.build(&Plan::f32(&m.config))?;
    let cal = calibrate(&reference, &calib, d.calib_method.method())?;
    let s = search(
        &builder,
        &cal,
        &eval,
        &args.tuning.options(d.budget()?, !d.no_row_tiers),
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
