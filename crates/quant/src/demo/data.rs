//! The demo's data and fp32 training: synthetic Criteo-like rows from the training recipe, or a
//! real click log split into train / calibration / holdout.

use std::path::{Path, PathBuf};
use std::time::Instant;

use quantrec_data::Batch;
use quantrec_data::batch_ops;
use quantrec_data::source::{self, SourceSpec};
use quantrec_data::synth::{Generator, Split};
use quantrec_model::import::{ImportOverrides, import_state_dict};
use quantrec_model::state_dict::StateDict;
use quantrec_model::{ModelConfig, Weights};
use quantrec_train::recipe::SynthRecipe;
use quantrec_train::{TrainOptions, Trainer};
use serde::Serialize;

use super::{DemoOptions, Story};
use crate::eval::EvalSet;
use crate::{QuantError, Result};

/// Calibration rows of the demo.
pub const CALIBRATION_ROWS: usize = 8192;
/// Rows every categorical column of a click log is hashed into.
pub const FILE_TABLE_ROWS: usize = 20_000;
/// Fewest rows of a click log the demo runs on.
pub const MIN_FILE_ROWS: usize = 100;

/// Where the demo's rows came from (the report's `data` object).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DemoData {
    /// Criteo-like rows from the synthetic generator.
    Synthetic {
        /// Generator seed.
        seed: u64,
        /// Rows of every table.
        table_rows: Vec<usize>,
        /// Zipf exponent of id popularity.
        zipf: f64,
        /// Training rows.
        train_rows: u64,
        /// Calibration rows.
        calibration_rows: usize,
        /// Evaluation rows.
        eval_rows: u64,
    },
    /// A click log.
    File {
        /// The file.
        path: PathBuf,
        /// Rows read.
        rows: usize,
        /// Rows held out for evaluation (the last fifth).
        holdout_rows: usize,
        /// Rows every table is hashed into.
        table_rows: usize,
    },
}

/// Data, trained model and evaluation rows, whatever their source.
pub struct Trained {
    /// The trained model's architecture (through its state dict and the importer).
    pub config: ModelConfig,
    /// Its weights.
    pub weights: Weights,
    /// Calibration rows.
    pub calib: EvalSet,
    /// Evaluation rows.
    pub eval: EvalSet,
    /// Where the rows came from.
    pub source: DemoData,
    /// The generator teacher's NE (synthetic data only).
    pub teacher_ne: Option<f64>,
    /// Seconds of training.
    pub train_seconds: f64,
    /// Rows trained on.
    pub train_rows: u64,
    /// The trainer and recipe of synthetic data (day 2 continues from them).
    pub synthetic: Option<(Trainer, SynthRecipe)>,
}

/// The (config, weights) of a trainer, through its state dict and the importer (what a PyTorch
/// user's model goes through too).
pub fn import_trained(trainer: &Trainer) -> Result<(ModelConfig, Weights)> {
    let bytes = trainer.to_safetensors()?;
    let sd = StateDict::from_bytes("trained model", &bytes)?;
    let imported = import_state_dict(sd, &ImportOverrides::default())?;
    Ok((imported.config, imported.weights))
}

/// Every batch of `src`.
pub fn collect(mut src: impl source::BatchSource) -> Result<Vec<Batch>> {
    let mut out = Vec::new();
    while let Some(b) = src.next_batch()? {
        out.push(b);
    }
    Ok(out)
}

/// The synthetic recipe the demo trains: the default one, with fewer rows when `quick`.
pub fn demo_recipe(options: &DemoOptions) -> SynthRecipe {
    let mut recipe = SynthRecipe::default();
    recipe.train_rows = options.train_rows.unwrap_or(if options.quick {
        1_500_000
    } else {
        recipe.train_rows
    });
    recipe.eval_rows = if options.quick { 50_000 } else { 100_000 };
    recipe.arch = options.arch;
    recipe
}

/// Trains the default fp32 DLRM on synthetic rows; calibration and evaluation rows come from the
/// generator's independent streams.
pub fn train_synthetic(options: &DemoOptions, story: &mut Story<'_>) -> Result<Trained> {
    let recipe = demo_recipe(options);
    let tables = &recipe.synth.table_rows;
    story.line(format!(
        "synthetic Criteo-like data: 13 dense, {} tables ({}–{} rows, Zipf {}), {} train / {} eval rows",
        tables.len(),
        tables.iter().min().unwrap_or(&0),
        tables.iter().max().unwrap_or(&0),
        recipe.synth.zipf_exponent,
        recipe.train_rows,
        recipe.eval_rows
    ));
    let out = story.train(recipe.train_rows, |progress| {
        quantrec_train::recipe::train_synthetic(&recipe, progress)
    })?;
    let teacher_ne = out.teacher.ne;
    story.line(format!(
        "trained in {:.1} s ({:.0} samples/s): holdout NE {:.5}, AUC {:.4}; teacher NE {} (ratio {:.4})",
        out.train_seconds,
        recipe.train_rows as f64 / out.train_seconds.max(1e-9),
        out.holdout.ne,
        out.holdout.auc,
        teacher_ne.map_or("undefined".into(), |v| format!("{v:.5}")),
        out.ne_ratio
    ));
    let (config, weights) = import_trained(&out.trainer)?;
    let generator = Generator::new(recipe.synth.clone())?;
    let calib = EvalSet::from_batches(&collect(generator.stream(
        Split::Calibration,
        CALIBRATION_ROWS as u64,
        1024,
    ))?)?;
    let eval = EvalSet::from_batches(&collect(generator.stream(
        Split::Evaluation,
        recipe.eval_rows,
        1024,
    ))?)?;
    Ok(Trained {
        config,
        weights,
        calib,
        eval,
        source: DemoData::Synthetic {
            seed: recipe.synth.seed,
            table_rows: recipe.synth.table_rows.clone(),
            zipf: recipe.synth.zipf_exponent,
            train_rows: recipe.train_rows,
            calibration_rows: CALIBRATION_ROWS,
            eval_rows: recipe.eval_rows,
        },
        teacher_ne,
        train_seconds: out.train_seconds,
        train_rows: recipe.train_rows,
        synthetic: Some((out.trainer, recipe)),
    })
}

