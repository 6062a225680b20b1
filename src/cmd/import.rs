//! `quantrec import`: a PyTorch / TorchRec state dict → a quantrec artifact.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use quantrec_model::import::{ImportFileOptions, import_to_artifact};

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
    let options = ImportFileOptions {
        state_dict: args.state_dict,
        output: args.output,
        config: args.config,
        plan: args.plan,
    };
    let summary = import_to_artifact(&options)
        .with_context(|| format!("importing {}", options.state_dict.display()))?;
    println!("{summary}");
    Ok(())
}
