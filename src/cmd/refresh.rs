//! `quantrec refresh`: re-apply a quantized artifact's recipe to a new f32 snapshot, recalibrate,
//! re-validate, widen what the debugger blames until the gate passes, and print the diff.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use quantrec_model::artifact;
use quantrec_quant::load::{load_data, load_model};
use quantrec_quant::refresh::{RefreshRequest, recorded_delta_ne_pct, refresh};

use super::args::DataArgs;

/// Arguments of `quantrec refresh`.
#[derive(Args, Debug)]
pub struct RefreshArgs {
    /// The previous quantized artifact (its plan is the recipe).
    #[arg(long)]
    pub previous: PathBuf,
    /// The new f32 snapshot (artifact or state dict).
    #[arg(long)]
    pub snapshot: PathBuf,
    /// Data and gate.
    #[command(flatten)]
    pub data: DataArgs,
    /// The refreshed artifact to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Keep the previous artifact's static activation parameters instead of recalibrating them
    /// (shows whether they still fit the new snapshot; blamed static layers are widened).
    #[arg(long)]
    pub keep_static: bool,
}

/// Runs `quantrec refresh`.
pub fn run(args: RefreshArgs) -> Result<()> {
    let prev = load_model(&args.previous)
        .with_context(|| format!("loading {}", args.previous.display()))?;
    let Some(meta) = prev.meta else {
        bail!(
            "{} is not a quantrec artifact; refresh needs the previous quantized artifact",
            args.previous.display()
        );
    };
    let snap = load_model(&args.snapshot)
        .with_context(|| format!("loading {}", args.snapshot.display()))?;
    let d = &args.data;
    let schema = d.schema.as_deref();
    let req = RefreshRequest {
        previous_plan: meta.plan.clone(),
        previous_delta_ne_pct: recorded_delta_ne_pct(&meta.provenance),
        config: snap.config.clone(),
        weights: snap.weights.clone(),
        calib: load_data(&d.calib, &snap.config, schema, Some(d.calib_rows))?,
        eval: load_data(&d.eval, &snap.config, schema, Some(d.eval_rows))?,
        budget: d.budget()?,
        calib_method: d.calib_method.method(),
        keep_static: args.keep_static,
    };
    let out = refresh(&req)?;
    print!("{}", out.diff_text(&req));
    if let Some(e) = out.failure(req.budget) {
        bail!("nothing written: {e}");
    }
    let data = d.provenance(req.calib.rows, req.eval.rows)?;
    let prov = out.provenance(&req, &args.previous, (&args.snapshot, &snap.sha256), data);
    artifact::save(&args.output, &req.config, &out.weights, &out.plan, &prov)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!("wrote {}", args.output.display());
    Ok(())
}
