//! `quantrec train`: train an fp32 DLRM on a click log or on synthetic data and write a
//! facebookresearch/dlrm state dict (importable with `quantrec import`, loadable by PyTorch);
//! the runs are [`quantrec_train::run`].

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use quantrec_data::Schema;
use quantrec_data::synth;
use quantrec_train::recipe::SynthRecipe;
use quantrec_train::run::{FileTraining, Holdout, RunEvent, train_from_source, train_synthetic_to};
use quantrec_train::{Optimizer, TrainOptions};
use serde::Serialize;

use crate::progress::{show_training, train_bar};

/// Update rule of `quantrec train`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    /// Adagrad (row-wise for tables, like FBGEMM's EXACT_ROWWISE_ADAGRAD).
    Adagrad,
    /// Plain SGD.
    Sgd,
    /// Adam for the MLPs, row-wise Adagrad for the tables.
    Adam,
}

/// Arguments of `quantrec train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training data: Criteo DAC TSV (optionally .gz), a file read through `--schema`, or a
    /// batch file with `labels`. Streamed (read again every epoch; a first pass counts the rows
    /// when a tail holdout is asked for), so memory does not grow with the file.
    #[arg(
        long,
        conflicts_with = "synthetic",
        required_unless_present = "synthetic"
    )]
    pub data: Option<PathBuf>,
    /// Schema of the data file (default: Criteo DAC).
    #[arg(long, requires = "data")]
    pub schema: Option<PathBuf>,
    /// Hold out the last fraction of the data file's rows for evaluation.
    #[arg(long, requires = "data", conflicts_with_all = ["holdout_rows", "eval"])]
    pub holdout_fraction: Option<f64>,
    /// Hold out the last N rows of the data file for evaluation.
    #[arg(long, requires = "data", conflicts_with = "eval")]
    pub holdout_rows: Option<usize>,
    /// Evaluate on this file (same format as --data).
    #[arg(long, requires = "data")]
    pub eval: Option<PathBuf>,
    /// Train on the synthetic default recipe (Criteo-like data labelled by a hidden teacher,
    /// generated on the fly); the holdout report includes the teacher's NE.
    #[arg(long)]
    pub synthetic: bool,
    /// Synthetic training rows (default: the recipe's).
    #[arg(long, requires = "synthetic")]
    pub rows: Option<u64>,
    /// Synthetic evaluation rows (default: the recipe's).
    #[arg(long, requires = "synthetic")]
    pub eval_rows: Option<u64>,
    /// Synthetic data: Criteo Kaggle table sizes capped at this many rows (default: the recipe's).
    /// For --data: rows every categorical column is hashed into (default 100000).
    #[arg(long)]
    pub max_table_rows: Option<usize>,
    /// Explicit table sizes, comma separated (overrides --max-table-rows).
    #[arg(long, value_delimiter = ',')]
    pub table_rows: Option<Vec<usize>>,
    /// Synthetic data: Zipf exponent of id popularity (default: the recipe's).
    #[arg(long, requires = "synthetic")]
    pub zipf: Option<f64>,
    /// Synthetic data seed (teacher and rows).
    #[arg(long, requires = "synthetic", default_value_t = 0)]
    pub data_seed: u64,
    /// Embedding dimension (also the bottom MLP's output).
    #[arg(long, default_value_t = 16)]
    pub dim: usize,
    /// Interaction (dot or DCN-v2 cross net).
    #[command(flatten)]
    pub arch: crate::cmd::args::ArchArgs,
    /// Continue training from this state dict (as `train` writes it; same architecture) instead
    /// of fresh parameters: e.g. yesterday's snapshot trained further on today's data.
    #[arg(long, requires = "data")]
    pub init: Option<PathBuf>,
    /// Output: the trained state dict (.safetensors; facebookresearch/dlrm module names, TorchRec
    /// `DLRM_DCN` names with `--arch dcn`).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Passes over the data (file data only; synthetic rows are never repeated).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Samples per step.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Learning rate of the MLPs.
    #[arg(long)]
    pub lr: Option<f32>,
    /// Learning rate of the embedding tables.
    #[arg(long)]
    pub lr_sparse: Option<f32>,
    /// Update rule (default: the synthetic recipe's, or Adagrad for --data).
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    /// Seed of the initial parameters.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print a JSON summary instead of text (no progress bar).
    #[arg(long)]
    pub json: bool,
}

