//! Optimizers: SGD and Adagrad (dense Adagrad for MLP and cross-net parameters, FBGEMM/TorchRec-style
//! row-wise Adagrad for tables), and the sparse per-row gradient of each table.

use quantrec_data::batch::SparseFeature;
use quantrec_model::config::PoolingMode;

use crate::params::TableSlot;
use crate::pass::Work;

/// Which update rule training uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// Plain SGD: `p -= lr · g`; table rows are updated only where a batch touched them.
    Sgd,
    /// Adagrad. Dense parameters follow `torch.optim.Adagrad` (`acc += g²`,
    /// `p -= lr · g / (sqrt(acc) + eps)`); tables use row-wise Adagrad like FBGEMM's
    /// `EXACT_ROWWISE_ADAGRAD`: one accumulator per row, `acc += mean(g_row²)`,
    /// `row -= lr · g_row / (sqrt(acc) + eps)`, only for rows the batch touched.
    Adagrad {
        /// Added to `sqrt(acc)` for dense parameters (PyTorch's default is 1e-10).
        eps_dense: f32,
        /// Added to `sqrt(acc)` for table rows (FBGEMM's default is 1e-8).
        eps_sparse: f32,
        /// Starting value of every accumulator (PyTorch's and FBGEMM's default is 0).
        initial_accumulator: f32,
    },
    /// Adam for the dense parameters (`torch.optim.Adam` with bias correction:
    /// `m = β1·m + (1−β1)·g`, `v = β2·v + (1−β2)·g²`,
    /// `p -= lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + eps)`) and row-wise Adagrad for the
    /// tables, as above with a zero initial accumulator.
    AdamRowwise {
        /// Decay of the first moment (PyTorch's default 0.9).
        beta1: f32,
        /// Decay of the second moment (PyTorch's default 0.999).
        beta2: f32,
        /// Added to the corrected `sqrt(v)` (PyTorch's default 1e-8).
        eps: f32,
        /// Added to `sqrt(acc)` for table rows (FBGEMM's default is 1e-8).
        eps_sparse: f32,
    },
}

impl Optimizer {
    /// Adagrad with PyTorch's and FBGEMM's defaults.
    pub fn adagrad() -> Optimizer {
        Optimizer::Adagrad {
            eps_dense: 1e-10,
            eps_sparse: 1e-8,
            initial_accumulator: 0.0,
        }
    }

    /// Adam (PyTorch's defaults) for dense parameters, row-wise Adagrad for tables.
    pub fn adam_rowwise() -> Optimizer {
        Optimizer::AdamRowwise {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            eps_sparse: 1e-8,
        }
    }
}

/// Optimizer state.
#[derive(Clone, Debug, Default)]
pub(crate) struct OptState {
    /// One accumulator per dense parameter (Adagrad only).
    pub dense: Vec<f32>,
    /// One accumulator per table row (Adagrad and Adam's tables).
    pub rows: Vec<Vec<f32>>,
    /// Adam's first moments (the second moments are in `dense`).
    pub moment1: Vec<f32>,
    /// Dense steps taken (for Adam's bias correction).
    pub steps: u64,
}

impl OptState {
    /// Fresh state for `dense_len` dense parameters and the given tables.
    pub fn new(opt: Optimizer, dense_len: usize, tables: &[TableSlot]) -> OptState {
        match opt {
            Optimizer::Sgd => OptState::default(),
            Optimizer::Adagrad {
                initial_accumulator: a,
                ..
            } => OptState {
                dense: vec![a; dense_len],
                rows: tables.iter().map(|t| vec![a; t.rows]).collect(),
                ..OptState::default()
            },
            Optimizer::AdamRowwise { .. } => OptState {
                dense: vec![0.0; dense_len],
                rows: tables.iter().map(|t| vec![0.0; t.rows]).collect(),
                moment1: vec![0.0; dense_len],
                steps: 0,
            },
        }
    }
}

/// Applies one dense update.
pub(crate) fn update_dense(
    opt: Optimizer,
    lr: f32,
    params: &mut [f32],
    grad: &[f32],
    st: &mut OptState,
) {
    let acc = &mut st.dense;
    match opt {
        Optimizer::Sgd => {
            for (p, &g) in params.iter_mut().zip(grad) {
                *p -= lr * g;
            }
        }
        Optimizer::Adagrad { eps_dense, .. } => {
            for ((p, &g), a) in params.iter_mut().zip(grad).zip(acc.iter_mut()) {
                *a += g * g;
                *p -= lr * g / (a.sqrt() + eps_dense);
            }
        }
        Optimizer::AdamRowwise {
            beta1, beta2, eps, ..
        } => {
            st.steps += 1;
            let t = st.steps.min(i32::MAX as u64) as i32;
            let c1 = 1.0 - beta1.powi(t);
            let c2 = 1.0 - beta2.powi(t);
            let step = lr / c1;
            let inv_c2 = 1.0 / c2;
            for (((p, &g), v), m) in params
                .iter_mut()
                .zip(grad)
                .zip(acc.iter_mut())
                .zip(st.moment1.iter_mut())
            {
                *m = beta1 * *m + (1.0 - beta1) * g;
                *v = beta2 * *v + (1.0 - beta2) * g * g;
                *p -= step * *m / ((*v * inv_c2).sqrt() + eps);
            }
        }
    }
}

