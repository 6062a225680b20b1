//! Helpers shared by the fuzz targets: checking that what a reader accepted is usable downstream.

use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::KernelError;
use quantrec_model::{Model, ModelConfig, ModelError, Scratch};

/// A batch of `size` samples valid for `config`: zero dense features, one id (0) per bag.
pub fn batch_for(config: &ModelConfig, size: usize) -> Batch {
    Batch {
        size,
        n_dense: config.dense_features,
        dense: vec![0.25; size * config.dense_features],
        sparse: config
            .tables
            .iter()
            .map(|_| SparseFeature {
                offsets: (0..=size as i64).collect(),
                ids: vec![0; size],
                weights: None,
            })
            .collect(),
        labels: None,
    }
}

/// Runs `model` on a small valid batch: a model that loaded must predict it, or refuse only
/// because a value on the way is not finite (tables are not scanned at load, so a NaN row or
/// fused scale surfaces here, as a typed error).
pub fn predict_small(model: &Model) {
    let batch = batch_for(model.config(), 2);
    let mut scratch = Scratch::new();
    match model.predict(&batch, &mut scratch) {
        Ok(p) => assert_eq!(p.len(), 2),
        Err(ModelError::NonFinite { .. } | ModelError::Kernel(KernelError::NonFinite { .. })) => {}
        Err(e) => panic!("a model that loaded must predict a valid batch: {e}"),
    }
}
