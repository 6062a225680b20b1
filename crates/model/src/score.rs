//! Scoring data files: opening any file the data crate reads for a model (ids hashed into its
//! table sizes, features checked), iterating its batches up to a row limit, and collecting the
//! logits, probabilities and labels `quantrec predict` writes (`.safetensors` or `.tsv`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use quantrec_data::{Batch, BatchSource, BatchView, Schema, SourceSpec, batch_ops, open_source};

use crate::config::ModelConfig;
use crate::forward::sigmoid;
use crate::state_dict::RawTensor;
use crate::{Model, ModelError, Result, Scratch};

/// Opens `data` for a model of `config`: ids hashed into (or checked against) its table sizes,
/// text read through `schema` (Criteo DAC when `None`); refuses files whose features differ.
pub fn open_data(
    config: &ModelConfig,
    data: &Path,
    schema: Option<&Path>,
    batch_size: usize,
) -> Result<Box<dyn BatchSource>> {
    let table_rows = config.tables.iter().map(|t| t.rows).collect();
    let mut spec = SourceSpec::new(table_rows, batch_size);
    if let Some(s) = schema {
        spec.schema = Some(Schema::from_json_file(s)?);
    }
    let source = open_source(data, &spec)?;
    if source.n_dense() != config.dense_features || source.n_tables() != spec.table_rows.len() {
        return Err(ModelError::DataFeatures {
            path: data.to_path_buf(),
            dense: source.n_dense(),
            sparse: source.n_tables(),
            model_dense: config.dense_features,
            model_sparse: spec.table_rows.len(),
        });
    }
    Ok(source)
}

/// Calls `f` on every batch of `source`, stopping after `rows` samples (the last batch cut).
/// Returns the samples seen.
pub fn for_each_batch<E: From<quantrec_data::DataError>>(
    source: &mut dyn BatchSource,
    rows: Option<u64>,
    mut f: impl FnMut(&Batch) -> std::result::Result<(), E>,
) -> std::result::Result<u64, E> {
    let mut seen = 0u64;
    while rows.is_none_or(|r| seen < r) {
        let Some(mut batch) = source.next_batch()? else {
            break;
        };
        if let Some(r) = rows {
            let left = (r - seen) as usize;
            if batch.size > left {
                batch = batch_ops::slice(&batch, 0, left);
            }
        }
        seen += batch.size as u64;
        f(&batch)?;
    }
    Ok(seen)
}

/// A model's outputs on every sample scored, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Predictions {
    /// Logits.
    pub logits: Vec<f32>,
    /// Probabilities (the sigmoid of the logits, as `Model::predict` computes them).
    pub probabilities: Vec<f32>,
    /// Labels, when every scored batch had them.
    pub labels: Option<Vec<f32>>,
    /// Score dense values that are NaN or infinite instead of refusing them (their scores are
    /// meaningless; off by default).
    pub allow_nonfinite: bool,
    unlabelled: bool,
}

impl Predictions {
    /// Scores `batch` with `model` and appends its outputs (and labels). A NaN or infinite dense
    /// value is refused with [`ModelError::NonFiniteDense`] (numbered across every batch scored)
    /// unless [`allow_nonfinite`](Self::allow_nonfinite) is set.
    pub fn score(&mut self, model: &Model, batch: &Batch, scratch: &mut Scratch) -> Result<()> {
        self.score_view(model, &batch.view(), scratch)
    }

    /// [`Predictions::score`] on borrowed inputs: the same checks, errors and outputs.
    pub fn score_view(
        &mut self,
        model: &Model,
        batch: &BatchView<'_>,
        scratch: &mut Scratch,
    ) -> Result<()> {
        if !self.allow_nonfinite
            && let Some(i) = batch.dense.iter().position(|x| !x.is_finite())
        {
            let nd = batch.n_dense.max(1);
            return Err(ModelError::NonFiniteDense {
                sample: self.logits.len() + i / nd,
                feature: i % nd,
                value: batch.dense[i],
            });
        }
        let logits = model.predict_logits_view(batch, scratch)?;
        self.logits.extend_from_slice(logits);
        self.probabilities
            .extend(logits.iter().map(|&x| sigmoid(x)));
        match (batch.labels, self.unlabelled) {
            (Some(l), false) => self
                .labels
                .get_or_insert_with(Vec::new)
                .extend_from_slice(l),
            (Some(_), true) => {}
            (None, _) => {
                self.unlabelled = true;
                self.labels = None;
            }
        }
        Ok(())
    }

