//! Training runs end to end, as `quantrec train` runs them: on the synthetic recipe, or streamed
//! from a data file (every epoch reads the file again; memory stays at one batch), with an
//! optional holdout, and the state dict written. The summaries are `Display` (the text report)
//! and `Serialize` (the JSON one).

use std::fmt::{self, Display, Formatter};
use std::path::{Path, PathBuf};
use std::time::Instant;

use quantrec_data::Schema;
use serde::Serialize;

use crate::recipe::SynthRecipe;
use crate::{EvalReport, Optimizer, Progress, Result, TrainOptions};

/// What a training run reports while it works.
#[derive(Clone, Copy, Debug)]
pub enum RunEvent<'a> {
    /// Samples the run will train on in all (known after the first epoch when not before).
    Total(u64),
    /// One training step.
    Step(&'a Progress),
    /// A pass over `path` skipped `lines` malformed lines.
    Skipped {
        /// The data file.
        path: &'a Path,
        /// Lines skipped in this pass.
        lines: u64,
    },
}

/// Which rows of the data file are held out for evaluation.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Holdout {
    /// None.
    #[default]
    None,
    /// The last `n` rows.
    Rows(u64),
    /// The last fraction of the rows (in `[0, 1)`).
    Fraction(f64),
    /// Another file in the same format.
    File(PathBuf),
}

impl Holdout {
    /// The holdout of a command line's three exclusive options: another file, the last `rows`,
    /// or the last `fraction` (the first given wins; none when none is).
    pub fn from_options(file: Option<PathBuf>, rows: Option<u64>, fraction: Option<f64>) -> Self {
        match (file, rows, fraction) {
            (Some(f), _, _) => Holdout::File(f),
            (None, Some(r), _) => Holdout::Rows(r),
            (None, None, Some(f)) => Holdout::Fraction(f),
            (None, None, None) => Holdout::None,
        }
    }
}

/// A training run streamed from a data file.
#[derive(Clone, Debug)]
pub struct FileTraining {
    /// Criteo DAC TSV (optionally .gz), a file read through `schema`, or a labelled batch file.
    pub data: PathBuf,
    /// Schema of a text file (Criteo DAC when `None`).
    pub schema: Option<Schema>,
    /// Rows every table is hashed into.
    pub table_rows: Vec<usize>,
    /// Held-out rows.
    pub holdout: Holdout,
    /// Embedding dimension (also the bottom MLP's output).
    pub dim: usize,
    /// The interaction (dot, or a DCN-v2 cross net).
    pub arch: crate::ModelArch,
    /// Start from this state dict (same architecture) instead of fresh parameters.
    pub init: Option<PathBuf>,
    /// Trainer options (epochs, batch size, learning rates, ...).
    pub options: TrainOptions,
    /// Where the trained state dict goes.
    pub output: PathBuf,
}

/// Trainer options as reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OptionsSummary {
    /// Seed of the initial parameters.
    pub seed: u64,
    /// `sgd`, `adagrad` or `adam`.
    pub optimizer: &'static str,
    /// Learning rate of the MLPs.
    pub lr_dense: f32,
    /// Learning rate of the tables.
    pub lr_sparse: f32,
    /// Samples per step.
    pub batch_size: usize,
    /// Passes over the data.
    pub epochs: usize,
    /// Worker threads (`null`: one per core).
    pub threads: Option<usize>,
}

impl From<&TrainOptions> for OptionsSummary {
    fn from(o: &TrainOptions) -> Self {
        OptionsSummary {
            seed: o.seed,
            optimizer: match o.optimizer {
                Optimizer::Sgd => "sgd",
                Optimizer::Adagrad { .. } => "adagrad",
                Optimizer::AdamRowwise { .. } => "adam",
            },
            lr_dense: o.lr_dense,
            lr_sparse: o.lr_sparse,
            batch_size: o.batch_size,
            epochs: o.epochs,
            threads: o.threads,
        }
    }
}

/// `holdout: N samples, log loss …, NE …, AUC …`.
fn holdout_line(f: &mut Formatter<'_>, r: &EvalReport) -> fmt::Result {
    writeln!(
        f,
        "holdout: {} samples, log loss {:.5}, NE {:.5}, AUC {:.5}",
        r.samples, r.log_loss, r.ne, r.auc
    )
}