/// Applies one row update (`acc` is the row's accumulator; unused by SGD).
pub(crate) fn update_row(
    opt: Optimizer,
    lr: f32,
    row: &mut [f32],
    grad: &[f32],
    acc: Option<&mut f32>,
) {
    match (opt, acc) {
        (
            Optimizer::Adagrad { eps_sparse, .. } | Optimizer::AdamRowwise { eps_sparse, .. },
            Some(a),
        ) => {
            let mean_sq = grad.iter().map(|g| g * g).sum::<f32>() / grad.len().max(1) as f32;
            *a += mean_sq;
            let step = lr / (a.sqrt() + eps_sparse);
            for (p, &g) in row.iter_mut().zip(grad) {
                *p -= step * g;
            }
        }
        _ => {
            for (p, &g) in row.iter_mut().zip(grad) {
                *p -= lr * g;
            }
        }
    }
}

/// The gradient of one table for a batch: the distinct touched rows, ascending, and their
/// gradients (`ids.len() × dim`).
#[derive(Clone, Debug, Default)]
pub(crate) struct RowGrads {
    pub ids: Vec<usize>,
    pub grads: Vec<f32>,
}

/// Sums `coef · dL/dpooled` of every bag over the rows each bag touched. `works[c]` holds rows
/// `c·chunk ..` of the batch; `width` is the row width of their `dz`. Contributions to one row
/// are added in id-array order, so the result is independent of thread count.
pub(crate) fn table_grads(
    ts: &TableSlot,
    feat: &SparseFeature,
    works: &[Work],
    chunk: usize,
    width: usize,
    batch: usize,
) -> RowGrads {
    let d = ts.dim;
    let mut entries: Vec<(usize, usize, u32, f32)> = Vec::with_capacity(feat.ids.len());
    for b in 0..batch {
        let (lo, hi) = (feat.offsets[b] as usize, feat.offsets[b + 1] as usize);
        let mean = if ts.pooling == PoolingMode::Mean && hi > lo {
            1.0 / (hi - lo) as f32
        } else {
            1.0
        };
        for q in lo..hi {
            let coef = match (ts.pooling, &feat.weights) {
                (PoolingMode::WeightedSum, Some(ws)) => ws[q],
                _ => mean,
            };
            entries.push((feat.ids[q] as usize, q, b as u32, coef));
        }
    }
    // (id, position) keys are distinct, so equal ids end up in id-array order.
    entries.sort_unstable_by_key(|e| (e.0, e.1));
    let mut out = RowGrads::default();
    let mut i = 0;
    while i < entries.len() {
        let id = entries[i].0;
        out.ids.push(id);
        let base = out.grads.len();
        out.grads.resize(base + d, 0.0);
        while i < entries.len() && entries[i].0 == id {
            let (_, _, b, coef) = entries[i];
            let b = b as usize;
            let w = &works[b / chunk];
            let r = b % chunk;
            let src = &w.dz[r * width + ts.col..r * width + ts.col + d];
            for (g, &s) in out.grads[base..].iter_mut().zip(src) {
                *g += coef * s;
            }
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adam's first steps against the closed form of `torch.optim.Adam` (computed in f64).
    #[test]
    fn adam_matches_the_closed_form() {
        let opt = Optimizer::adam_rowwise();
        let Optimizer::AdamRowwise {
            beta1, beta2, eps, ..
        } = opt
        else {
            unreachable!()
        };
        let (b1, b2, e) = (f64::from(beta1), f64::from(beta2), f64::from(eps));
        let grads = [[0.5f32, -2.0, 0.0], [0.25, 1.0, -3.0], [-1.0, 0.5, 4.0]];
        let lr = 0.01;
        let mut st = OptState::new(opt, 3, &[]);
        let mut p = [1.0f32, -1.0, 0.5];
        let mut want: Vec<f64> = p.iter().map(|&v| f64::from(v)).collect();
        let (mut m, mut v) = ([0f64; 3], [0f64; 3]);
        for (t, g) in grads.iter().enumerate() {
            update_dense(opt, lr, &mut p, g, &mut st);
            let t = t as i32 + 1;
            for k in 0..3 {
                let gk = f64::from(g[k]);
                m[k] = b1 * m[k] + (1.0 - b1) * gk;
                v[k] = b2 * v[k] + (1.0 - b2) * gk * gk;
                let mh = m[k] / (1.0 - b1.powi(t));
                let vh = v[k] / (1.0 - b2.powi(t));
                want[k] -= f64::from(lr) * mh / (vh.sqrt() + e);
            }
            for k in 0..3 {
                assert!(
                    (f64::from(p[k]) - want[k]).abs() < 1e-6,
                    "step {t} param {k}: {} vs {}",
                    p[k],
                    want[k]
                );
            }
        }
        assert_eq!(st.steps, 3);
    }
}
