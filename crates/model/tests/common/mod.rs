//! Shared helpers of the model crate's integration tests.
#![allow(dead_code)]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;

use quantrec_data::{Batch, BatchView, SparseFeature, SparseView};
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

/// A batch's ids as one KeyedJaggedTensor: every table's ids back to back, the offsets of all
/// `n_tables * size` bags (with the trailing end), and the weights when every table has them.
pub struct Kjt {
    /// All ids, table-major.
    pub values: Vec<i64>,
    /// Bag starts into `values`, `n_tables * size + 1` of them.
    pub offsets: Vec<i64>,
    /// Per-id weights.
    pub weights: Option<Vec<f32>>,
}

/// `b`'s sparse features as a [`Kjt`] (each table's offsets shifted by the ids before it).
pub fn kjt(b: &Batch) -> Kjt {
    let mut k = Kjt {
        values: Vec::new(),
        offsets: vec![0],
        weights: b.sparse.iter().all(|f| f.weights.is_some()).then(Vec::new),
    };
    for f in &b.sparse {
        let base = k.values.len() as i64;
        k.offsets
            .extend(f.offsets[1..].iter().map(|&o| base + o - f.offsets[0]));
        k.values.extend_from_slice(&f.ids);
        if let (Some(w), Some(fw)) = (&mut k.weights, &f.weights) {
            w.extend_from_slice(fw);
        }
    }
    k
}

/// `b` read through windows of `k` over its values, as the Python package views KJT inputs:
/// dense borrowed from `b`, table `t`'s offsets `k.offsets[t * size..=(t + 1) * size]` unshifted.
pub fn kjt_view<'a>(b: &'a Batch, k: &'a Kjt) -> BatchView<'a> {
    let n = b.size;
    let mut start = 0;
    let sparse = b
        .sparse
        .iter()
        .enumerate()
        .map(|(t, f)| {
            let (lo, hi) = (start, start + f.ids.len());
            start = hi;
            SparseView {
                offsets: Cow::Borrowed(&k.offsets[t * n..=(t + 1) * n]),
                base: lo as i64,
                ids: &k.values[lo..hi],
                weights: k.weights.as_deref().map(|w| &w[lo..hi]),
            }
        })
        .collect();
    BatchView {
        size: n,
        n_dense: b.n_dense,
        dense: &b.dense,
        sparse,
        labels: b.labels.as_deref(),
    }
}

/// How [`random_batch`] draws a batch: the dense values, then for each table the bag lengths, its
/// ids and (optionally) one weight per id, in that order from one [`Rng`].
pub struct BatchSpec {
    /// Dense values uniform in `[lo, hi)`.
    pub dense: (f32, f32),
    /// Bag lengths `min_len + below(len_span)`.
    pub min_len: usize,
    /// See [`BatchSpec::min_len`].
    pub len_span: u64,
    /// Ids `u³ · rows` for `u` uniform in [0, 1) (rows repeat within the batch), else uniform.
    pub skewed: bool,
    /// Per-id weights uniform in `[lo, hi)`, or none.
    pub weights: Option<(f32, f32)>,
}

/// `size` samples of `n_dense` dense features and one bag per table of `rows` rows, drawn as
/// `spec` says from `Rng::new(seed)`.
pub fn random_batch(
    n_dense: usize,
    rows: &[usize],
    size: usize,
    seed: u64,
    spec: &BatchSpec,
) -> Batch {
    let mut rng = Rng::new(seed);
    let (lo, hi) = spec.dense;
    let dense = (0..size * n_dense)
        .map(|_| rng.uniform_f32(lo, hi))
        .collect();
    let sparse = rows
        .iter()
        .map(|&rows| {
            let lengths: Vec<usize> = (0..size)
                .map(|_| spec.min_len + rng.below(spec.len_span) as usize)
                .collect();
            let n: usize = lengths.iter().sum();
            let ids = (0..n)
                .map(|_| {
                    if spec.skewed {
                        let u = rng.uniform();
                        ((u * u * u * rows as f64) as i64).min(rows as i64 - 1)
                    } else {
                        rng.below(rows as u64) as i64
                    }
                })
                .collect();
            let mut f = SparseFeature::from_lengths(&lengths, ids);
            if let Some((lo, hi)) = spec.weights {
                f.weights = Some((0..n).map(|_| rng.uniform_f32(lo, hi)).collect());
            }
            f
        })
        .collect();
    Batch::unlabeled(size, n_dense, dense, sparse)
}

/// [`random_batch`] for the tables of `cfg`.
pub fn config_batch(cfg: &ModelConfig, size: usize, seed: u64, spec: &BatchSpec) -> Batch {
    let rows: Vec<usize> = cfg.tables.iter().map(|t| t.rows).collect();
    random_batch(cfg.dense_features, &rows, size, seed, spec)
}

/// Multi-hot: bag lengths 0..=5 (empty bags included), repeated ids, per-id weights.
pub fn multi_hot(model: &Model, size: usize, seed: u64) -> Batch {
    let spec = BatchSpec {
        dense: (0.0, 3.0),
        min_len: 0,
        len_span: 6,
        skewed: true,
        weights: Some((-1.0, 2.0)),
    };
    config_batch(model.config(), size, seed, &spec)
}

/// `size` samples of `cfg`: dense values uniform in [-1, 3), 0 to `max_ids` uniform ids per bag.
pub fn multi_hot_batch(cfg: &ModelConfig, size: usize, seed: u64, max_ids: u64) -> Batch {
    let spec = BatchSpec {
        dense: (-1.0, 3.0),
        min_len: 0,
        len_span: max_ids + 1,
        skewed: false,
        weights: None,
    };
    config_batch(cfg, size, seed, &spec)
}

/// A rayon pool of `threads` threads.
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}
