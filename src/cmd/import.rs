//! `quantrec import`: a PyTorch / TorchRec state dict → a quantrec artifact.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use quantrec_model::artifact::{self, Provenance, sha256_hex};
use quantrec_model::import::{ImportOverrides, import_state_dict};
use quantrec_model::state_dict::StateDict;
use quantrec_model::{Model, Plan};

/// Arguments of `quantrec import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// State dict (.safetensors) with facebookresearch/dlrm or TorchRec module names (convert a
    /// `torch.save` checkpoint with `safetensors.torch.save_file(model.state_dict(), PATH)`).
    pub state_dict: PathBuf,
    /// The artifact to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// JSON overrides for what the weights cannot tell: {"interaction": {...}, "pooling": "mean",
    /// "poolings": [...], "table_order": [...]}.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A precision plan (JSON) to store the model in; default all f32.
    #[arg(long)]
    pub plan: Option<PathBuf>,
}

/// Runs `quantrec import`.
pub fn run(args: ImportArgs) -> Result<()> {
    let bytes = std::fs::read(&args.state_dict)
        .with_context(|| format!("reading {}", args.state_dict.display()))?;
    let overrides = match &args.config {
        Some(p) => ImportOverrides::from_json(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )?,
        None => ImportOverrides::default(),
    };
    let sd = StateDict::from_bytes(&args.state_dict.display().to_string(), &bytes)?;
    let imp = import_state_dict(sd, &overrides)
        .with_context(|| format!("importing {}", args.state_dict.display()))?;
    let plan = match &args.plan {
        Some(p) => Plan::from_json(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )?,
        None => Plan::f32(&imp.config),
    };
    // Building the model checks that the plan can run before anything is written.
    Model::from_parts(&imp.config, &imp.weights, &plan)?;
    let provenance = Provenance {
        source_file: Some(args.state_dict.display().to_string()),
        source_sha256: Some(sha256_hex(&bytes)),
        notes: Some(format!(
            "quantrec import{}{}",
            args.config
                .as_ref()
                .map_or(String::new(), |p| format!(" --config {}", p.display())),
            args.plan
                .as_ref()
                .map_or(String::new(), |p| format!(" --plan {}", p.display()))
        )),
        ..Provenance::default()
    };
    artifact::save(&args.output, &imp.config, &imp.weights, &plan, &provenance)?;
    let c = &imp.config;
    println!(
        "imported {} ({:?} names): {} dense → bottom {:?}, {} tables, {:?}, top {:?}",
        args.state_dict.display(),
        c.naming,
        c.dense_features,
        c.bottom_mlp,
        c.tables.len(),
        c.interaction,
        c.top_mlp
    );
    println!("wrote {}", args.output.display());
    Ok(())
}
