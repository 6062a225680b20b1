//! The hidden teacher that labels synthetic samples.
//!
//! `logit = b + 0.5 · signal · (Σ_j a_j·x̂_j + Σ_k c_k·max(0, x̂_k) + Σ_t β_t(bag_t)
//!                      + Σ_(s,t)∈P ⟨v_s(bag_s), v_t(bag_t)⟩ + Σ_t∈Q ⟨W·x̂, v_t(bag_t)⟩)`
//!
//! with `x̂` the standardized dense features (as the model sees them, `ln(1 + max(x, 0))`), a few
//! hinges, a per-id bias `β` and low-dimensional per-id latent vectors `v` (a bag uses the mean
//! over its ids), dot interactions between a few table pairs `P` and between a projection of the
//! dense features and a few tables `Q` — the structure a DLRM (bottom MLP, embeddings, dot
//! interaction, top MLP) can represent. Per-id values are derived from a hash of (seed, table, id),
//! so the teacher needs no memory per row and works for tables of any size. The intercept `b` is
//! set by bisection so the mean click probability is the target CTR.

use quantrec_kernels::rng::Rng;

/// Logit scale at `signal` 1: with the default tables the teacher's NE is then about 0.75, near
/// what DLRMs reach on Criteo (≈ 0.78).
const BASE_SCALE: f64 = 0.5;

/// Spread of the dense weights `a_j`. The dense part of the logit costs no estimation (13
/// weights, learned from every row), so weighting it more (0.4 rather than 0.3) keeps the
/// teacher's NE near 0.75 with the lower-rank default pair interactions (latent dimension 4).
const DENSE_WEIGHT_STD: f64 = 0.4;

/// Largest latent dimension.
pub const MAX_DIM: usize = 32;

