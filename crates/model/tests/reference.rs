//! The forward pass against a plain f64 reference on random models, covering what the fixtures do
//! not: self-interaction, cat with unequal table dimensions, mean and weighted pooling, empty bags,
//! and batches split into several chunks.

mod common;

use common::{BatchSpec, assert_close, config_batch};
use quantrec_data::Batch;
use quantrec_kernels::interaction::{PairOrder, pairs};
use quantrec_model::config::{
    DotOrder, Interaction, ModelConfig, Naming, PoolingMode, TableConfig,
};
use quantrec_model::weights::{Linear, TableData};
use quantrec_model::{Model, Plan, Scratch, Weights};

fn linear(l: &Linear, x: &[f64], relu: bool) -> Vec<f64> {
    (0..l.out)
        .map(|j| {
            let v = f64::from(l.bias[j])
                + (0..l.inp)
                    .map(|p| f64::from(l.weight[j * l.inp + p]) * x[p])
                    .sum::<f64>();
            if relu { v.max(0.0) } else { v }
        })
        .collect()
}

/// Logit of sample `s`, computed the obvious way.
fn reference(c: &ModelConfig, w: &Weights, b: &Batch, s: usize) -> f64 {
    let mut x: Vec<f64> = b.dense[s * c.dense_features..(s + 1) * c.dense_features]
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    for l in &w.bottom {
        x = linear(l, &x, true);
    }
    let mut feats = vec![x.clone()];
    for (t, tc) in c.tables.iter().enumerate() {
        let TableData::F32(rows) = &w.tables[t] else {
            unreachable!()
        };
        let f = &b.sparse[t];
        let (lo, hi) = (f.offsets[s] as usize, f.offsets[s + 1] as usize);
        let mut acc = vec![0f64; tc.dim];
        for i in lo..hi {
            let id = f.ids[i] as usize;
            let wt = match tc.pooling {
                PoolingMode::WeightedSum => f64::from(f.weights.as_ref().unwrap()[i]),
                _ => 1.0,
            };
            for (a, v) in acc.iter_mut().zip(&rows[id * tc.dim..(id + 1) * tc.dim]) {
                *a += wt * f64::from(*v);
            }
        }
        if tc.pooling == PoolingMode::Mean && hi > lo {
            acc.iter_mut().for_each(|a| *a /= (hi - lo) as f64);
        }
        feats.push(acc);
    }
    let mut top_in: Vec<f64> = match &c.interaction {
        Interaction::Dot {
            order,
            self_interaction,
        } => {
            let mut v = x.clone();
            for (i, j) in pairs(feats.len(), PairOrder::from(*order), *self_interaction) {
                v.push(feats[i].iter().zip(&feats[j]).map(|(a, b)| a * b).sum());
            }
            v
        }
        Interaction::Cat => feats.concat(),
        Interaction::Dcn { rank, .. } => {
            let x0 = feats.concat();
            let width = x0.len();
            let mut xl = x0.clone();
            for cl in &w.cross {
                let vx: Vec<f64> = (0..*rank)
                    .map(|r| {
                        (0..width)
                            .map(|p| f64::from(cl.v[r * width + p]) * xl[p])
                            .sum()
                    })
                    .collect();
                xl = (0..width)
                    .map(|q| {
                        let u = f64::from(cl.bias[q])
                            + (0..*rank)
                                .map(|r| f64::from(cl.w[q * rank + r]) * vx[r])
                                .sum::<f64>();
                        x0[q] * u + xl[q]
                    })
                    .collect();
            }
            xl
        }
    };
    let last = w.top.len() - 1;
    for (i, l) in w.top.iter().enumerate() {
        top_in = linear(l, &top_in, i < last);
    }
    top_in[0]
}

fn random_batch(c: &ModelConfig, size: usize, seed: u64) -> Batch {
    let spec = BatchSpec {
        dense: (0.0, 4.0),
        min_len: 0,
        len_span: 4,
        skewed: false,
        weights: Some((-1.0, 2.0)),
    };
    config_batch(c, size, seed, &spec)
}

fn check(interaction: Interaction, dims: [usize; 3], bottom_out: usize) {
    let poolings = [
        PoolingMode::Sum,
        PoolingMode::Mean,
        PoolingMode::WeightedSum,
    ];
    let c = ModelConfig {
        dense_features: 6,
        bottom_mlp: vec![12, bottom_out],
        tables: dims
            .iter()
            .zip(poolings)
            .enumerate()
            .map(|(t, (&dim, pooling))| TableConfig {
                rows: 20 + 7 * t,
                dim,
                pooling,
            })
            .collect(),
        interaction: interaction.clone(),
        top_mlp: vec![10, 5, 1],
        naming: Naming::Dlrm,
    };
    let w = Weights::random(&c, 21);
    let b = random_batch(&c, 37, 4);
    let mut m = Model::from_parts(&c, &w, &Plan::f32(&c)).unwrap();
    m.set_chunk_size(10);
    let got = m.predict_logits(&b, &mut Scratch::new()).unwrap().to_vec();
    let want: Vec<f32> = (0..b.size)
        .map(|s| reference(&c, &w, &b, s) as f32)
        .collect();
    assert_close(&format!("{interaction:?}"), &got, &want, 1e-4, 1e-2);
}

#[test]
fn dot_in_both_orders_with_and_without_self_interaction() {
    for order in [DotOrder::LowerByRow, DotOrder::UpperByRow] {
        for self_interaction in [false, true] {
            check(
                Interaction::Dot {
                    order,
                    self_interaction,
                },
                [4, 4, 4],
                4,
            );
        }
    }
}

#[test]
fn cat_with_unequal_dimensions() {
    check(Interaction::Cat, [3, 8, 5], 7);
}

#[test]
fn dcn_with_unequal_dimensions() {
    check(Interaction::Dcn { layers: 3, rank: 4 }, [3, 8, 5], 7);
}