/// `b` cut into batches of 1024 samples.
fn chunks(b: &Batch) -> Vec<Batch> {
    (0..b.size)
        .step_by(1024)
        .map(|s| batch_ops::slice(b, s, (s + 1024).min(b.size)))
        .collect()
}

/// A click log: the last 20% of rows are held out for evaluation, calibration takes the first
/// training rows, and the model trains one pass over the rest.
pub fn train_file(
    path: &Path,
    arch: quantrec_train::ModelArch,
    story: &mut Story<'_>,
) -> Result<Trained> {
    let table_rows = vec![FILE_TABLE_ROWS; 26];
    let spec = SourceSpec::new(table_rows.clone(), 1024);
    let mut src = source::open_source(path, &spec)?;
    let all = source::read_all(&mut *src)?;
    if all.labels.is_none() {
        return Err(QuantError::Unlabelled { path: path.into() });
    }
    let n = all.size;
    if n < MIN_FILE_ROWS {
        return Err(QuantError::TooFewRows {
            path: path.into(),
            rows: n as u64,
            needed: MIN_FILE_ROWS as u64,
        });
    }
    let hold = n / 5;
    let train = batch_ops::slice(&all, 0, n - hold);
    let holdout = batch_ops::slice(&all, n - hold, n);
    story.line(format!(
        "{}: {n} rows ({} train, {hold} held out), tables hashed to {} rows, {} interaction",
        path.display(),
        n - hold,
        table_rows[0],
        arch.name()
    ));
    let config = arch.config(all.n_dense, &table_rows, 16);
    // The trainer's defaults with the synthetic recipe's batch size: measured better on the
    // 8k-row Criteo sample (holdout NE 0.884) than the synthetic recipe's larger learning rates.
    let options = TrainOptions {
        batch_size: 256,
        ..TrainOptions::default()
    };
    let mut trainer = Trainer::new(config, options)?;
    let batches: Vec<Batch> = (0..train.size)
        .step_by(options.batch_size)
        .map(|s| batch_ops::slice(&train, s, (s + options.batch_size).min(train.size)))
        .collect();
    let t = Instant::now();
    story.train(train.size as u64, |progress| {
        trainer.fit(&batches, progress)
    })?;
    let train_seconds = t.elapsed().as_secs_f64();
    let report = trainer.evaluate(std::iter::once(&holdout))?;
    story.line(format!(
        "trained in {train_seconds:.1} s: holdout NE {:.5}, AUC {:.4}",
        report.ne, report.auc
    ));
    let (config, weights) = import_trained(&trainer)?;
    let calib_rows = train.size.min(CALIBRATION_ROWS);
    let calib = EvalSet::from_batches(&chunks(&batch_ops::slice(&train, 0, calib_rows)))?;
    let eval = EvalSet::from_batches(&chunks(&holdout))?;
    Ok(Trained {
        config,
        weights,
        calib,
        eval,
        source: DemoData::File {
            path: path.into(),
            rows: n,
            holdout_rows: hold,
            table_rows: table_rows[0],
        },
        teacher_ne: None,
        train_seconds,
        train_rows: train.size as u64,
        synthetic: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_recipe_trains_fewer_rows() {
        let quick = demo_recipe(&DemoOptions {
            quick: true,
            ..DemoOptions::default()
        });
        assert_eq!((quick.train_rows, quick.eval_rows), (1_500_000, 50_000));
        let full = demo_recipe(&DemoOptions::default());
        assert_eq!(full.train_rows, SynthRecipe::default().train_rows);
        assert_eq!(full.eval_rows, 100_000);
        let given = demo_recipe(&DemoOptions {
            train_rows: Some(123),
            quick: true,
            ..DemoOptions::default()
        });
        assert_eq!(given.train_rows, 123);
    }

    #[test]
    fn the_data_description_serializes_with_its_kind() {
        let d = DemoData::File {
            path: "x.tsv".into(),
            rows: 10,
            holdout_rows: 2,
            table_rows: 5,
        };
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(
            v.to_string(),
            r#"{"holdout_rows":2,"kind":"file","path":"x.tsv","rows":10,"table_rows":5}"#
        );
    }
}