/// The trainer options of the arguments (on the synthetic recipe's or the trainer's defaults).
fn train_options(args: &TrainArgs) -> Result<TrainOptions> {
    let mut options = if args.synthetic {
        SynthRecipe::default().options
    } else {
        TrainOptions::default()
    };
    if let Some(v) = args.epochs {
        options.epochs = v;
    }
    if let Some(v) = args.batch_size {
        if v == 0 {
            bail!("--batch-size must be at least 1");
        }
        options.batch_size = v;
    }
    if let Some(v) = args.lr {
        options.lr_dense = v;
    }
    if let Some(v) = args.lr_sparse {
        options.lr_sparse = v;
    }
    if let Some(v) = args.seed {
        options.seed = v;
    }
    options.threads = args.threads.or(options.threads);
    if let Some(o) = args.optimizer {
        options.optimizer = match o {
            OptimizerArg::Adagrad => Optimizer::adagrad(),
            OptimizerArg::Sgd => Optimizer::Sgd,
            OptimizerArg::Adam => Optimizer::adam_rowwise(),
        };
    }
    Ok(options)
}

/// Runs `quantrec train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let options = train_options(&args)?;
    let mut bar: Option<ProgressBar> = None;
    let json = args.json;
    let on_event = |e: RunEvent<'_>| match e {
        RunEvent::Total(n) => match &bar {
            Some(b) => b.set_length(n),
            None if json => bar = Some(ProgressBar::hidden()),
            None => bar = Some(train_bar(n, ", eta {eta}")),
        },
        RunEvent::Step(p) => {
            if let Some(b) = &bar {
                show_training(b, p, true);
            }
        }
        RunEvent::Skipped { path, lines } => {
            eprintln!("{}: skipped {lines} bad lines", path.display())
        }
    };
    if args.synthetic {
        let recipe = synthetic_recipe(&args, options)?;
        let summary = train_synthetic_to(&recipe, &args.output, on_event)
            .with_context(|| format!("training, then writing {}", args.output.display()))?;
        finish(bar, &summary, json)
    } else {
        let run = file_training(&args, options)?;
        let summary = train_from_source(&run, on_event)
            .with_context(|| format!("training on {}", run.data.display()))?;
        finish(bar, &summary, json)
    }
}

/// Clears the bar and prints the summary (as JSON with `--json`).
fn finish(
    bar: Option<ProgressBar>,
    summary: &(impl Serialize + std::fmt::Display),
    json: bool,
) -> Result<()> {
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    super::output::print_report(summary, json)
}

fn synthetic_recipe(args: &TrainArgs, options: TrainOptions) -> Result<SynthRecipe> {
    let mut recipe = SynthRecipe {
        options,
        dim: args.dim,
        arch: args.arch.arch(),
        ..SynthRecipe::default()
    };
    recipe.synth.seed = args.data_seed;
    if let Some(rows) = &args.table_rows {
        recipe.synth.table_rows = rows.clone();
    } else if let Some(cap) = args.max_table_rows {
        recipe.synth.table_rows = synth::criteo_table_rows(cap);
    }
    if let Some(z) = args.zipf {
        recipe.synth.zipf_exponent = z;
    }
    if let Some(n) = args.rows {
        recipe.train_rows = n;
    }
    if let Some(n) = args.eval_rows {
        recipe.eval_rows = n;
    }
    if args.epochs.is_some_and(|e| e != 1) {
        bail!("--epochs applies to --data only (synthetic rows are generated fresh, one pass)");
    }
    Ok(recipe)
}

fn file_training(args: &TrainArgs, options: TrainOptions) -> Result<FileTraining> {
    let Some(data) = &args.data else {
        bail!("give --data FILE or --synthetic");
    };
    let schema = args
        .schema
        .as_ref()
        .map(|p| Schema::from_json_file(p))
        .transpose()?;
    let n_tables = schema.as_ref().map_or(26, Schema::n_sparse);
    let table_rows = match &args.table_rows {
        Some(rows) => rows.clone(),
        None => vec![args.max_table_rows.unwrap_or(100_000); n_tables],
    };
    let holdout = match (&args.eval, args.holdout_rows, args.holdout_fraction) {
        (Some(e), _, _) => Holdout::File(e.clone()),
        (None, Some(r), _) => Holdout::Rows(r as u64),
        (None, None, Some(f)) if (0.0..1.0).contains(&f) => Holdout::Fraction(f),
        (None, None, Some(f)) => bail!("--holdout-fraction must be in [0, 1), got {f}"),
        (None, None, None) => Holdout::None,
    };
    Ok(FileTraining {
        data: data.clone(),
        schema,
        table_rows,
        holdout,
        dim: args.dim,
        arch: args.arch.arch(),
        init: args.init.clone(),
        options,
        output: args.output.clone(),
    })
}
