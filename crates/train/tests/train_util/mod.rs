//! Shared helpers of the trainer tests: small configs and random batches.
#![allow(dead_code)]

use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::rng::Rng;
use quantrec_model::ModelConfig;
use quantrec_model::config::{DotOrder, Interaction, Naming, PoolingMode, TableConfig};

/// A small model: `n_dense` dense features, bottom MLP, tables `(rows, dim, pooling)`, top MLP.
pub fn config(
    n_dense: usize,
    bottom: &[usize],
    tables: &[(usize, usize, PoolingMode)],
    interaction: Interaction,
    top: &[usize],
    naming: Naming,
) -> ModelConfig {
    ModelConfig {
        dense_features: n_dense,
        bottom_mlp: bottom.to_vec(),
        tables: tables
            .iter()
            .map(|&(rows, dim, pooling)| TableConfig { rows, dim, pooling })
            .collect(),
        interaction,
        top_mlp: top.to_vec(),
        naming,
    }
}

/// Dot interaction.
pub fn dot(order: DotOrder, self_interaction: bool) -> Interaction {
    Interaction::Dot {
        order,
        self_interaction,
    }
}

/// A random batch for `config`: normal dense features, bags of 0..=max_bag ids (some empty),
/// per-sample weights for weighted tables, random labels.
pub fn random_batch(config: &ModelConfig, size: usize, max_bag: usize, seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let dense = rng.normal_vec(size * config.dense_features, 1.0);
    let sparse = config
        .tables
        .iter()
        .map(|t| {
            let lengths: Vec<usize> = (0..size)
                .map(|_| rng.below(max_bag as u64 + 1) as usize)
                .collect();
            let n: usize = lengths.iter().sum();
            let ids = (0..n).map(|_| rng.below(t.rows as u64) as i64).collect();
            let mut f = SparseFeature::from_lengths(&lengths, ids);
            if t.pooling == PoolingMode::WeightedSum {
                f.weights = Some((0..n).map(|_| rng.uniform_f32(0.2, 1.5)).collect());
            }
            f
        })
        .collect();
    let labels = (0..size).map(|_| (rng.below(2)) as f32).collect();
    Batch {
        size,
        n_dense: config.dense_features,
        dense,
        sparse,
        labels: Some(labels),
    }
}

/// A learnable one-hot problem: the click logit is a fixed linear function of the dense features
/// plus a per-id effect in each table; labels are drawn from its sigmoid.
pub struct Teacher {
    dense_w: Vec<f32>,
    effects: Vec<Vec<f32>>,
    bias: f32,
}

impl Teacher {
    /// A teacher for `config` (one-hot tables).
    pub fn new(config: &ModelConfig, seed: u64) -> Teacher {
        let mut rng = Rng::new(seed);
        Teacher {
            dense_w: rng.normal_vec(config.dense_features, 0.6),
            effects: config
                .tables
                .iter()
                .map(|t| rng.normal_vec(t.rows, 0.8))
                .collect(),
            bias: -1.0,
        }
    }

    /// `size` samples with Zipf-ish ids.
    pub fn batch(&self, config: &ModelConfig, size: usize, rng: &mut Rng) -> Batch {
        let nd = config.dense_features;
        let dense = rng.normal_vec(size * nd, 1.0);
        let ids: Vec<Vec<i64>> = config
            .tables
            .iter()
            .map(|t| {
                (0..size)
                    .map(|_| {
                        // u^3 skews towards small ids.
                        let u = rng.uniform();
                        ((u * u * u) * t.rows as f64) as i64
                    })
                    .collect()
            })
            .collect();
        let labels = (0..size)
            .map(|b| {
                let mut s = self.bias;
                for (k, w) in self.dense_w.iter().enumerate() {
                    s += w * dense[b * nd + k];
                }
                for (t, e) in self.effects.iter().enumerate() {
                    s += e[ids[t][b] as usize];
                }
                let p = 1.0 / (1.0 + (-s).exp());
                if rng.uniform() < f64::from(p) {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        Batch {
            size,
            n_dense: nd,
            dense,
            sparse: ids.into_iter().map(SparseFeature::one_hot).collect(),
            labels: Some(labels),
        }
    }
}
