//! Forward and backward pass over one chunk of a batch (one thread's share), with every
//! activation the backward pass needs kept in a reusable [`Work`] buffer.

use quantrec_data::batch::Batch;
use quantrec_model::config::PoolingMode;

use crate::Result;
use crate::linalg::{axpy, col_sum_acc};
use crate::packs::{GradScratch, Packs, weight_grad};
use crate::params::{Arch, Inter, LinearSlot, Params};

/// Activations, gradients and scratch of one chunk; reused across steps.
#[derive(Default, Debug)]
pub(crate) struct Work {
    /// Rows in this chunk.
    pub m: usize,
    bottom: Vec<Vec<f32>>,
    /// `[m × width]`: bottom output then every pooled table.
    pub z: Vec<f32>,
    cx: Vec<Vec<f32>>,
    ch: Vec<Vec<f32>>,
    cu: Vec<Vec<f32>>,
    top_in: Vec<f32>,
    top: Vec<Vec<f32>>,
    g: Vec<f32>,
    g2: Vec<f32>,
    /// `[m × width]`: loss gradient w.r.t. `z` (its table columns feed the sparse update).
    pub dz: Vec<f32>,
    dh: Vec<f32>,
    gmat: Vec<f32>,
    scratch: Vec<f32>,
    gs: GradScratch,
    /// Flat dense gradient of this chunk (layout of [`Arch`]).
    pub grad: Vec<f32>,
    /// Sum of this chunk's per-sample losses.
    pub loss: f64,
}

impl Work {
    /// The chunk's logits (valid after [`forward`]).
    pub fn logits(&self) -> &[f32] {
        self.top.last().map(|v| &v[..self.m]).unwrap_or(&[])
    }
}

/// `out[m×o] = x[m×i] · Wᵀ + b` by the packed layer, then ReLU when `relu`.
fn linear_fwd(
    x: &[f32],
    packed: &quantrec_kernels::gemm::PackedLinear,
    out: &mut Vec<f32>,
    m: usize,
    s: &LinearSlot,
    relu: bool,
    gs: &mut GradScratch,
) -> Result<()> {
    out.resize(m * s.out, 0.0);
    packed.forward(&x[..m * s.inp], m, out, relu, &mut gs.lin)?;
    Ok(())
}

/// Backward of a Linear layer whose output is `y` and input `x`: masks `g` by ReLU when `relu`,
/// writes `dW` and accumulates `db` into `grad`, and writes the input gradient to `gx` when asked
/// (by `wt_packed`, the packed `Wᵀ`).
#[allow(clippy::too_many_arguments)]
fn linear_bwd(
    wt_packed: &quantrec_kernels::gemm::PackedLinear,
    grad: &mut [f32],
    s: &LinearSlot,
    x: &[f32],
    y: &[f32],
    g: &mut [f32],
    gx: Option<&mut Vec<f32>>,
    m: usize,
    relu: bool,
    gs: &mut GradScratch,
) -> Result<()> {
    let g = &mut g[..m * s.out];
    if relu {
        for (gv, &yv) in g.iter_mut().zip(y) {
            if yv <= 0.0 {
                *gv = 0.0;
            }
        }
    }
    weight_grad(
        g,
        x,
        &mut grad[s.w..s.w + s.out * s.inp],
        m,
        (s.out, s.inp),
        gs,
    )?;
    col_sum_acc(g, m, s.out, &mut grad[s.b..s.b + s.out]);
    if let Some(gx) = gx {
        gx.resize(m * s.inp, 0.0);
        wt_packed.forward(g, m, gx, false, &mut gs.lin)?;
    }
    Ok(())
}