/// SplitMix64 finalizer: a strong 64-bit mix.
#[inline]
pub fn splitmix(z: u64) -> u64 {
    let mut x = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// An approximately standard normal value from 64 hash bits (Irwin–Hall sum of four 16-bit uniforms).
#[inline]
fn hashed_normal(h: u64) -> f64 {
    let s = (h & 0xffff) + ((h >> 16) & 0xffff) + ((h >> 32) & 0xffff) + (h >> 48);
    (s as f64 / 65536.0 - 2.0) * 3f64.sqrt()
}

/// The teacher's parameters.
#[derive(Clone, Debug)]
pub struct Teacher {
    seed: u64,
    dim: usize,
    signal: f64,
    intercept: f64,
    center: Vec<f64>,
    scale: Vec<f64>,
    dense_w: Vec<f64>,
    hinges: Vec<(usize, f64)>,
    bias_std: f64,
    vec_std: f64,
    pairs: Vec<(usize, usize)>,
    proj: Vec<f64>,
    proj_tables: Vec<usize>,
}

impl Teacher {
    /// A teacher for `n_dense` dense features and `n_tables` tables with latent dimension `dim`
    /// (1..=[`MAX_DIM`]), drawn from `rng`; dense standardization and intercept start neutral.
    pub fn new(n_dense: usize, n_tables: usize, dim: usize, signal: f64, rng: &mut Rng) -> Self {
        let dense_w = (0..n_dense)
            .map(|_| DENSE_WEIGHT_STD * rng.normal())
            .collect();
        let hinges = (0..n_dense.min(3))
            .map(|_| (rng.below(n_dense as u64) as usize, 0.5 * rng.normal()))
            .collect();
        let mut pairs = Vec::new();
        let n_pairs = if n_tables >= 2 {
            8.min(n_tables * (n_tables - 1) / 2)
        } else {
            0
        };
        while pairs.len() < n_pairs {
            let a = rng.below(n_tables as u64) as usize;
            let b = rng.below(n_tables as u64) as usize;
            let p = (a.min(b), a.max(b));
            if a != b && !pairs.contains(&p) {
                pairs.push(p);
            }
        }
        let proj_tables: Vec<usize> = (0..n_tables.min(2))
            .map(|_| rng.below(n_tables as u64) as usize)
            .collect();
        let proj = (0..dim * n_dense)
            .map(|_| rng.normal() / (n_dense as f64).sqrt())
            .collect();
        // ⟨v_s, v_t⟩ over `dim` components of std σ has std σ²·√dim; aim for 0.6.
        let vec_std = (0.6 / (dim as f64).sqrt()).sqrt();
        Teacher {
            seed: rng.next_u64(),
            dim,
            signal,
            intercept: 0.0,
            center: vec![0.0; n_dense],
            scale: vec![1.0; n_dense],
            dense_w,
            hinges,
            bias_std: 0.4,
            vec_std,
            pairs,
            proj,
            proj_tables,
        }
    }

    /// Sets the dense standardization from sample rows (`dense` is `[n, n_dense]`).
    pub fn fit_dense(&mut self, dense: &[f32]) {
        let d = self.center.len();
        let n = (dense.len() / d.max(1)).max(1) as f64;
        for j in 0..d {
            let col = dense.iter().skip(j).step_by(d).map(|&x| f64::from(x));
            let mean = col.clone().sum::<f64>() / n;
            let var = col.map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
            self.center[j] = mean;
            self.scale[j] = var.sqrt().max(1e-3);
        }
    }

    /// Sets the intercept so that the mean probability over `logits` (computed with intercept 0)
    /// is `ctr`.
    pub fn fit_intercept(&mut self, logits: &[f64], ctr: f64) {
        self.intercept = fit_offset(logits, ctr);
    }

    fn key(&self, table: usize, id: i64) -> u64 {
        splitmix(
            self.seed
                ^ splitmix(table as u64 + 1)
                ^ (id as u64).wrapping_mul(0xd6e8_feb8_6659_fd93),
        )
    }

    /// Mean per-id bias of a bag (0 for an empty bag).
    fn bag_bias(&self, table: usize, ids: &[i64]) -> f64 {
        if ids.is_empty() {
            return 0.0;
        }
        let sum: f64 = ids
            .iter()
            .map(|&id| hashed_normal(splitmix(self.key(table, id) ^ 0xb1a5)))
            .sum();
        sum / ids.len() as f64 * self.bias_std
    }

    /// Mean latent vector of a bag (zeros for an empty bag).
    fn bag_vec(&self, table: usize, ids: &[i64], vec: &mut [f64; MAX_DIM]) {
        vec[..self.dim].fill(0.0);
        if ids.is_empty() {
            return;
        }
        for &id in ids {
            let k = self.key(table, id);
            for (d, v) in vec[..self.dim].iter_mut().enumerate() {
                *v += hashed_normal(splitmix(k.wrapping_add(d as u64 + 1)));
            }
        }
        let f = self.vec_std / ids.len() as f64;
        vec[..self.dim].iter_mut().for_each(|v| *v *= f);
    }

    /// The logit of a sample (dense as the model sees it, ids per table).
    pub fn logit<B: AsRef<[i64]>>(&self, dense: &[f32], bags: &[B]) -> f64 {
        let d = self.center.len();
        let mut xs = [0f64; 64];
        let xs = &mut xs[..d.min(64)];
        for (j, x) in xs.iter_mut().enumerate() {
            *x = (f64::from(dense[j]) - self.center[j]) / self.scale[j];
        }
        let mut z: f64 = xs.iter().zip(&self.dense_w).map(|(x, w)| x * w).sum();
        z += self
            .hinges
            .iter()
            .map(|&(j, c)| c * xs[j].max(0.0))
            .sum::<f64>();
        for (t, bag) in bags.iter().enumerate() {
            z += self.bag_bias(t, bag.as_ref());
        }
        let (mut va, mut vb) = ([0f64; MAX_DIM], [0f64; MAX_DIM]);
        for &(s, t) in &self.pairs {
            self.bag_vec(s, bags[s].as_ref(), &mut va);
            self.bag_vec(t, bags[t].as_ref(), &mut vb);
            z += dot(&va[..self.dim], &vb[..self.dim]);
        }
        for &t in &self.proj_tables {
            self.bag_vec(t, bags[t].as_ref(), &mut va);
            for (k, vk) in va[..self.dim].iter().enumerate() {
                let u: f64 = dot(&self.proj[k * d..(k + 1) * d], xs);
                z += u * vk;
            }
        }
        self.intercept + BASE_SCALE * self.signal * z
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The logistic function.
#[inline]
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The offset `c` with mean `sigmoid(z + c)` over `logits` equal to `ctr` (bisection over
/// `[-30, 30]`, 60 steps).
pub(super) fn fit_offset(logits: &[f64], ctr: f64) -> f64 {
    let mean_p =
        |c: f64| logits.iter().map(|&z| sigmoid(z + c)).sum::<f64>() / logits.len().max(1) as f64;
    let (mut lo, mut hi) = (-30.0, 30.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if mean_p(mid) < ctr {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}