/// What a synthetic run did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SyntheticSummary {
    /// Always `synthetic`.
    pub source: &'static str,
    /// Training rows.
    pub train_rows: u64,
    /// Evaluation rows.
    pub eval_rows: u64,
    /// Rows of every table.
    pub table_rows: Vec<usize>,
    /// Zipf exponent of id popularity.
    pub zipf_exponent: f64,
    /// Trainer options.
    pub options: OptionsSummary,
    /// The model on the evaluation rows.
    pub holdout: EvalReport,
    /// The generator teacher's NE (the attainable optimum).
    pub teacher_ne: Option<f64>,
    /// The teacher's AUC.
    pub teacher_auc: Option<f64>,
    /// Model NE / teacher NE.
    pub ne_ratio: f64,
    /// Seconds of training.
    pub train_seconds: f64,
    /// Training samples per second.
    pub samples_per_second: f64,
    /// Seconds in all (generation, evaluation, writing).
    pub wall_seconds: f64,
    /// The state dict written.
    pub output: PathBuf,
}

impl Display for SyntheticSummary {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "trained on {} synthetic rows in {:.1} s ({:.0} samples/s; {:.1} s in all)",
            self.train_rows, self.train_seconds, self.samples_per_second, self.wall_seconds
        )?;
        holdout_line(f, &self.holdout)?;
        writeln!(
            f,
            "teacher (attainable optimum): NE {}; model NE / teacher NE = {:.4}",
            self.teacher_ne
                .map_or("undefined".into(), |v| format!("{v:.5}")),
            self.ne_ratio
        )?;
        write!(f, "state dict → {}", self.output.display())
    }
}

/// Trains on `recipe` and writes the state dict to `output`.
pub fn train_synthetic_to(
    recipe: &SynthRecipe,
    output: &Path,
    mut on_event: impl FnMut(RunEvent<'_>),
) -> Result<SyntheticSummary> {
    let start = Instant::now();
    on_event(RunEvent::Total(recipe.train_rows));
    let out = crate::recipe::train_synthetic(recipe, |p| on_event(RunEvent::Step(p)))?;
    out.trainer.save_safetensors(output)?;
    Ok(SyntheticSummary {
        source: "synthetic",
        train_rows: recipe.train_rows,
        eval_rows: recipe.eval_rows,
        table_rows: recipe.synth.table_rows.clone(),
        zipf_exponent: recipe.synth.zipf_exponent,
        options: OptionsSummary::from(&recipe.options),
        holdout: out.holdout,
        teacher_ne: out.teacher.ne,
        teacher_auc: out.teacher.auc,
        ne_ratio: out.ne_ratio,
        train_seconds: out.train_seconds,
        samples_per_second: recipe.train_rows as f64 / out.train_seconds.max(1e-9),
        wall_seconds: start.elapsed().as_secs_f64(),
        output: output.to_path_buf(),
    })
}

/// What a run on a data file did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FileSummary {
    /// The data file.
    pub source: PathBuf,
    /// Rows trained on per epoch.
    pub train_rows: u64,
    /// Rows of every table.
    pub table_rows: Vec<usize>,
    /// Trainer options.
    pub options: OptionsSummary,
    /// The model on the held-out rows, when some were held out.
    pub holdout: Option<EvalReport>,
    /// Seconds of training.
    pub train_seconds: f64,
    /// Training samples (all epochs) per second.
    pub samples_per_second: f64,
    /// Seconds in all (counting pass, evaluation, writing).
    pub wall_seconds: f64,
    /// The state dict written.
    pub output: PathBuf,
}

impl Display for FileSummary {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "trained on {} rows × {} epochs in {:.1} s ({:.0} samples/s)",
            self.train_rows, self.options.epochs, self.train_seconds, self.samples_per_second
        )?;
        match &self.holdout {
            Some(r) => holdout_line(f, r)?,
            None => writeln!(
                f,
                "no holdout (use --holdout-rows, --holdout-fraction or --eval)"
            )?,
        }
        write!(f, "state dict → {}", self.output.display())
    }
}

mod file;

pub use file::{holdout_rows, train_from_source};
mod request;
pub use request::{OptionOverrides, TrainData, TrainPlan, TrainRequest, TrainSummary, run_request};

#[cfg(test)]
mod tests;