/// Forward pass of rows `start..start+m` of `batch` (already validated); logits end up in
/// [`Work::logits`]. `packs` holds the MLP and cross-net layers of `params` packed for the kernels.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    arch: &Arch,
    p: &Params,
    packs: &Packs,
    batch: &Batch,
    start: usize,
    m: usize,
    w: &mut Work,
) -> Result<()> {
    w.m = m;
    let nd = arch.n_dense;
    let dense_in = &batch.dense[start * nd..(start + m) * nd];
    w.bottom.resize_with(arch.bottom.len(), Vec::new);
    for (l, s) in arch.bottom.iter().enumerate() {
        let (prev, rest) = w.bottom.split_at_mut(l);
        let x: &[f32] = if l == 0 { dense_in } else { &prev[l - 1] };
        linear_fwd(x, &packs.fwd[l], &mut rest[0], m, s, true, &mut w.gs)?;
    }
    let bo = arch.bottom_out;
    let width = arch.width;
    let bottom_out: &[f32] = w.bottom.last().map(|v| &v[..]).unwrap_or(dense_in);
    w.z.resize(m * width, 0.0);
    for (zr, br) in w.z.chunks_exact_mut(width).zip(bottom_out.chunks_exact(bo)) {
        zr[..bo].copy_from_slice(br);
    }
    for (t, (ts, feat)) in arch.tables.iter().zip(&batch.sparse).enumerate() {
        let table = &p.tables[t];
        let d = ts.dim;
        for (b, zr) in w.z.chunks_exact_mut(width).enumerate() {
            let dst = &mut zr[ts.col..ts.col + d];
            let (lo, hi) = (
                feat.offsets[start + b] as usize,
                feat.offsets[start + b + 1] as usize,
            );
            let mean = if ts.pooling == PoolingMode::Mean && hi > lo {
                1.0 / (hi - lo) as f32
            } else {
                1.0
            };
            for q in lo..hi {
                let id = feat.ids[q] as usize;
                let coef = match (ts.pooling, &feat.weights) {
                    (PoolingMode::WeightedSum, Some(ws)) => ws[q],
                    _ => mean,
                };
                let row = &table[id * d..(id + 1) * d];
                if q == lo {
                    for (o, &v) in dst.iter_mut().zip(row) {
                        *o = coef * v;
                    }
                } else {
                    axpy(coef, row, dst);
                }
            }
            if hi == lo {
                dst.fill(0.0);
            }
        }
    }
    let top_input: &[f32] = match &arch.inter {
        Inter::Dot { pairs, d } => {
            // z is [m × f × d] (every feature has dimension d): the kernels' SIMD interaction.
            w.top_in.resize(m * arch.top_in, 0.0);
            quantrec_kernels::interaction::dot_interaction(
                &w.z,
                m,
                width / d,
                *d,
                pairs,
                &mut w.top_in,
            )?;
            &w.top_in
        }
        Inter::Cat => &w.z,
        Inter::Dcn { rank } => {
            let r = *rank;
            let nl = arch.cross.len();
            w.cx.resize_with(nl, Vec::new);
            w.ch.resize_with(nl, Vec::new);
            w.cu.resize_with(nl, Vec::new);
            for l in 0..arch.cross.len() {
                let (prev, rest) = w.cx.split_at_mut(l);
                let x: &[f32] = if l == 0 { &w.z } else { &prev[l - 1] };
                let h = &mut w.ch[l];
                h.resize(m * r, 0.0);
                let cp = &packs.cross[l];
                cp.v.forward(&x[..m * width], m, h, false, &mut w.gs.lin)?;
                let u = &mut w.cu[l];
                u.resize(m * width, 0.0);
                cp.w.forward(h, m, u, false, &mut w.gs.lin)?;
                let xn = &mut rest[0];
                xn.resize(m * width, 0.0);
                for (((o, &x0), &uv), &xv) in xn.iter_mut().zip(&w.z).zip(u.iter()).zip(x) {
                    *o = x0 * uv + xv;
                }
            }
            w.cx.last().map(|v| &v[..]).unwrap_or(&w.z)
        }
    };
    w.top.resize_with(arch.top.len(), Vec::new);
    let last = arch.top.len() - 1;
    for (l, s) in arch.top.iter().enumerate() {
        let (prev, rest) = w.top.split_at_mut(l);
        let x: &[f32] = if l == 0 { top_input } else { &prev[l - 1] };
        let packed = &packs.fwd[arch.bottom.len() + l];
        linear_fwd(x, packed, &mut rest[0], m, s, l != last, &mut w.gs)?;
    }
    Ok(())
}

