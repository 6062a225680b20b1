//! `quantrec predict`: run an artifact on a batch file.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use quantrec_model::Scratch;
use quantrec_model::artifact::Artifact;
use quantrec_model::inputs::load_inputs;
use quantrec_model::state_dict::RawTensor;

/// Arguments of `quantrec predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// The artifact (from `quantrec import` or `quantrec quantize`).
    pub model: PathBuf,
    /// Inputs as safetensors: `dense` f32 [B, n_dense] (already transformed), `offsets_{t}` (one start
    /// per sample) and `indices_{t}` (i64) per table. (Reading raw TSV data with `--data` is wired once
    /// the data crate lands.)
    #[arg(long)]
    pub inputs: PathBuf,
    /// Output: `.safetensors` (tensors `output` = probabilities and `logits`, f32 [B]) or `.tsv`
    /// (`probability<TAB>logit` per sample).
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Runs `quantrec predict`.
pub fn run(args: PredictArgs) -> Result<()> {
    let artifact =
        Artifact::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let input = load_inputs(&args.inputs)?;
    let mut scratch = Scratch::new();
    let logits = artifact
        .model
        .predict_logits(&input.batch, &mut scratch)?
        .to_vec();
    let probs = artifact.model.predict(&input.batch, &mut scratch)?.to_vec();
    let ext = args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    match ext {
        "safetensors" => {
            let f = |v: &[f32]| RawTensor {
                dtype: safetensors::Dtype::F32,
                shape: vec![v.len()],
                bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            };
            let bytes = safetensors::serialize(
                [("logits", f(&logits)), ("output", f(&probs))],
                None::<HashMap<String, String>>,
            )?;
            std::fs::write(&args.output, bytes)
                .with_context(|| format!("writing {}", args.output.display()))?;
        }
        "tsv" => {
            let mut s = String::from("probability\tlogit\n");
            for (p, l) in probs.iter().zip(&logits) {
                writeln!(s, "{p}\t{l}")?;
            }
            std::fs::write(&args.output, s)
                .with_context(|| format!("writing {}", args.output.display()))?;
        }
        _ => bail!(
            "output {} must end in .safetensors or .tsv",
            args.output.display()
        ),
    }
    println!("{} samples → {}", input.batch.size, args.output.display());
    if let Some(expected) = &input.expected {
        // The inputs carry a reference; say how far we are from it (as probabilities and as logits,
        // since references may be either).
        let worst = |ours: &[f32]| {
            ours.iter()
                .zip(expected)
                .map(|(a, b)| (a - b).abs() / b.abs().max(1e-6))
                .fold(0f32, f32::max)
        };
        println!(
            "vs `expected` in the inputs: max relative difference {:.3e} (probabilities), {:.3e} (logits)",
            worst(&probs),
            worst(&logits)
        );
    }
    Ok(())
}