    /// Samples scored.
    pub fn len(&self) -> usize {
        self.logits.len()
    }

    /// Whether nothing was scored.
    pub fn is_empty(&self) -> bool {
        self.logits.is_empty()
    }

    /// The largest relative difference of the probabilities and of the logits from `expected`
    /// (references may be either).
    pub fn max_relative_difference(&self, expected: &[f32]) -> (f32, f32) {
        let worst = |ours: &[f32]| {
            ours.iter()
                .zip(expected)
                .map(|(a, b)| (a - b).abs() / b.abs().max(1e-6))
                .fold(0f32, f32::max)
        };
        (worst(&self.probabilities), worst(&self.logits))
    }

    /// The TSV form: `probability<TAB>logit[<TAB>label]` per sample after a header line.
    pub fn to_tsv(&self) -> String {
        let mut s = String::from("probability\tlogit");
        s.push_str(if self.labels.is_some() {
            "\tlabel\n"
        } else {
            "\n"
        });
        for (i, (p, l)) in self.probabilities.iter().zip(&self.logits).enumerate() {
            // Writing to a String cannot fail.
            let _ = match &self.labels {
                Some(y) => writeln!(s, "{p}\t{l}\t{}", y[i]),
                None => writeln!(s, "{p}\t{l}"),
            };
        }
        s
    }

    /// The safetensors form: `output` (probabilities), `logits` and, when known, `labels`, f32 [B].
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let f = |v: &[f32]| RawTensor {
            dtype: safetensors::Dtype::F32,
            shape: vec![v.len()],
            bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        };
        let mut tensors = vec![
            ("logits", f(&self.logits)),
            ("output", f(&self.probabilities)),
        ];
        if let Some(y) = &self.labels {
            tensors.push(("labels", f(y)));
        }
        safetensors::serialize(tensors, None::<HashMap<String, String>>)
            .map_err(|e| ModelError::safetensors("predictions", e))
    }

    /// Writes `path` as `.safetensors` or `.tsv` (by its extension).
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
            "safetensors" => self.to_safetensors()?,
            "tsv" => self.to_tsv().into_bytes(),
            _ => {
                return Err(ModelError::OutputFormat {
                    path: PathBuf::from(path),
                    expected: ".safetensors or .tsv".into(),
                });
            }
        };
        std::fs::write(path, bytes).map_err(|e| ModelError::io(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preds(labels: Option<Vec<f32>>) -> Predictions {
        Predictions {
            logits: vec![0.0, 1.0],
            probabilities: vec![0.5, 0.75],
            labels,
            allow_nonfinite: false,
            unlabelled: false,
        }
    }

    #[test]
    fn tsv_has_a_label_column_only_with_labels() {
        assert_eq!(
            preds(Some(vec![1.0, 0.0])).to_tsv(),
            "probability\tlogit\tlabel\n0.5\t0\t1\n0.75\t1\t0\n"
        );
        assert_eq!(
            preds(None).to_tsv(),
            "probability\tlogit\n0.5\t0\n0.75\t1\n"
        );
    }

    #[test]
    fn relative_differences_against_a_reference() {
        let (p, l) = preds(None).max_relative_difference(&[0.5, 0.75]);
        assert_eq!(p, 0.0);
        assert!(l > 0.0);
    }

    #[test]
    fn unknown_extensions_are_refused() {
        let err = preds(None).write(Path::new("out.csv")).unwrap_err();
        assert!(matches!(err, ModelError::OutputFormat { .. }), "{err}");
    }
}
