//! `quantrec calibrate`: observe an f32 model on calibration data and write the selected range of
//! every tensor (and, with `--plan`, that plan with calibrated static int8 parameters).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use quantrec_model::{Model, Plan};
use quantrec_quant::calibrate::calibrate;
use quantrec_quant::load::{load_data, load_model};
use quantrec_quant::workflow::PlanRequest;

use super::args::CalibMethod;

/// Arguments of `quantrec calibrate`.
#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// The f32 model (artifact or state dict).
    pub model: PathBuf,
    /// Calibration data (any form the runtime reads).
    #[arg(long)]
    pub calib: PathBuf,
    /// Schema JSON of text data (default: Criteo TSV).
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Samples to observe.
    #[arg(long, default_value_t = 4096)]
    pub calib_rows: usize,
    /// Range rule.
    #[arg(long, value_enum, default_value = "l2")]
    pub calib_method: CalibMethod,
    /// A preset or plan JSON whose static int8 layers get the calibrated parameters.
    #[arg(long)]
    pub plan: Option<String>,
    /// Output JSON: `{"rows", "method", "ranges": {tensor: {lo, hi}}, "plan"?}`.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Also store every observer (histograms), so calibrations can be merged later.
    #[arg(long)]
    pub observers: bool,
}

/// Runs `quantrec calibrate`.
pub fn run(args: CalibrateArgs) -> Result<()> {
    let m = load_model(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let model = Model::from_parts(&m.config, &m.weights, &Plan::f32(&m.config))?;
    let data = load_data(
        &args.calib,
        &m.config,
        args.schema.as_deref(),
        Some(args.calib_rows),
    )?;
    let cal = calibrate(&model, &data, args.calib_method.method())?;
    let plan = match &args.plan {
        None => None,
        Some(p) => Some(match PlanRequest::parse(p)? {
            PlanRequest::Auto => anyhow::bail!("--plan auto needs `quantrec quantize`"),
            PlanRequest::Preset(p) => cal.apply(&p.plan(&m.config))?,
            PlanRequest::Given(p) => cal.apply(&p)?,
        }),
    };
    let report = cal.report(plan, args.observers);
    std::fs::write(&args.output, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!("{report} → {}", args.output.display());
    Ok(())
}
