//! `quantrec quantize`: import if needed → calibrate → search (or a given plan / preset) →
//! validate → write the quantized artifact with its plan and provenance.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use quantrec_model::artifact;
use quantrec_quant::load::{load_data, load_model};
use quantrec_quant::report::QuantizeReport;
use quantrec_quant::report::search_report::write_report;
use quantrec_quant::workflow::{PlanRequest, QuantizeRequest, quantize};

use super::args::{DataArgs, SearchTuning};

/// Arguments of `quantrec quantize`.
#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// The f32 model: a quantrec artifact or a PyTorch / TorchRec state dict (.safetensors).
    pub model: PathBuf,
    /// Data and gate.
    #[command(flatten)]
    pub data: DataArgs,
    /// `auto` (search), a preset (`fp16`, `int8-dynamic`, `int4-tables`, `aggressive`) or a plan
    /// JSON file.
    #[arg(long, default_value = "auto")]
    pub plan: String,
    /// Search objective and options.
    #[command(flatten)]
    pub tuning: SearchTuning,
    /// The quantized artifact to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Directory for report.md, report.json and frontier.png of the search.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `quantrec quantize`.
pub fn run(args: QuantizeArgs) -> Result<()> {
    let loaded =
        load_model(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let d = &args.data;
    let schema = d.schema.as_deref();
    let calib = load_data(&d.calib, &loaded.config, schema, Some(d.calib_rows))
        .with_context(|| format!("reading {}", d.calib.display()))?;
    let eval = load_data(&d.eval, &loaded.config, schema, Some(d.eval_rows))
        .with_context(|| format!("reading {}", d.eval.display()))?;
    let req = QuantizeRequest {
        config: loaded.config.clone(),
        weights: loaded.weights.clone(),
        plan: PlanRequest::parse(&args.plan)?,
        search: args.tuning.options(d.budget()?, !d.no_row_tiers),
        calib_method: d.calib_method.method(),
        calib,
        eval,
    };
    let out = match quantize(&req) {
        Ok(o) => o,
        Err(e) => bail!("nothing written: {e}"),
    };
    if let (Some(dir), Some(s)) = (&args.report, &out.search) {
        write_report(dir, s)?;
        eprintln!("report: {}", dir.display());
    }
    let prov = out.provenance(
        Some((args.model.display().to_string(), loaded.sha256.clone())),
        d.provenance(req.calib.rows, req.eval.rows)?,
    );
    artifact::save(&args.output, &req.config, &out.weights, &out.plan, &prov)
        .with_context(|| format!("writing {}", args.output.display()))?;
    let report = QuantizeReport::new(&args.output, &req.search.budget, &out);
    super::output::print_report(&report, args.json)
}
