//! Checks a batch against the model before any thread touches it, so the passes can index freely.

use crate::{Result, TrainError};
use quantrec_data::batch::Batch;
use quantrec_model::config::PoolingMode;

use crate::params::Arch;

fn count(what: &'static str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(TrainError::BatchShape {
            what,
            expected,
            found,
        })
    }
}

/// Shapes, offsets, id ranges, weights and (when `need_labels`) labels of `batch`.
pub(crate) fn check_batch(arch: &Arch, batch: &Batch, need_labels: bool) -> Result<()> {
    let n = batch.size;
    count("dense features", arch.n_dense, batch.n_dense)?;
    count(
        "dense values (batch × dense features)",
        n * arch.n_dense,
        batch.dense.len(),
    )?;
    if let Some(i) = batch.dense.iter().position(|v| !v.is_finite()) {
        return Err(TrainError::NonFiniteDense {
            sample: i / arch.n_dense.max(1),
            value: batch.dense[i],
        });
    }
    count(
        "sparse features (one per table)",
        arch.tables.len(),
        batch.sparse.len(),
    )?;
    for (t, (ts, f)) in arch.tables.iter().zip(&batch.sparse).enumerate() {
        if f.offsets.len() != n + 1 {
            return Err(TrainError::BagShape {
                table: t,
                what: "offsets (batch + 1, with the trailing end)",
                expected: n + 1,
                found: f.offsets.len(),
            });
        }
        if f.offsets[0] != 0 || f.offsets[n] != f.ids.len() as i64 {
            return Err(TrainError::BagBounds {
                table: t,
                ids: f.ids.len(),
                first: f.offsets[0],
                last: f.offsets[n],
            });
        }
        if let Some(b) = f.offsets.windows(2).position(|w| w[1] < w[0]) {
            return Err(TrainError::OffsetsDecrease { table: t, bag: b });
        }
        if let Some(q) = f
            .ids
            .iter()
            .position(|&id| id < 0 || id as u64 >= ts.rows as u64)
        {
            let bag = f.offsets.partition_point(|&o| o <= q as i64) - 1;
            return Err(TrainError::IdOutOfRange {
                table: t,
                bag,
                id: f.ids[q],
                rows: ts.rows,
            });
        }
        match (&f.weights, ts.pooling) {
            (Some(w), _) if w.len() != f.ids.len() => {
                return Err(TrainError::BagShape {
                    table: t,
                    what: "per-sample weights (one per id)",
                    expected: f.ids.len(),
                    found: w.len(),
                });
            }
            (Some(w), _) if w.iter().any(|v| !v.is_finite()) => {
                let index = w.iter().position(|v| !v.is_finite()).unwrap_or(0);
                return Err(TrainError::NonFiniteBagWeight {
                    table: t,
                    index,
                    value: w[index],
                });
            }
            (None, PoolingMode::WeightedSum) => {
                return Err(TrainError::MissingBagWeights { table: t });
            }
            _ => {}
        }
    }
    if need_labels {
        match &batch.labels {
            None => return Err(TrainError::MissingLabels),
            Some(l) => {
                count("labels (one per sample)", n, l.len())?;
                if let Some(i) = l.iter().position(|v| !(0.0..=1.0).contains(v)) {
                    return Err(TrainError::LabelRange {
                        sample: i,
                        label: l[i],
                    });
                }
            }
        }
    }
    Ok(())
}
