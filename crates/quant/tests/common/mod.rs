//! A tiny model whose labels are drawn from its own f32 predictions, so every perturbation of the
//! model costs NE.

#![allow(dead_code)]

use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::rng::Rng;
use quantrec_model::weights::TableData;
use quantrec_model::{Model, ModelConfig, Plan, Scratch, Weights};
use quantrec_quant::eval::EvalSet;
use quantrec_train::suggested_config;

/// Rows of the tiny model's tables.
pub const TABLE_ROWS: [usize; 8] = [100, 200, 300, 500, 800, 1000, 50, 2000];

/// The tiny architecture (13 dense features, 8 tables of dim 8).
pub fn config() -> ModelConfig {
    suggested_config(13, &TABLE_ROWS, 8)
}

/// Random weights with tables of std `table_std`.
pub fn weights(seed: u64, table_std: f32) -> Weights {
    let c = config();
    let mut w = Weights::random(&c, seed);
    let mut rng = Rng::new(seed ^ 0x55);
    for (t, tc) in w.tables.iter_mut().zip(&c.tables) {
        *t = TableData::F32(rng.normal_vec(tc.rows * tc.dim, table_std));
    }
    w
}

/// Unlabelled random inputs: dense in [0, 4), one id per table, Zipf-ish (squared uniform).
pub fn inputs(rows: usize, seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let dense = (0..rows * 13).map(|_| rng.uniform_f32(0.0, 4.0)).collect();
    let sparse = TABLE_ROWS
        .iter()
        .map(|&r| {
            let ids = (0..rows)
                .map(|_| {
                    let u = rng.uniform();
                    ((u * u) * r as f64) as i64
                })
                .collect();
            SparseFeature::one_hot(ids)
        })
        .collect();
    Batch::unlabeled(rows, 13, dense, sparse)
}

/// `rows` samples labelled by sampling the f32 model built from `w`.
pub fn labelled(w: &Weights, rows: usize, seed: u64) -> Batch {
    let model = Model::from_parts(&config(), w, &Plan::f32(&config())).unwrap();
    let mut b = inputs(rows, seed);
    let probs = model.predict(&b, &mut Scratch::new()).unwrap().to_vec();
    let mut rng = Rng::new(seed ^ 0xabc);
    b.labels = Some(
        probs
            .iter()
            .map(|&p| if rng.uniform() < p as f64 { 1.0 } else { 0.0 })
            .collect(),
    );
    b
}

/// An evaluation set of `rows` labelled samples.
pub fn set(w: &Weights, rows: usize, seed: u64) -> EvalSet {
    EvalSet::from_batches(&[labelled(w, rows, seed)]).unwrap()
}