/// Numerically stable binary cross-entropy with logits and its derivative w.r.t. the logit.
#[inline]
pub(crate) fn bce_with_logits(s: f32, y: f32) -> (f64, f32) {
    let s64 = f64::from(s);
    let loss = s64.max(0.0) - s64 * f64::from(y) + (-s64.abs()).exp().ln_1p();
    let sig = if s >= 0.0 {
        1.0 / (1.0 + (-s).exp())
    } else {
        let e = s.exp();
        e / (1.0 + e)
    };
    (loss, sig - y)
}

/// What the backward pass differentiates.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Seed<'a> {
    /// The batch-mean log loss against these labels (of the whole batch), scaled by `inv_batch`.
    Loss(&'a [f32], f32),
    /// Each sample's logit times `sqrt(p(1 - p))`, its log loss's curvature in the logit: the
    /// resulting `dz` rows are Gauss-Newton factors (`Σ dz dzᵀ` is the loss's Gauss-Newton
    /// matrix in `z`).
    Curvature,
}

/// Backward pass of a chunk after [`forward`]: for [`Seed::Loss`] sums the chunk's losses into
/// [`Work::loss`] and its dense gradient (of the batch-mean loss) into [`Work::grad`] (zeroed
/// first); either way leaves the seed's gradient in `z` in [`Work::dz`].
pub(crate) fn backward(
    arch: &Arch,
    packs: &Packs,
    batch: &Batch,
    seed: Seed<'_>,
    start: usize,
    w: &mut Work,
) -> Result<()> {
    let m = w.m;
    w.grad.clear();
    w.grad.resize(arch.dense_len, 0.0);
    w.g.resize(m, 0.0);
    let mut loss = 0f64;
    for (b, gv) in w.g.iter_mut().enumerate() {
        let logit = w.top[arch.top.len() - 1][b];
        *gv = match seed {
            Seed::Loss(labels, inv_batch) => {
                let (l, d) = bce_with_logits(logit, labels[start + b]);
                loss += l;
                d * inv_batch
            }
            Seed::Curvature => {
                let p = bce_with_logits(logit, 0.0).1;
                (p * (1.0 - p)).sqrt()
            }
        };
    }
    w.loss = loss;
    let width = arch.width;
    let nd = arch.n_dense;
    let dense_in = &batch.dense[start * nd..(start + m) * nd];
    let last = arch.top.len() - 1;
    for l in (0..arch.top.len()).rev() {
        let s = &arch.top[l];
        let x: &[f32] = if l > 0 {
            &w.top[l - 1]
        } else {
            match &arch.inter {
                Inter::Dot { .. } => &w.top_in,
                Inter::Cat => &w.z,
                Inter::Dcn { .. } => w.cx.last().map(|v| &v[..]).unwrap_or(&w.z),
            }
        };
        linear_bwd(
            &packs.bwd[arch.bottom.len() + l],
            &mut w.grad,
            s,
            x,
            &w.top[l],
            &mut w.g,
            Some(&mut w.g2),
            m,
            l != last,
            &mut w.gs,
        )?;
        std::mem::swap(&mut w.g, &mut w.g2);
    }
    // w.g is now dL/d(top input).
    w.dz.resize(m * width, 0.0);
    match &arch.inter {
        Inter::Dot { pairs, d } => {
            let (d, ti) = (*d, arch.top_in);
            let f = width / d;
            // Per sample, the pair gradients form a symmetric f×f matrix G (a self-interaction
            // pair counts twice) and dz = G·z: each output row is summed in feature order in
            // registers instead of two read-modify-write axpys per pair.
            w.gmat.resize(f * f, 0.0);
            for ((dzr, zr), gr) in
                w.dz.chunks_exact_mut(width)
                    .zip(w.z.chunks_exact(width))
                    .zip(w.g.chunks_exact(ti))
            {
                w.gmat.fill(0.0);
                for (&gq, &(i, j)) in gr[d..].iter().zip(pairs) {
                    w.gmat[i * f + j] += gq;
                    w.gmat[j * f + i] += gq;
                }
                sym_times(&w.gmat, zr, dzr, f, d);
                for (o, &v) in dzr[..d].iter_mut().zip(&gr[..d]) {
                    *o += v;
                }
            }
        }
        Inter::Cat => w.dz.copy_from_slice(&w.g[..m * width]),
        Inter::Dcn { rank } => {
            let r = *rank;
            w.dz.fill(0.0);
            // w.g: dL/dx_L; w.g2 reused for du.
            for l in (0..arch.cross.len()).rev() {
                let c = &arch.cross[l];
                let x: &[f32] = if l == 0 { &w.z } else { &w.cx[l - 1] };
                let (u, h) = (&w.cu[l], &w.ch[l]);
                w.g2.resize(m * width, 0.0);
                for ((((du, dz), &dx), &x0), &uv) in
                    w.g2.iter_mut()
                        .zip(w.dz.iter_mut())
                        .zip(&w.g)
                        .zip(&w.z)
                        .zip(u)
                {
                    *du = dx * x0;
                    *dz += dx * uv;
                }
                col_sum_acc(&w.g2, m, width, &mut w.grad[c.b..c.b + width]);
                let cp = &packs.cross[l];
                // dW = duᵀ·h, dh = du·W, dV = dhᵀ·x, dx += dh·V.
                let gw = &mut w.grad[c.w..c.w + width * r];
                weight_grad(&w.g2, h, gw, m, (width, r), &mut w.gs)?;
                w.dh.resize(m * r, 0.0);
                cp.wt
                    .forward(&w.g2[..m * width], m, &mut w.dh, false, &mut w.gs.lin)?;
                let gv = &mut w.grad[c.v..c.v + r * width];
                weight_grad(&w.dh, x, gv, m, (r, width), &mut w.gs)?;
                w.scratch.resize(m * width, 0.0);
                cp.vt
                    .forward(&w.dh, m, &mut w.scratch, false, &mut w.gs.lin)?;
                for (gx, &v) in w.g[..m * width].iter_mut().zip(&w.scratch) {
                    *gx += v;
                }
            }
            for (dz, &dx) in w.dz.iter_mut().zip(&w.g) {
                *dz += dx;
            }
        }
    }
    let bo = arch.bottom_out;
    if arch.bottom.is_empty() {
        return Ok(());
    }
    w.g.resize(m * bo, 0.0);
    for (g, dzr) in w.g.chunks_exact_mut(bo).zip(w.dz.chunks_exact(width)) {
        g.copy_from_slice(&dzr[..bo]);
    }
    for l in (0..arch.bottom.len()).rev() {
        let s = &arch.bottom[l];
        let x: &[f32] = if l > 0 { &w.bottom[l - 1] } else { dense_in };
        let gx = if l > 0 { Some(&mut w.g2) } else { None };
        linear_bwd(
            &packs.bwd[l],
            &mut w.grad,
            s,
            x,
            &w.bottom[l],
            &mut w.g,
            gx,
            m,
            true,
            &mut w.gs,
        )?;
        std::mem::swap(&mut w.g, &mut w.g2);
    }
    Ok(())
}

