//! Where every trainable tensor lives, its state-dict name, and the dlrm-style initialisation.
//!
//! All dense parameters (MLP weights and biases, cross-net kernels) live in one flat `Vec<f32>` so
//! gradients, their reduction and dense optimizer state are flat vectors of the same layout. Tables
//! are separate `[rows × dim]` buffers updated sparsely.

use quantrec_kernels::interaction::pairs;
use quantrec_kernels::rng::Rng;

use crate::{Result, TrainError};
use quantrec_model::config::{Interaction, ModelConfig, Naming, PoolingMode};

/// A `Linear` layer inside the flat dense buffer: weight `[out × inp]` at `w`, bias `[out]` at `b`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LinearSlot {
    pub w: usize,
    pub b: usize,
    pub inp: usize,
    pub out: usize,
}

/// Lays out a chain of `Linear` layers from `inp` features through `outs`, appending each weight
/// and bias at `*len` and advancing it.
fn linear_chain(len: &mut usize, mut inp: usize, outs: &[usize]) -> Vec<LinearSlot> {
    outs.iter()
        .map(|&out| {
            let s = LinearSlot {
                w: *len,
                b: *len + out * inp,
                inp,
                out,
            };
            *len += out * inp + out;
            inp = out;
            s
        })
        .collect()
}

/// A low-rank cross layer: `V [rank × width]` at `v`, `W [width × rank]` at `w`, bias `[width]` at `b`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CrossSlot {
    pub v: usize,
    pub w: usize,
    pub b: usize,
}

/// The interaction, resolved for training.
#[derive(Clone, Debug)]
pub(crate) enum Inter {
    /// Dot products of `pairs` over `[bottom out, tables...]`, all of dimension `d`.
    Dot {
        pairs: Vec<(usize, usize)>,
        d: usize,
    },
    /// Concatenation.
    Cat,
    /// Low-rank cross net.
    Dcn { rank: usize },
}

/// One table as the trainer sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TableSlot {
    pub rows: usize,
    pub dim: usize,
    pub pooling: PoolingMode,
    /// First column of this table's pooled vector in the concatenated `z`.
    pub col: usize,
}

/// The resolved architecture: layer shapes and offsets into the flat dense buffer.
#[derive(Clone, Debug)]
pub(crate) struct Arch {
    pub n_dense: usize,
    pub bottom: Vec<LinearSlot>,
    pub bottom_out: usize,
    pub tables: Vec<TableSlot>,
    /// Width of `z = [bottom out, table 0, table 1, ...]`.
    pub width: usize,
    pub inter: Inter,
    pub cross: Vec<CrossSlot>,
    /// Width of the top-MLP input.
    pub top_in: usize,
    pub top: Vec<LinearSlot>,
    /// Length of the flat dense buffer.
    pub dense_len: usize,
}

impl Arch {
    /// Checks that `config` can be trained and lays its dense parameters out.
    pub fn new(config: &ModelConfig) -> Result<Arch> {
        if config.dense_features == 0 && config.bottom_mlp.is_empty() {
            return Err(TrainError::NoDenseInput);
        }
        if config.bottom_mlp.contains(&0) {
            return Err(TrainError::MlpWidths {
                mlp: "bottom",
                widths: config.bottom_mlp.clone(),
                rule: "has a zero-width layer",
            });
        }
        if config.top_mlp.last() != Some(&1) || config.top_mlp.contains(&0) {
            return Err(TrainError::MlpWidths {
                mlp: "top",
                widths: config.top_mlp.clone(),
                rule: "must be non-empty, without zero widths, and end in 1",
            });
        }
        let mut len = 0usize;
        let bottom = linear_chain(&mut len, config.dense_features, &config.bottom_mlp);
        let bottom_out = config.bottom_out();
        let mut col = bottom_out;
        let mut tables = Vec::with_capacity(config.tables.len());
        for (i, t) in config.tables.iter().enumerate() {
            if t.rows == 0 || t.dim == 0 {
                return Err(TrainError::EmptyTable {
                    table: i,
                    rows: t.rows,
                    dim: t.dim,
                });
            }
            tables.push(TableSlot {
                rows: t.rows,
                dim: t.dim,
                pooling: t.pooling,
                col,
            });
            col += t.dim;
        }
        let width = col;
        let (inter, top_in, n_cross) = match &config.interaction {
            Interaction::Dot {
                order,
                self_interaction,
            } => {
                if let Some((i, t)) = tables.iter().enumerate().find(|(_, t)| t.dim != bottom_out) {
                    return Err(TrainError::DotDimension {
                        table: i,
                        expected: bottom_out,
                        found: t.dim,
                    });
                }
                let p = pairs(tables.len() + 1, (*order).into(), *self_interaction);
                let top_in = bottom_out + p.len();
                (
                    Inter::Dot {
                        pairs: p,
                        d: bottom_out,
                    },
                    top_in,
                    0,
                )
            }
            Interaction::Cat => (Inter::Cat, width, 0),
            Interaction::Dcn { layers, rank } => {
                if *rank == 0 {
                    return Err(TrainError::EmptyDcn {
                        layers: *layers,
                        rank: *rank,
                    });
                }
                (Inter::Dcn { rank: *rank }, width, *layers)
            }
        };
        let cross = match inter {
            Inter::Dcn { rank } => (0..n_cross)
                .map(|_| {
                    let s = CrossSlot {
                        v: len,
                        w: len + rank * width,
                        b: len + 2 * rank * width,
                    };
                    len += 2 * rank * width + width;
                    s
                })
                .collect(),
            _ => Vec::new(),
        };
        let top = linear_chain(&mut len, top_in, &config.top_mlp);
        Ok(Arch {
            n_dense: config.dense_features,
            bottom,
            bottom_out,
            tables,
            width,
            inter,
            cross,
            top_in,
            top,
            dense_len: len,
        })
    }

