//! Checks a batch against the model before any thread touches it, so the passes can index freely.

use crate::{Result, TrainError};
use quantrec_data::batch::Batch;
use quantrec_model::config::PoolingMode;

use crate::params::Arch;

fn bad<T>(m: String) -> Result<T> {
    Err(TrainError::Batch(m))
}

/// Shapes, offsets, id ranges, weights and (when `need_labels`) labels of `batch`.
pub(crate) fn check_batch(arch: &Arch, batch: &Batch, need_labels: bool) -> Result<()> {
    let n = batch.size;
    if batch.n_dense != arch.n_dense {
        return bad(format!(
            "{} dense features, the model has {}",
            batch.n_dense, arch.n_dense
        ));
    }
    if batch.dense.len() != n * arch.n_dense {
        return bad(format!(
            "dense has {} values, expected {n} × {}",
            batch.dense.len(),
            arch.n_dense
        ));
    }
    if let Some(i) = batch.dense.iter().position(|v| !v.is_finite()) {
        return bad(format!(
            "dense value of sample {} is not finite",
            i / arch.n_dense.max(1)
        ));
    }
    if batch.sparse.len() != arch.tables.len() {
        return bad(format!(
            "{} sparse features, the model has {} tables",
            batch.sparse.len(),
            arch.tables.len()
        ));
    }
    for (t, (ts, f)) in arch.tables.iter().zip(&batch.sparse).enumerate() {
        if f.offsets.len() != n + 1 {
            return bad(format!(
                "table {t}: {} offsets, expected {} (batch + 1, with the trailing end)",
                f.offsets.len(),
                n + 1
            ));
        }
        if f.offsets[0] != 0 || f.offsets[n] != f.ids.len() as i64 {
            return bad(format!(
                "table {t}: offsets must start at 0 and end at {} ids, found {}..{}",
                f.ids.len(),
                f.offsets[0],
                f.offsets[n]
            ));
        }
        if let Some(b) = f.offsets.windows(2).position(|w| w[1] < w[0]) {
            return bad(format!("table {t}: offsets decrease at bag {b}"));
        }
        if let Some(q) = f
            .ids
            .iter()
            .position(|&id| id < 0 || id as u64 >= ts.rows as u64)
        {
            let bag = f.offsets.partition_point(|&o| o <= q as i64) - 1;
            return bad(format!(
                "table {t}, bag {bag}: id {} outside 0..{}",
                f.ids[q], ts.rows
            ));
        }
        match (&f.weights, ts.pooling) {
            (Some(w), _) if w.len() != f.ids.len() => {
                return bad(format!(
                    "table {t}: {} weights for {} ids",
                    w.len(),
                    f.ids.len()
                ));
            }
            (Some(w), _) if w.iter().any(|v| !v.is_finite()) => {
                return bad(format!("table {t}: a per-sample weight is not finite"));
            }
            (None, PoolingMode::WeightedSum) => {
                return bad(format!(
                    "table {t}: weighted pooling without per-sample weights"
                ));
            }
            _ => {}
        }
    }
    if need_labels {
        match &batch.labels {
            None => return bad("labels are required".into()),
            Some(l) if l.len() != n => {
                return bad(format!("{} labels for {n} samples", l.len()));
            }
            Some(l) => {
                if let Some(i) = l.iter().position(|v| !(0.0..=1.0).contains(v)) {
                    return bad(format!("label of sample {i} is {}, not in [0, 1]", l[i]));
                }
            }
        }
    }
    Ok(())
}