/// `out[f×d] = g[f×f] · z[f×d]` for one sample, each output row summed in feature order
/// (fixed-width register accumulators for the common dimensions).
fn sym_times(g: &[f32], z: &[f32], out: &mut [f32], f: usize, d: usize) {
    match d {
        8 => sym_times_fixed::<8>(g, z, out, f),
        16 => sym_times_fixed::<16>(g, z, out, f),
        32 => sym_times_fixed::<32>(g, z, out, f),
        64 => sym_times_fixed::<64>(g, z, out, f),
        _ => {
            for (gi, oi) in g.chunks_exact(f).zip(out.chunks_exact_mut(d)) {
                oi.fill(0.0);
                for (&gij, zj) in gi.iter().zip(z.chunks_exact(d)) {
                    axpy(gij, zj, oi);
                }
            }
        }
    }
}

fn sym_times_fixed<const D: usize>(g: &[f32], z: &[f32], out: &mut [f32], f: usize) {
    for (gi, oi) in g.chunks_exact(f).zip(out.chunks_exact_mut(D)) {
        let mut acc = [0f32; D];
        for (&gij, zj) in gi.iter().zip(z.chunks_exact(D)) {
            for (a, &v) in acc.iter_mut().zip(zj) {
                *a += gij * v;
            }
        }
        oi.copy_from_slice(&acc);
    }
}
