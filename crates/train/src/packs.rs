//! The MLP and cross-net weights packed for the SIMD dense kernels of `quantrec-kernels`
//! ([`PackedLinear`], dispatched at run time to AVX-512 / AVX2 / scalar by [`quantrec_kernels::Isa::active`]),
//! rebuilt after every update. Every f32 product of the trainer runs through these kernels.
//!
//! Each Linear layer `W [out × in]` is packed twice: as itself for the forward pass
//! (`y = x·Wᵀ + b`, ReLU fused) and as `Wᵀ` for the input gradient (`dx = dy·W = dy·(Wᵀ)ᵀ`).
//! A cross layer's `V [rank × width]` and `W [width × rank]` are packed the same way.
//! Packing costs `O(out·in)` per step against `O(batch·out·in)` for the products.

use quantrec_kernels::gemm::{LinearScratch, PackedLinear, Precision};

use crate::Result;
use crate::params::{Arch, transpose};

/// One DCN cross layer `x' = x0 ⊙ (W (V x) + b) + x`, packed for its four products.
#[derive(Debug)]
pub(crate) struct CrossPacks {
    /// `V [rank × width]`: `h = x·Vᵀ`.
    pub v: PackedLinear,
    /// `W [width × rank]` with the bias `b`: `u = h·Wᵀ + b`.
    pub w: PackedLinear,
    /// `Vᵀ [width × rank]`: `dx += dh·V`.
    pub vt: PackedLinear,
    /// `Wᵀ [rank × width]`: `dh = du·W`.
    pub wt: PackedLinear,
}

/// Forward and transposed packs of the bottom and top MLPs and of the cross net.
#[derive(Debug, Default)]
pub(crate) struct Packs {
    /// Bottom layers then top layers: `W` with its bias.
    pub fwd: Vec<PackedLinear>,
    /// Same order: `Wᵀ` without bias.
    pub bwd: Vec<PackedLinear>,
    /// One per cross layer (empty without a cross net).
    pub cross: Vec<CrossPacks>,
}

impl Packs {
    /// Packs every MLP layer of `dense` (fails only on non-finite parameters, naming the layer).
    pub fn build(arch: &Arch, dense: &[f32], tmp: &mut Vec<f32>) -> Result<Packs> {
        let mut p = Packs::default();
        for s in arch.bottom.iter().chain(&arch.top) {
            let w = &dense[s.w..s.w + s.out * s.inp];
            let b = &dense[s.b..s.b + s.out];
            p.fwd
                .push(PackedLinear::new(w, Some(b), s.out, s.inp, Precision::F32)?);
            tmp.resize(s.out * s.inp, 0.0);
            transpose(w, s.out, s.inp, tmp);
            p.bwd
                .push(PackedLinear::new(tmp, None, s.inp, s.out, Precision::F32)?);
        }
        let (r, width) = (arch.rank(), arch.width);
        for c in &arch.cross {
            let v = &dense[c.v..c.v + r * width];
            let w = &dense[c.w..c.w + width * r];
            let b = &dense[c.b..c.b + width];
            tmp.resize(r * width, 0.0);
            transpose(v, r, width, tmp);
            let vt = PackedLinear::new(tmp, None, width, r, Precision::F32)?;
            transpose(w, width, r, tmp);
            let wt = PackedLinear::new(tmp, None, r, width, Precision::F32)?;
            p.cross.push(CrossPacks {
                v: PackedLinear::new(v, None, r, width, Precision::F32)?,
                w: PackedLinear::new(w, Some(b), width, r, Precision::F32)?,
                vt,
                wt,
            });
        }
        Ok(p)
    }
}

/// Buffers of the packed-kernel weight gradient.
#[derive(Debug, Default)]
pub(crate) struct GradScratch {
    /// `dyᵀ [out × m]`.
    gt: Vec<f32>,
    /// `xᵀ [in × m]`.
    xt: Vec<f32>,
    /// Kernel scratch.
    pub lin: LinearScratch,
}

/// `grad[o × i] = gᵀ · x` for a chunk of `m` rows (`g [m × o]`, `x [m × i]`): the weight
/// gradient of one Linear layer (or cross-net factor), computed as a dense layer whose weights
/// are `xᵀ`. Each value is a sum over the chunk's rows in row order.
pub(crate) fn weight_grad(
    g: &[f32],
    x: &[f32],
    grad: &mut [f32],
    m: usize,
    (o, i): (usize, usize),
    sc: &mut GradScratch,
) -> Result<()> {
    if m == 0 {
        grad[..o * i].fill(0.0);
        return Ok(());
    }
    sc.gt.resize(o * m, 0.0);
    transpose(&g[..m * o], m, o, &mut sc.gt);
    sc.xt.resize(i * m, 0.0);
    transpose(&x[..m * i], m, i, &mut sc.xt);
    let xt = PackedLinear::new(&sc.xt, None, i, m, Precision::F32)?;
    xt.forward(&sc.gt, o, &mut grad[..o * i], false, &mut sc.lin)?;
    Ok(())
}
