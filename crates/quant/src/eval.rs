//! Evaluation on pooled, pre-loaded batches: the metrics of a model and its ΔNE / ΔAUC against a
//! reference.

use std::path::Path;

use quantrec_data::Batch;
use quantrec_data::batch_ops;
use quantrec_data::metrics::{Metrics, MetricsAccumulator, delta_auc, delta_ne_percent};
use quantrec_data::{SourceSpec, open_source};
use quantrec_model::{Model, Scratch};

use crate::{QuantError, Result};

/// Samples per pooled batch: large enough that the model splits it into parallel chunks.
pub const POOL_ROWS: usize = 8192;

/// Labelled samples held in memory as a few large batches.
#[derive(Clone, Debug, Default)]
pub struct EvalSet {
    /// The pooled batches (each labelled).
    pub batches: Vec<Batch>,
    /// Samples in all batches.
    pub rows: usize,
}

impl EvalSet {
    /// Pools `batches` into batches of about [`POOL_ROWS`] samples; refuses unlabelled batches.
    pub fn from_batches(batches: &[Batch]) -> Result<EvalSet> {
        let mut out: Vec<Batch> = Vec::new();
        let mut rows = 0;
        for (i, b) in batches.iter().enumerate() {
            if b.labels.is_none() {
                return Err(QuantError::NoLabels { batch: i });
            }
            rows += b.size;
            match out.last_mut() {
                Some(last) if last.size < POOL_ROWS => batch_ops::append(last, b)?,
                _ => out.push(b.clone()),
            }
        }
        Ok(EvalSet { batches: out, rows })
    }

    /// Reads at most `max_rows` samples (all when `None`) of any file [`open_source`] reads.
    pub fn from_file(path: &Path, spec: &SourceSpec, max_rows: Option<usize>) -> Result<EvalSet> {
        let mut source = open_source(path, spec)?;
        let mut batches = Vec::new();
        let mut rows = 0;
        while let Some(b) = source.next_batch()? {
            let take = max_rows.map_or(b.size, |m| (m - rows).min(b.size));
            rows += take;
            if take < b.size {
                batches.push(batch_ops::slice(&b, 0, take));
            } else {
                batches.push(b);
            }
            if max_rows.is_some_and(|m| rows >= m) {
                break;
            }
        }
        if rows == 0 {
            return Err(QuantError::Empty {
                what: format!("data file {}", path.display()),
            });
        }
        EvalSet::from_batches(&batches)
    }

    /// Labels of every sample, batch after batch.
    pub fn labels(&self) -> Vec<f32> {
        self.batches
            .iter()
            .flat_map(|b| b.labels.as_deref().unwrap_or(&[]).iter().copied())
            .collect()
    }
}

/// Probabilities of `model` on every sample of `set`, batch after batch.
pub fn predictions(model: &Model, set: &EvalSet) -> Result<Vec<f32>> {
    let mut scratch = Scratch::new();
    let mut out = Vec::with_capacity(set.rows);
    for b in &set.batches {
        out.extend_from_slice(model.predict(b, &mut scratch)?);
    }
    Ok(out)
}

/// NE, log loss, AUC and calibration of predictions `probs` against the labels of `set`.
pub fn metrics_of(probs: &[f32], set: &EvalSet) -> Result<Metrics> {
    let mut acc = MetricsAccumulator::with_auc();
    acc.extend(probs, &set.labels())?;
    Ok(acc.metrics())
}

/// NE, log loss, AUC and calibration of `model` on `set`.
pub fn evaluate(model: &Model, set: &EvalSet) -> Result<Metrics> {
    metrics_of(&predictions(model, set)?, set)
}

/// A model's accuracy against the reference on the same samples.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Comparison {
    /// NE of the reference.
    pub ne_reference: f64,
    /// NE of the model.
    pub ne: f64,
    /// Relative NE change in percent (positive = worse).
    pub delta_ne_pct: f64,
    /// AUC of the reference.
    pub auc_reference: f64,
    /// AUC of the model.
    pub auc: f64,
    /// AUC change (model − reference; negative = worse).
    pub delta_auc: f64,
    /// Calibration (mean prediction / CTR) of the model.
    pub calibration: f64,
}

impl Comparison {
    /// Compares `metrics` against `reference` (both on the same samples).
    pub fn new(metrics: &Metrics, reference: &Metrics) -> Result<Comparison> {
        let need = |v: Option<f64>, what: &str| {
            v.ok_or_else(|| QuantError::Empty {
                what: format!("{what} (both labels are needed)"),
            })
        };
        let (ne, ne_reference) = (need(metrics.ne, "NE")?, need(reference.ne, "reference NE")?);
        let (auc, auc_reference) = (
            need(metrics.auc, "AUC")?,
            need(reference.auc, "reference AUC")?,
        );
        Ok(Comparison {
            ne_reference,
            ne,
            delta_ne_pct: delta_ne_percent(ne, ne_reference),
            auc_reference,
            auc,
            delta_auc: delta_auc(auc, auc_reference),
            calibration: need(metrics.calibration, "calibration")?,
        })
    }
}

mod file;

pub use file::{BaselineEvaluation, FileEvalOptions, FileEvaluation, evaluate_file};
