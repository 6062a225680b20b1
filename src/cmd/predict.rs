//! `quantrec predict`: run an artifact on a batch file ([`quantrec_model::score`]).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use quantrec_model::Scratch;
use quantrec_model::artifact::Artifact;
use quantrec_model::inputs::load_inputs;
use quantrec_model::score::{Predictions, for_each_batch, open_data};

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
    #[command(flatten)]
    pub remote: super::tables::RemoteTablesArgs,
}

/// Runs `quantrec predict`.
pub fn run(args: PredictArgs) -> Result<()> {
    let mut artifact =
        Artifact::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    if args.tables_in_memory {
        artifact.model.load_tables_into_memory()?;
    }
    let remote = args.remote.attach(&mut artifact.model, &args.model)?;
    let model = &artifact.model;
    let mut scratch = Scratch::new();
    let mut preds = Predictions::default();
    preds.allow_nonfinite = args.allow_nonfinite;
    let mut expected = None;
    let samples = match (&args.inputs, &args.data) {
        (Some(path), _) => {
            let input = load_inputs(path)?;
            preds.score(model, &input.batch, &mut scratch)?;
            expected = input.expected;
            input.batch.size as u64
        }
        (None, Some(data)) => {
            let schema = args.schema.as_deref();
            let mut source = open_data(model.config(), data, schema, args.batch_size)?;
            for_each_batch(source.as_mut(), args.rows, |batch| {
                preds.score(model, batch, &mut scratch)
            })?
        }
        (None, None) => bail!("give --inputs or --data"),
    };
    preds.write(&args.output)?;
    println!("{samples} samples → {}", args.output.display());
    if let Some(t) = &remote {
        println!("{}", quantrec_tables::TrafficSummary(t));
    }
    if let Some(expected) = &expected {
        // The inputs carry a reference; say how far we are from it (as probabilities and as logits,
        // since references may be either).
        let (p, l) = preds.max_relative_difference(expected);
        println!(
            "vs `expected` in the inputs: max relative difference {p:.3e} (probabilities), {l:.3e} (logits)"
        );
    }
    Ok(())
}
