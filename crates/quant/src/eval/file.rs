//! Evaluation streamed over a labelled data file (`quantrec eval`): an artifact, optionally a
//! baseline on the same rows, NE, log loss, AUC and calibration, ΔNE and ΔAUC.

use std::fmt::{self, Display, Formatter};
use std::path::PathBuf;
use std::time::Instant;

use quantrec_data::metrics::{Metrics, MetricsAccumulator, delta_auc, delta_ne_percent};
use quantrec_model::artifact::Artifact;
use quantrec_model::score::{for_each_batch, open_data};
use quantrec_model::{Model, Scratch};
use serde::Serialize;

use crate::{QuantError, Result};

/// What `evaluate_file` evaluates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEvalOptions {
    /// The artifact to evaluate.
    pub model: PathBuf,
    /// Labelled data: Criteo TSV (optionally gzip), schema-described text, or a batch file; text
    /// ids are hashed into the model's table sizes.
    pub data: PathBuf,
    /// A second artifact run on the same rows (e.g. the f32 model).
    pub baseline: Option<PathBuf>,
    /// Evaluate only the first rows.
    pub rows: Option<u64>,
    /// JSON schema of a text file (Criteo when `None`).
    pub schema: Option<PathBuf>,
    /// Samples per batch while streaming.
    pub batch_size: usize,
}

impl FileEvalOptions {
    /// `model` on `data`, every row, batches of 4096, no baseline.
    pub fn new(model: impl Into<PathBuf>, data: impl Into<PathBuf>) -> Self {
        FileEvalOptions {
            model: model.into(),
            data: data.into(),
            baseline: None,
            rows: None,
            schema: None,
            batch_size: 4096,
        }
    }
}

/// The baseline's part of the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BaselineEvaluation {
    /// The baseline artifact.
    pub model: String,
    /// Its metrics on the same rows.
    pub metrics: Metrics,
}

/// The report of `quantrec eval`: `Display` is the table, `Serialize` the JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FileEvaluation {
    /// The artifact.
    pub model: String,
    /// The data file.
    pub data: String,
    /// Its metrics.
    pub metrics: Metrics,
    /// The baseline, when given.
    pub baseline: Option<BaselineEvaluation>,
    /// Relative NE change against the baseline (%).
    pub delta_ne_percent: Option<f64>,
    /// AUC change against the baseline.
    pub delta_auc: Option<f64>,
    /// Seconds of scoring.
    pub seconds: f64,
    /// Rows evaluated.
    #[serde(skip)]
    pub rows: u64,
}

fn load(path: &std::path::Path) -> Result<Model> {
    Ok(Artifact::load(path)?.model)
}

fn input_rows(m: &Model) -> (usize, Vec<usize>) {
    let c = m.config();
    (c.dense_features, c.tables.iter().map(|t| t.rows).collect())
}

