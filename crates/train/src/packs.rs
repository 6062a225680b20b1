//! The MLP weights packed for the SIMD dense kernels of `quantrec-kernels`
//! ([`PackedLinear`], dispatched to AVX-512 / AVX2 / scalar), rebuilt after every update.
//!
//! Each Linear layer `W [out × in]` is packed twice: as itself for the forward pass
//! (`y = x·Wᵀ + b`, ReLU fused) and as `Wᵀ` for the input gradient (`dx = dy·W = dy·(Wᵀ)ᵀ`).
//! Packing costs `O(out·in)` per step against `O(batch·out·in)` for the products.

use quantrec_kernels::gemm::{LinearScratch, PackedLinear, Precision};

use crate::Result;
use crate::params::{Arch, LinearSlot, transpose};

/// Forward and transposed packs of the bottom and top MLPs.
#[derive(Debug, Default)]
pub(crate) struct Packs {
    /// Bottom layers then top layers: `W` with its bias.
    pub fwd: Vec<PackedLinear>,
    /// Same order: `Wᵀ` without bias.
    pub bwd: Vec<PackedLinear>,
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

/// `grad[out × in] = gᵀ · x` for a chunk of `m` rows (`g [m × out]`, `x [m × in]`): the weight
/// gradient of one Linear layer, computed as a dense layer whose weights are `xᵀ`.
pub(crate) fn weight_grad(
    g: &[f32],
    x: &[f32],
    grad: &mut [f32],
    m: usize,
    s: &LinearSlot,
    sc: &mut GradScratch,
) -> Result<()> {
    let (o, i) = (s.out, s.inp);
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
