//! `quantrec train`: train an fp32 DLRM on a click log or on synthetic data and write a
//! facebookresearch/dlrm state dict (importable with `quantrec import`, loadable by PyTorch);
//! the runs are [`quantrec_train::run`].

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use quantrec_train::Optimizer;
use quantrec_train::run::{
    Holdout, OptionOverrides, RunEvent, TrainData, TrainRequest, run_request,
};

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

impl TrainArgs {
    /// The library's request.
    fn request(&self) -> TrainRequest {
        let data = match &self.data {
            None => TrainData::Synthetic {
                rows: self.rows,
                eval_rows: self.eval_rows,
                zipf: self.zipf,
                seed: self.data_seed,
            },
            Some(data) => TrainData::File {
                data: data.clone(),
                schema: self.schema.clone(),
                holdout: Holdout::from_options(
                    self.eval.clone(),
                    self.holdout_rows.map(|r| r as u64),
                    self.holdout_fraction,
                ),
                init: self.init.clone(),
            },
        };
        let overrides = OptionOverrides {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr_dense: self.lr,
            lr_sparse: self.lr_sparse,
            seed: self.seed,
            threads: self.threads,
            optimizer: self.optimizer.map(|o| match o {
                OptimizerArg::Adagrad => Optimizer::adagrad(),
                OptimizerArg::Sgd => Optimizer::Sgd,
                OptimizerArg::Adam => Optimizer::adam_rowwise(),
            }),
        };
        TrainRequest {
            data,
            max_table_rows: self.max_table_rows,
            table_rows: self.table_rows.clone(),
            dim: self.dim,
            arch: self.arch.arch(),
            overrides,
            output: self.output.clone(),
        }
    }
}

/// Runs `quantrec train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let request = args.request();
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
    let what = match request.data_file() {
        Some(data) => format!("training on {}", data.display()),
        None => format!("training, then writing {}", args.output.display()),
    };
    let summary = run_request(&request, on_event).context(what)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    super::output::print_report(&summary, json)
}