/// Streams `options.data` through the model (and the baseline) and reports their metrics.
pub fn evaluate_file(options: &FileEvalOptions) -> Result<FileEvaluation> {
    let model = load(&options.model)?;
    let baseline = options.baseline.as_deref().map(load).transpose()?;
    if baseline
        .as_ref()
        .is_some_and(|b| input_rows(b) != input_rows(&model))
    {
        return Err(QuantError::BaselineInputs);
    }
    let data = &options.data;
    let mut source = open_data(
        model.config(),
        data,
        options.schema.as_deref(),
        options.batch_size,
    )?;
    let mut acc = MetricsAccumulator::with_auc();
    let mut base_acc = MetricsAccumulator::with_auc();
    let (mut scratch, mut base_scratch) = (Scratch::new(), Scratch::new());
    let start = Instant::now();
    let rows = for_each_batch(source.as_mut(), options.rows, |batch| -> Result<()> {
        let Some(labels) = &batch.labels else {
            return Err(QuantError::Unlabelled { path: data.clone() });
        };
        acc.extend(model.predict(batch, &mut scratch)?, labels)?;
        if let Some(b) = &baseline {
            base_acc.extend(b.predict(batch, &mut base_scratch)?, labels)?;
        }
        Ok(())
    })?;
    let seconds = start.elapsed().as_secs_f64();
    if rows == 0 {
        return Err(QuantError::TooFewRows {
            path: data.clone(),
            rows: 0,
            needed: 1,
        });
    }
    let m = acc.metrics();
    let base = baseline.as_ref().map(|_| base_acc.metrics());
    let delta_ne = base
        .as_ref()
        .and_then(|b| Some(delta_ne_percent(m.ne?, b.ne?)));
    let delta = base.as_ref().and_then(|b| Some(delta_auc(m.auc?, b.auc?)));
    Ok(FileEvaluation {
        model: options.model.display().to_string(),
        data: data.display().to_string(),
        metrics: m,
        baseline: base.map(|metrics| BaselineEvaluation {
            model: options
                .baseline
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            metrics,
        }),
        delta_ne_percent: delta_ne,
        delta_auc: delta,
        seconds,
        rows,
    })
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

fn metrics_row(f: &mut Formatter<'_>, name: &str, m: &Metrics) -> fmt::Result {
    writeln!(
        f,
        "{name:<10} {:>9} {:>9} {:>9} {:>11} {:>9}",
        fmt_opt(m.ne, 5),
        fmt_opt(m.log_loss, 5),
        fmt_opt(m.auc, 5),
        fmt_opt(m.calibration, 4),
        fmt_opt(m.ctr, 4)
    )
}

/// The table: rows and time, then NE, log loss, AUC, calibration and CTR of the model (and the
/// baseline with ΔNE and ΔAUC). Every line ends with a newline.
impl Display for FileEvaluation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} rows of {} in {:.2}s",
            self.rows, self.data, self.seconds
        )?;
        writeln!(
            f,
            "{:<10} {:>9} {:>9} {:>9} {:>11} {:>9}",
            "", "NE", "log loss", "AUC", "calibration", "CTR"
        )?;
        metrics_row(f, "model", &self.metrics)?;
        if let Some(b) = &self.baseline {
            metrics_row(f, "baseline", &b.metrics)?;
            writeln!(
                f,
                "ΔNE {} %   ΔAUC {}",
                self.delta_ne_percent
                    .map_or("-".into(), |x| format!("{x:+.4}")),
                self.delta_auc.map_or("-".into(), |x| format!("{x:+.5}"))
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(ne: Option<f64>) -> Metrics {
        Metrics {
            count: 3,
            ctr: Some(0.25),
            log_loss: Some(0.5),
            ne,
            auc: Some(0.7),
            calibration: Some(1.0),
        }
    }

    #[test]
    fn the_table_shows_the_baseline_and_deltas() {
        let e = FileEvaluation {
            model: "m".into(),
            data: "d.tsv".into(),
            metrics: metrics(Some(0.9)),
            baseline: Some(BaselineEvaluation {
                model: "b".into(),
                metrics: metrics(None),
            }),
            delta_ne_percent: None,
            delta_auc: Some(0.0),
            seconds: 1.0,
            rows: 3,
        };
        let text = e.to_string();
        assert!(text.starts_with("3 rows of d.tsv in 1.00s\n"), "{text}");
        assert!(text.contains("model        0.90000"), "{text}");
        let baseline_line = text.lines().find(|l| l.starts_with("baseline")).unwrap();
        assert_eq!(baseline_line.split_whitespace().nth(1), Some("-"), "{text}");
        assert!(text.ends_with("ΔNE - %   ΔAUC +0.00000\n"), "{text}");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["baseline"]["model"], "b");
        assert!(v["baseline"]["metrics"]["ne"].is_null() && v.get("rows").is_none());
    }

    #[test]
    fn options_default_to_every_row_in_batches_of_4096() {
        let o = FileEvalOptions::new("m", "d");
        assert_eq!((o.batch_size, o.rows, o.baseline), (4096, None, None));
    }
}
