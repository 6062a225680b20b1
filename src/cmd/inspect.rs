//! `quantrec inspect`: what an artifact holds — architecture, plan, bytes per part against f32
//! ([`quantrec_model::inspect`]).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use quantrec_model::artifact::Artifact;
use quantrec_model::inspect::Inspection;

/// Arguments of `quantrec inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The artifact.
    pub model: PathBuf,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also hash every tensor and compare with the digest recorded at save time (reads the whole file).
    #[arg(long)]
    pub verify: bool,
}

/// Runs `quantrec inspect`.
pub fn run(args: InspectArgs) -> Result<()> {
    let a =
        Artifact::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let report = Inspection::new(&a, &args.model, args.verify);
    super::output::print_report(&report, args.json)
}
