//! `quantrec quantize`: import if needed → calibrate → search (or a given plan / preset) →
//! validate → write the quantized artifact with its plan and provenance.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use quantrec_model::artifact;
use quantrec_quant::load::{load_data, load_model};
use quantrec_quant::plans::summary;
use quantrec_quant::report::search_report::write_report;
use quantrec_quant::search::SearchOptions;
use quantrec_quant::workflow::{PlanRequest, QuantizeOutcome, QuantizeRequest, quantize};

use super::args::{DataArgs, ObjectiveArg, TableRounding};

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
    /// What the search minimizes.
    #[arg(long, value_enum, default_value = "bytes")]
    pub objective: ObjectiveArg,
    /// Samples per batch of the latency model.
    #[arg(long, default_value_t = 256)]
    pub latency_batch: usize,
    /// Samples the one-unit-at-a-time sensitivity runs on (combined plans are validated on all
    /// evaluation samples).
    #[arg(long, default_value_t = 16_384)]
    pub sensitivity_rows: usize,
    /// How fused8half / fused4 / fused2 table rows are rounded. Every choice keeps FBGEMM's byte
    /// layout (PyTorch and every kernel read it); only `pytorch` reproduces PyTorch's bytes. On the
    /// synthetic default, all-4-bit tables measure ΔNE +0.068% (pytorch), +0.055% (refit),
    /// +0.046% (curvature). Recorded in the plan, so `refresh` re-applies it (on its new data).
    #[arg(long, value_enum, default_value = "curvature")]
    pub table_rounding: TableRounding,
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
        search: SearchOptions {
            budget: d.budget()?,
            objective: args.objective.objective(),
            latency_batch: args.latency_batch,
            presets: true,
            sensitivity_rows: args.sensitivity_rows,
            table_refit: args.table_rounding.refit(),
            table_curvature: args.table_rounding.curvature(),
            tiers: !d.no_row_tiers,
        },
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
    if args.json {
        print_json(&args, &out)
    } else {
        print_text(&args, &req, &out);
        Ok(())
    }
}

/// The outcome as one JSON object.
fn print_json(args: &QuantizeArgs, out: &QuantizeOutcome) -> Result<()> {
    let c = &out.comparison;
    println!(
        "{}",
        serde_json::json!({
            "output": args.output.display().to_string(),
            "plan": out.plan,
            "bytes_f32": out.bytes_f32,
            "bytes_quantized": out.bytes_quantized,
            "ne_f32": c.ne_reference, "ne_quantized": c.ne, "delta_ne_pct": c.delta_ne_pct,
            "auc_f32": c.auc_reference, "auc_quantized": c.auc, "delta_auc": c.delta_auc,
            "calibration": c.calibration,
            "search_seconds": out.search.as_ref().map(|s| s.seconds),
            "model_evaluations": out.search.as_ref().map(|s| s.model_evaluations),
        })
    );
    Ok(())
}

/// The search, the plan, bytes and accuracy against f32, the file written.
fn print_text(args: &QuantizeArgs, req: &QuantizeRequest, out: &QuantizeOutcome) {
    let c = &out.comparison;
    if let Some(s) = &out.search {
        println!(
            "search: {} plans evaluated ({} model runs) in {:.1} s; chosen {}",
            s.evaluated.len(),
            s.model_evaluations,
            s.seconds,
            s.chosen().name
        );
    }
    println!("plan: {}", summary(&out.plan));
    println!(
        "bytes {} -> {} ({:.1}% of f32); NE {:.6} -> {:.6} (ΔNE {:+.4}%, {}); AUC {:.5} -> {:.5}; calibration {:.4}",
        out.bytes_f32,
        out.bytes_quantized,
        100.0 * out.bytes_quantized as f64 / out.bytes_f32 as f64,
        c.ne_reference,
        c.ne,
        c.delta_ne_pct,
        req.search.budget.describe(),
        c.auc_reference,
        c.auc,
        c.calibration
    );
    println!("wrote {}", args.output.display());
}
