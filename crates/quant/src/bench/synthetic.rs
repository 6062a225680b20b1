//! Random models and batches with the shapes of the peers (`../shared/peers/dlrm_bench.py`,
//! `dlrmv2_bench.py`), for `bench model --synthetic`: tables are generated directly in their stored
//! format, ids are skewed like the peers' (`n·u³`), multi-hot where the shape is.

use quantrec_data::synth::CRITEO_KAGGLE_ROWS;
use quantrec_data::synth::bench::unlabeled_batch;
use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::formats::TableFormat;
use quantrec_kernels::rng::Rng;
use quantrec_model::config::{DotOrder, Interaction, Naming, PoolingMode, TableConfig};
use quantrec_model::plan::ActivationPlan;
use quantrec_model::weights::{CrossLayer, Linear, TableData};
use quantrec_model::{LayerPrecision, Model, ModelConfig, Plan, Weights};

use crate::{QuantError, Result};

/// Criteo Kaggle cardinalities (as in `dlrm_bench.py`).
const KAGGLE: [usize; 26] = CRITEO_KAGGLE_ROWS;

/// Criteo 1TB cardinalities of MLPerf's DLRM-v2 (as in `dlrmv2_bench.py`).
const CRITEO_1TB: [usize; 26] = [
    40000000, 39060, 17295, 7424, 20265, 3, 7122, 1543, 63, 40000000, 3067956, 405282, 10, 2209,
    11938, 155, 4, 976, 14, 40000000, 40000000, 40000000, 590152, 12973, 108, 36,
];

/// MLPerf DLRM-v2's multi-hot pooling sizes (ids per row of each table; 214 in all).
pub const MLPERF_POOLING: [usize; 26] = [
    3, 2, 1, 2, 6, 1, 1, 1, 1, 7, 3, 8, 1, 6, 9, 5, 1, 1, 1, 12, 100, 27, 10, 3, 1, 1,
];

/// The synthetic shapes `bench model --synthetic` knows.
pub const SHAPES: [&str; 3] = ["kaggle", "mlperf", "dlrmv2"];

/// One synthetic shape: architecture, table cap and ids per row of each table.
struct Shape {
    config: ModelConfig,
    pooling: Vec<usize>,
}

fn shape(which: &str) -> Result<Shape> {
    let (d, bottom, top, cap, cards, interaction): (_, &[usize], &[usize], usize, &[usize], _) =
        match which {
            "kaggle" => (
                16,
                &[512, 256, 64, 16],
                &[512, 256, 1],
                1_000_000,
                &KAGGLE,
                Interaction::Dot {
                    order: DotOrder::LowerByRow,
                    self_interaction: false,
                },
            ),
            "mlperf" => (
                128,
                &[512, 256, 128],
                &[1024, 1024, 512, 256, 1],
                100_000,
                &KAGGLE,
                Interaction::Dot {
                    order: DotOrder::LowerByRow,
                    self_interaction: false,
                },
            ),
            "dlrmv2" => (
                128,
                &[512, 256, 128],
                &[1024, 1024, 512, 256, 1],
                200_000,
                &CRITEO_1TB,
                Interaction::Dcn {
                    layers: 3,
                    rank: 512,
                },
            ),
            other => {
                return Err(QuantError::UnknownName {
                    what: "synthetic model",
                    name: other.to_string(),
                    expected: "kaggle, mlperf or dlrmv2",
                });
            }
        };
    let pooling = if which == "dlrmv2" {
        MLPERF_POOLING.to_vec()
    } else {
        vec![1; cards.len()]
    };
    let config = ModelConfig {
        dense_features: 13,
        bottom_mlp: bottom.to_vec(),
        tables: cards
            .iter()
            .map(|&n| TableConfig {
                rows: n.min(cap),
                dim: d,
                pooling: PoolingMode::Sum,
            })
            .collect(),
        interaction,
        top_mlp: top.to_vec(),
        naming: if which == "dlrmv2" {
            Naming::TorchRec
        } else {
            Naming::Dlrm
        },
    };
    Ok(Shape { config, pooling })
}

/// Ids per row of each table of a synthetic shape (1 for the one-hot shapes).
pub fn pooling_of(which: &str) -> Result<Vec<usize>> {
    Ok(shape(which)?.pooling)
}