    /// The rank of the cross net (0 without one).
    pub fn rank(&self) -> usize {
        match self.inter {
            Inter::Dcn { rank } => rank,
            _ => 0,
        }
    }

    /// Every dense tensor: state-dict name, shape and offset in the flat buffer, in a fixed order.
    pub fn dense_tensors(&self, naming: Naming) -> Vec<(String, Vec<usize>, usize)> {
        let mut v = Vec::new();
        let rank = self.rank();
        for (i, s) in self.bottom.iter().enumerate() {
            let base = match naming {
                Naming::Dlrm => format!("bot_l.{}", 2 * i),
                Naming::TorchRec => format!("dense_arch.model._mlp.{i}._linear"),
            };
            v.push((format!("{base}.weight"), vec![s.out, s.inp], s.w));
            v.push((format!("{base}.bias"), vec![s.out], s.b));
        }
        for (l, c) in self.cross.iter().enumerate() {
            let base = "inter_arch.crossnet";
            v.push((format!("{base}.V_kernels.{l}"), vec![rank, self.width], c.v));
            v.push((format!("{base}.W_kernels.{l}"), vec![self.width, rank], c.w));
            v.push((format!("{base}.bias.{l}"), vec![self.width], c.b));
        }
        let last = self.top.len() - 1;
        for (i, s) in self.top.iter().enumerate() {
            let base = match naming {
                Naming::Dlrm => format!("top_l.{}", 2 * i),
                Naming::TorchRec if i == last => "over_arch.model.1".to_string(),
                Naming::TorchRec => format!("over_arch.model.0._mlp.{i}._linear"),
            };
            v.push((format!("{base}.weight"), vec![s.out, s.inp], s.w));
            v.push((format!("{base}.bias"), vec![s.out], s.b));
        }
        v
    }

    /// State-dict name of table `i`.
    pub fn table_name(naming: Naming, i: usize) -> String {
        match naming {
            Naming::Dlrm => format!("emb_l.{i}.weight"),
            Naming::TorchRec => {
                format!("sparse_arch.embedding_bag_collection.embedding_bags.t_cat_{i}.weight")
            }
        }
    }
}

/// All trainable values.
#[derive(Clone, Debug)]
pub(crate) struct Params {
    /// Flat dense parameters laid out by [`Arch`].
    pub dense: Vec<f32>,
    /// One `[rows × dim]` buffer per table.
    pub tables: Vec<Vec<f32>>,
}

impl Params {
    /// facebookresearch/dlrm initialisation: Linear weights `N(0, sqrt(2/(fan_in+fan_out)))`, biases
    /// `N(0, sqrt(1/fan_out))`, tables `U(-sqrt(1/rows), sqrt(1/rows))`; cross kernels Xavier-normal
    /// (same std as Linear weights) with zero bias, like TorchRec. Draw order: bottom, tables,
    /// cross, top, so a seed fully determines the model.
    pub fn init(arch: &Arch, seed: u64) -> Params {
        let mut rng = Rng::new(seed);
        let mut dense = vec![0f32; arch.dense_len];
        let linear = |rng: &mut Rng, dense: &mut [f32], s: &LinearSlot| {
            let std_w = (2.0 / (s.inp + s.out) as f64).sqrt() as f32;
            let std_b = (1.0 / s.out as f64).sqrt() as f32;
            for x in &mut dense[s.w..s.w + s.out * s.inp] {
                *x = rng.normal() as f32 * std_w;
            }
            for x in &mut dense[s.b..s.b + s.out] {
                *x = rng.normal() as f32 * std_b;
            }
        };
        for s in &arch.bottom {
            linear(&mut rng, &mut dense, s);
        }
        let tables = arch
            .tables
            .iter()
            .map(|t| {
                let a = (1.0 / t.rows as f64).sqrt() as f32;
                (0..t.rows * t.dim)
                    .map(|_| rng.uniform_f32(-a, a))
                    .collect()
            })
            .collect();
        let rank = arch.rank();
        for c in &arch.cross {
            let std = (2.0 / (rank + arch.width) as f64).sqrt() as f32;
            for x in &mut dense[c.v..c.b] {
                *x = rng.normal() as f32 * std;
            }
        }
        for s in &arch.top {
            linear(&mut rng, &mut dense, s);
        }
        Params { dense, tables }
    }
}

/// `dst[c × r] = src[r × c]ᵀ` (only the first `r·c` values of `dst` are written).
pub(crate) fn transpose(src: &[f32], r: usize, c: usize, dst: &mut [f32]) {
    for i in 0..r {
        for j in 0..c {
            dst[j * r + i] = src[i * c + j];
        }
    }
}
