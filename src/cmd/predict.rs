//! `quantrec predict`: run an artifact on a batch file.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use quantrec_data::Batch;
use quantrec_model::Scratch;
use quantrec_model::forward::sigmoid;

use super::eval::{for_each_batch, open_data};
use quantrec_model::artifact::Artifact;
use quantrec_model::inputs::load_inputs;
use quantrec_model::state_dict::RawTensor;

/// Arguments of `quantrec predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// The artifact (from `quantrec import` or `quantrec quantize`).
    pub model: PathBuf,
    /// Inputs as safetensors: `dense` f32 [B, n_dense] (already transformed), `offsets_{t}` (one start
    /// per sample) and `indices_{t}` (i64) per table.
    #[arg(long, required_unless_present = "data", conflicts_with = "data")]
    pub inputs: Option<PathBuf>,
    /// Raw data instead: Criteo TSV (optionally gzip), schema-described text or a safetensors batch
    /// file, streamed in batches (labels, when present, become a third TSV column).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// With `--data`: only the first N rows.
    #[arg(long, requires = "data")]
    pub rows: Option<u64>,
    /// With `--data`: JSON schema of a text file (default: the Criteo preset).
    #[arg(long, requires = "data")]
    pub schema: Option<PathBuf>,
    /// With `--data`: samples per batch.
    #[arg(long, default_value_t = 4096)]
    pub batch_size: usize,
    /// Output: `.safetensors` (tensors `output` = probabilities and `logits`, f32 [B], plus `labels`
    /// when the data has them) or `.tsv` (`probability<TAB>logit[<TAB>label]` per sample).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Copy the tables into memory (huge pages for tables of 2 MiB and more) instead of paging
    /// them in from the file mapping: faster lookups, every table held in RAM.
    #[arg(long)]
    pub tables_in_memory: bool,
    /// Accept NaN and infinite dense values (their scores are then NaN or saturated) instead of
    /// refusing the batch.
    #[arg(long)]
    pub allow_nonfinite: bool,
}

/// Runs `quantrec predict`.
pub fn run(args: PredictArgs) -> Result<()> {
    let mut artifact =
        Artifact::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    if args.tables_in_memory {
        artifact.model.load_tables_into_memory()?;
    }
    let mut scratch = Scratch::new();
    let (mut logits, mut probs, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    let mut expected = None;
    let mut labelled = true;
    let allow_nonfinite = args.allow_nonfinite;
    let mut seen = 0usize;
    let mut run_batch = |batch: &Batch| -> Result<()> {
        if !allow_nonfinite && let Some(i) = batch.dense.iter().position(|x| !x.is_finite()) {
            let nd = batch.n_dense.max(1);
            bail!(
                "sample {} dense feature {} is {} (non-finite dense values give meaningless scores; pass --allow-nonfinite to score them anyway)",
                seen + i / nd,
                i % nd,
                batch.dense[i]
            );
        }
        seen += batch.size;
        logits.extend_from_slice(artifact.model.predict_logits(batch, &mut scratch)?);
        // The probabilities are the sigmoid of the logits, as `Model::predict` computes them.
        probs.extend(
            logits[logits.len() - batch.size..]
                .iter()
                .map(|&x| sigmoid(x)),
        );
        match &batch.labels {
            Some(l) => labels.extend_from_slice(l),
            None => labelled = false,
        }
        Ok(())
    };
    let samples = match (&args.inputs, &args.data) {
        (Some(path), _) => {
            let input = load_inputs(path)?;
            run_batch(&input.batch)?;
            expected = input.expected;
            input.batch.size as u64
        }
        (None, Some(data)) => {
            let mut source = open_data(
                &artifact.model,
                data,
                args.schema.as_deref(),
                args.batch_size,
            )?;
            for_each_batch(source.as_mut(), args.rows, run_batch)?
        }
        (None, None) => bail!("give --inputs or --data"),
    };
    let labels = (labelled && !labels.is_empty()).then_some(labels);
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
            let mut tensors = vec![("logits", f(&logits)), ("output", f(&probs))];
            if let Some(y) = &labels {
                tensors.push(("labels", f(y)));
            }
            let bytes = safetensors::serialize(tensors, None::<HashMap<String, String>>)?;
            std::fs::write(&args.output, bytes)
                .with_context(|| format!("writing {}", args.output.display()))?;
        }
        "tsv" => {
            let mut s = String::from("probability\tlogit");
            s.push_str(if labels.is_some() { "\tlabel\n" } else { "\n" });
            for (i, (p, l)) in probs.iter().zip(&logits).enumerate() {
                match &labels {
                    Some(y) => writeln!(s, "{p}\t{l}\t{}", y[i])?,
                    None => writeln!(s, "{p}\t{l}")?,
                }
            }
            std::fs::write(&args.output, s)
                .with_context(|| format!("writing {}", args.output.display()))?;
        }
        _ => bail!(
            "output {} must end in .safetensors or .tsv",
            args.output.display()
        ),
    }
    println!("{samples} samples → {}", args.output.display());
    if let Some(expected) = &expected {
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