/// A random model of shape `which` (`kaggle`, `mlperf`, `dlrmv2`) under `plan`: `f32`, or
/// `quantized` — the peers' recipe: dynamic per-tensor int8 for every dense layer (the cross net's
/// V and W included) and 4-bit row-wise tables.
pub fn model(which: &str, plan: &str) -> Result<Model> {
    let config = shape(which)?.config;
    let (layer, format) = match plan {
        "f32" => (LayerPrecision::F32, TableFormat::F32),
        "quantized" => (
            LayerPrecision::Int8 {
                per_channel: false,
                activations: ActivationPlan::Dynamic,
            },
            TableFormat::Fused4,
        ),
        other => {
            return Err(QuantError::UnknownName {
                what: "benchmark plan",
                name: other.to_string(),
                expected: "f32 or quantized",
            });
        }
    };
    let mut rng = Rng::new(7);
    let mut matrix = |n: usize, k: usize, gain: f32| -> Vec<f32> {
        (0..n * k)
            .map(|_| gain * rng.uniform_f32(-1.0, 1.0) / (k as f32).sqrt())
            .collect()
    };
    let mut linear = |(n, k): (usize, usize)| {
        let weight = matrix(n, k, 1.0);
        Linear {
            out: n,
            inp: k,
            weight,
            bias: (0..n).map(|i| 0.1 * ((i % 7) as f32 / 3.5 - 1.0)).collect(),
        }
    };
    let bottom = config
        .bottom_shapes()
        .into_iter()
        .map(&mut linear)
        .collect();
    let top = config.top_shapes().into_iter().map(&mut linear).collect();
    let cross = match config.interaction {
        Interaction::Dcn { layers, rank } => {
            let width = config.concat_width();
            (0..layers)
                .map(|_| CrossLayer {
                    v: matrix(rank, width, 0.1),
                    w: matrix(width, rank, 0.1),
                    bias: vec![0.0; width],
                })
                .collect()
        }
        _ => Vec::new(),
    };
    let mut rng = Rng::new(11);
    let tables = config
        .tables
        .iter()
        .map(|t| random_table(&mut rng, format, t.rows, t.dim))
        .collect();
    let weights = Weights {
        bottom,
        tables,
        table_names: Vec::new(),
        cross,
        top,
    };
    let p = Plan::uniform(&config, layer, format);
    Ok(Model::from_parts_owned(config, weights, p)?)
}

/// A table of uniform values in ±0.05 (like the peers' initialisation), stored in `format`
/// (`f32` or `fused4`: random codes with one scale and bias).
fn random_table(rng: &mut Rng, format: TableFormat, rows: usize, d: usize) -> TableData {
    let mut bytes = vec![0u8; rows * format.row_bytes(d)];
    if format == TableFormat::F32 {
        for c in bytes.chunks_exact_mut(4) {
            c.copy_from_slice(&rng.uniform_f32(-0.05, 0.05).to_le_bytes());
        }
    } else {
        let codes = format.code_bytes(d);
        let scale = half::f16::from_f32(0.1 / 15.0).to_le_bytes();
        let bias = half::f16::from_f32(-0.05).to_le_bytes();
        for row in bytes.chunks_exact_mut(format.row_bytes(d)) {
            for b in &mut row[..codes] {
                *b = rng.below(256) as u8;
            }
            row[codes..codes + 2].copy_from_slice(&scale);
            row[codes + 2..codes + 4].copy_from_slice(&bias);
        }
    }
    TableData::Encoded { format, bytes }
}

/// A batch of `size` samples: dense values `log1p(100·u)`; `pooling[t]` ids per sample in table
/// `t` (of `rows[t]` rows), uniform or (`zipf`) skewed like the peers' `n·u³`.
pub fn batch(
    size: usize,
    n_dense: usize,
    rows: &[usize],
    pooling: &[usize],
    seed: u64,
    zipf: bool,
) -> Batch {
    let mut rng = Rng::new(seed);
    unlabeled_batch(size, n_dense, &mut rng, |rng| {
        rows.iter()
            .zip(pooling)
            .map(|(&r, &h)| {
                let ids = (0..size * h)
                    .map(|_| {
                        let u = rng.uniform();
                        let x = if zipf { u * u * u } else { u };
                        ((r as f64 * x) as i64).min(r as i64 - 1)
                    })
                    .collect();
                SparseFeature {
                    offsets: (0..=size).map(|i| (i * h) as i64).collect(),
                    ids,
                    weights: None,
                }
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlperf_pooling_has_214_lookups_per_row() {
        assert_eq!(MLPERF_POOLING.iter().sum::<usize>(), 214);
        assert_eq!(pooling_of("dlrmv2").unwrap(), MLPERF_POOLING.to_vec());
        assert_eq!(pooling_of("kaggle").unwrap(), vec![1; 26]);
    }

    #[test]
    fn multi_hot_batches_have_the_pooling_sizes_and_in_range_ids() {
        let rows = [10, 1000];
        let b = batch(5, 13, &rows, &[3, 1], 1, true);
        assert_eq!(b.sparse[0].offsets, vec![0, 3, 6, 9, 12, 15]);
        assert_eq!(b.sparse[1].ids.len(), 5);
        for (f, &r) in b.sparse.iter().zip(&rows) {
            assert!(f.ids.iter().all(|&i| (0..r as i64).contains(&i)));
        }
    }

    #[test]
    fn unknown_shapes_and_plans_are_refused() {
        assert!(matches!(
            model("dlrm-v3", "f32"),
            Err(QuantError::UnknownName { .. })
        ));
        assert!(matches!(
            model("kaggle", "int3"),
            Err(QuantError::UnknownName { .. })
        ));
    }
}
