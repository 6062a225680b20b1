//! The synthetic default recipe: data, model and training options that together meet the
//! trainer's acceptance target (holdout NE within 2% of the teacher's in under two minutes on a
//! 2-core machine), and [`train_synthetic`], which runs it without touching any file.
//!
//! Training rows are generated on a background thread ([`prefetch`]) while the trainer works, so
//! generation overlaps training; the evaluation rows are an independent stream
//! ([`Split::Evaluation`]) on which the teacher's own NE is measured too.

use std::sync::mpsc;
use std::time::Instant;

use quantrec_data::Batch;
use quantrec_data::metrics::Metrics;
use quantrec_data::source::BatchSource;
use quantrec_data::synth::{Generator, N_DENSE, Split, SynthConfig};
use quantrec_model::ModelConfig;

use crate::{EvalReport, ModelArch, Progress, Result, TrainOptions, Trainer};

/// Everything needed to train on synthetic data.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthRecipe {
    /// The data.
    pub synth: SynthConfig,
    /// Embedding dimension (also the bottom MLP's output).
    pub dim: usize,
    /// Optimizer, learning rates, batch size, seed, threads.
    pub options: TrainOptions,
    /// Training rows (one pass).
    pub train_rows: u64,
    /// Held-out rows for the final evaluation.
    pub eval_rows: u64,
    /// The interaction (dot by default).
    pub arch: ModelArch,
}

impl Default for SynthRecipe {
    /// The default recipe: [`SynthConfig::default`], dimension 16, the trainer's suggested
    /// architecture ([`crate::suggested_config`]), row-wise Adagrad with batches of 256, learning rates
    /// 0.04 (MLPs) and 0.1 (tables), and [`DEFAULT_TRAIN_ROWS`] training /
    /// [`DEFAULT_EVAL_ROWS`] evaluation rows.
    ///
    /// Learning rates from a sweep at 2M rows on the default data (holdout NE over the teacher's):
    /// MLP / table lr 0.01 / 0.05 (the trainer's generic defaults) 1.0497; 0.01 / 0.1 1.0431;
    /// 0.02 / 0.05 1.0422; 0.02 / 0.1 1.0426; 0.04 / 0.1 1.0409. Adam (lr 0.001 or 0.003) for
    /// the MLPs with row-wise Adagrad (0.05) for the tables: 1.0416 / 1.0417. Batches of 128:
    /// 1.0462, of 512: 1.0510 (0.01 / 0.05). Embedding dimension 8: 1.0528. The remaining gap
    /// at 2M rows is mostly estimation (a Bayes oracle that knows the teacher's form gets
    /// ≈ 1.020 there, ≈ 1.007 after 8M rows; see the [`synth`](super) module docs).
    fn default() -> Self {
        SynthRecipe {
            synth: SynthConfig::default(),
            dim: 16,
            options: TrainOptions {
                batch_size: 256,
                lr_dense: 0.04,
                lr_sparse: 0.1,
                ..TrainOptions::default()
            },
            train_rows: DEFAULT_TRAIN_ROWS,
            eval_rows: DEFAULT_EVAL_ROWS,
            arch: ModelArch::Dot,
        }
    }
}

/// Training rows of the default recipe.
pub const DEFAULT_TRAIN_ROWS: u64 = 8_000_000;
/// Evaluation rows of the default recipe.
pub const DEFAULT_EVAL_ROWS: u64 = 200_000;

impl SynthRecipe {
    /// The model architecture this recipe trains.
    pub fn model_config(&self) -> ModelConfig {
        self.arch.config(N_DENSE, &self.synth.table_rows, self.dim)
    }
}

/// What [`train_synthetic`] produced.
#[derive(Debug)]
pub struct SynthOutcome {
    /// The trained model.
    pub trainer: Trainer,
    /// The model on the evaluation rows.
    pub holdout: EvalReport,
    /// The teacher on the same evaluation rows (its NE is the attainable optimum).
    pub teacher: Metrics,
    /// Holdout NE over the teacher's NE (1 = as good as the teacher).
    pub ne_ratio: f64,
    /// Seconds spent building the generator and the evaluation rows.
    pub setup_seconds: f64,
    /// Seconds of the training pass (generation overlapped).
    pub train_seconds: f64,
    /// Seconds of the final evaluation.
    pub eval_seconds: f64,
}

/// Runs `recipe`: builds the generator, trains one pass over `train_rows` generated on a
/// background thread, then evaluates on `eval_rows` held-out rows. `on_step` sees the progress
/// after every step. Deterministic for a given recipe (including its thread count).
pub fn train_synthetic(
    recipe: &SynthRecipe,
    on_step: impl FnMut(&Progress),
) -> Result<SynthOutcome> {
    let t0 = Instant::now();
    let generator = Generator::new(recipe.synth.clone())?;
    let batch = recipe.options.batch_size.max(1);
    let train = generator.stream(Split::Train, recipe.train_rows, batch);
    let (batches, worker) = prefetch(train, 8);
    let mut trainer = Trainer::new(recipe.model_config(), recipe.options)?;
    let setup_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let fitted = trainer.fit_stream(batches, on_step);
    // The worker ends once the receiver is dropped (inside fit_stream) or the rows run out.
    let generated = worker
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
    fitted?;
    generated?;
    let train_seconds = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let mut eval = generator.stream(Split::Evaluation, recipe.eval_rows, 4096);
    let mut eval_batches = Vec::new();
    while let Some(b) = eval.next_batch()? {
        eval_batches.push(b);
    }
    let holdout = trainer.evaluate(&eval_batches)?;
    let teacher = eval.teacher().metrics();
    let ne_ratio = teacher.ne.map_or(f64::NAN, |t| holdout.ne / t);
    Ok(SynthOutcome {
        trainer,
        holdout,
        teacher,
        ne_ratio,
        setup_seconds,
        train_seconds,
        eval_seconds: t2.elapsed().as_secs_f64(),
    })
}

/// Produces the batches of `source` on a background thread, up to `depth` ahead of the consumer.
/// The iterator ends at the end of the source or at its first error, which the thread's result
/// carries (join it after the iterator is done or dropped).
pub fn prefetch<S: BatchSource + 'static>(
    mut source: S,
    depth: usize,
) -> (
    impl Iterator<Item = Batch>,
    std::thread::JoinHandle<Result<()>>,
) {
    let (tx, rx) = mpsc::sync_channel::<Batch>(depth.max(1));
    let worker = std::thread::spawn(move || {
        while let Some(b) = source.next_batch()? {
            if tx.send(b).is_err() {
                break; // the consumer stopped early
            }
        }
        Ok(())
    });
    (rx.into_iter(), worker)
}
