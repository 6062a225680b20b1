//! Shared helpers of the model crate's integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::rng::Rng;
use quantrec_model::config::ModelConfig;
use quantrec_model::forward::{Observer, View};
use quantrec_model::{Model, Scratch};

use quantrec_model::import::{ImportOverrides, Imported, import_file};
use quantrec_model::inputs::{InputFile, load_inputs};

/// Path of a shared fixture.
pub fn fixture(name: &str) -> PathBuf {
    quantrec_testkit::fixture(env!("CARGO_MANIFEST_DIR"), name)
}

/// Imports `NAME.safetensors`.
pub fn import(name: &str) -> Imported {
    import_file(
        &fixture(&format!("{name}.safetensors")),
        &ImportOverrides::default(),
    )
    .unwrap_or_else(|e| panic!("import {name}: {e}"))
}

/// Reads `NAME.inputs.safetensors`.
pub fn inputs(name: &str) -> InputFile {
    load_inputs(&fixture(&format!("{name}.inputs.safetensors"))).unwrap()
}

/// A fresh path in the temp directory (removed by the caller).
pub fn temp_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "quantrec-model-test-{}-{tag}.safetensors",
        std::process::id()
    ))
}

/// Asserts `|got - want| <= rel · max(|want|, floor)` elementwise.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rel: f32, floor: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = rel * w.abs().max(floor);
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: got {g}, expected {w} (tolerance {tol})"
        );
    }
}

/// Records every layer's input range (over all chunks) and output values.
#[derive(Default)]
pub struct Record {
    pub ranges: BTreeMap<String, (f32, f32)>,
    pub outputs: BTreeMap<String, Vec<f32>>,
}

impl Observer for Record {
    fn observe(&mut self, layer: &str, input: View<'_>, output: View<'_>) {
        let r = self
            .ranges
            .entry(layer.to_string())
            .or_insert((f32::MAX, f32::MIN));
        for &v in input.data {
            r.0 = r.0.min(v);
            r.1 = r.1.max(v);
        }
        self.outputs
            .entry(layer.to_string())
            .or_default()
            .extend_from_slice(output.data);
    }
}

/// Probabilities of `b` and what an observer recorded on the way.
pub fn observed(model: &Model, b: &Batch) -> (Vec<f32>, Record) {
    let mut rec = Record::default();
    let p = model
        .predict_observed(b, &mut Scratch::new(), &mut rec)
        .unwrap()
        .to_vec();
    (p, rec)
}

/// `size` samples of `cfg`: dense values uniform in [-1, 3), 0 to `max_ids` uniform ids per bag.
pub fn multi_hot_batch(cfg: &ModelConfig, size: usize, seed: u64, max_ids: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let nd = cfg.dense_features;
    let dense = (0..size * nd).map(|_| rng.uniform_f32(-1.0, 3.0)).collect();
    let sparse = cfg
        .tables
        .iter()
        .map(|t| {
            let lengths: Vec<usize> = (0..size).map(|_| rng.below(max_ids + 1) as usize).collect();
            let n = lengths.iter().sum();
            let ids = (0..n).map(|_| rng.below(t.rows as u64) as i64).collect();
            SparseFeature::from_lengths(&lengths, ids)
        })
        .collect();
    Batch {
        size,
        n_dense: nd,
        dense,
        sparse,
        labels: None,
    }
}

/// A rayon pool of `threads` threads.
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}
