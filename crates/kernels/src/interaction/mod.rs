//! Feature interaction: DLRM's pairwise dot products and the DCN-v2 cross layer's element-wise step.
//!
//! Dispatch goes through the [registry](crate::registry): [`InteractionFamily`] lists the scalar
//! oracle, AVX2 and AVX-512 implementations of the [`InteractionOps`] table. The SIMD dot kernels
//! compute 16 (AVX-512) or 8 (AVX2) pairs at a time, one vector accumulator per pair over `d`, then fold
//! the accumulators with a transpose-and-add tree into one vector of dot products stored contiguously,
//! so any pair list (either DLRM order, with or without self-interaction) runs at full width.

pub mod scalar;

#[cfg(target_arch = "x86_64")]
mod simd;

use crate::registry::{FamilyCache, Implementation, KernelFamily, SCALAR_AVX2_AVX512};
use crate::{Isa, KernelError, Result};

/// Which pairs of feature vectors a dot interaction emits, and in what order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PairOrder {
    /// facebookresearch/dlrm: pairs (i, j) with j < i (j ≤ i with self-interaction), by i then j.
    LowerByRow,
    /// TorchRec: pairs (i, j) with i < j (i ≤ j with self-interaction), by i then j
    /// (`torch.triu_indices(F+1, F+1, 1)`).
    UpperByRow,
}

/// Number of dot products emitted for `f` feature vectors.
pub fn num_pairs(f: usize, self_interaction: bool) -> usize {
    if self_interaction {
        f * (f + 1) / 2
    } else {
        f * f.saturating_sub(1) / 2
    }
}

/// The (i, j) feature pairs of an interaction, in emission order.
pub fn pairs(f: usize, order: PairOrder, self_interaction: bool) -> Vec<(usize, usize)> {
    let mut v = Vec::with_capacity(num_pairs(f, self_interaction));
    match order {
        PairOrder::LowerByRow => {
            for i in 0..f {
                let end = if self_interaction { i + 1 } else { i };
                for j in 0..end {
                    v.push((i, j));
                }
            }
        }
        PairOrder::UpperByRow => {
            for i in 0..f {
                let start = if self_interaction { i } else { i + 1 };
                for j in start..f {
                    v.push((i, j));
                }
            }
        }
    }
    v
}

/// Dot interaction kernel: `(features, batch, f, d, pairs, out)`.
type DotFn = fn(&DotInput<'_>, &mut [f32]);

/// The inputs of a dot interaction, as the kernels receive them after validation: `features` is
/// `[batch, f, d]`, every pair indexes features below `f`.
#[derive(Clone, Copy, Debug)]
pub struct DotInput<'a> {
    /// `[batch, f, d]` feature vectors (feature 0 is the dense vector).
    pub features: &'a [f32],
    /// Samples.
    pub batch: usize,
    /// Feature vectors per sample.
    pub f: usize,
    /// Dimension of each vector.
    pub d: usize,
    /// The pairs to emit, in output order.
    pub pairs: &'a [(usize, usize)],
}
/// Cross-combine kernel: `(x0, u, x, x_next)`.
type CrossFn = fn(&[f32], &[f32], &[f32], &mut [f32]);

/// The interaction ops table: function pointers filled "richest ISA last".
#[derive(Clone, Copy)]
pub struct InteractionOps {
    /// Dot interaction on validated arguments (see [`dot_interaction`]).
    dot: DotFn,
    /// `x_next = x0 ⊙ u + x` on equal-length slices (fused multiply-add, as the oracle).
    cross: CrossFn,
}

/// The interaction family in the [registry](crate::registry): dot interaction and the DCN-v2
/// cross step.
pub struct InteractionFamily;

static CACHE: FamilyCache<InteractionOps> = FamilyCache::new();

impl KernelFamily for InteractionFamily {
    const NAME: &'static str = "interaction";
    type Ops = InteractionOps;
    const IMPLEMENTATIONS: &'static [Implementation] = SCALAR_AVX2_AVX512;

    fn build(index: usize) -> Result<InteractionOps> {
        let (dot, cross): (DotFn, CrossFn) = match index {
            #[cfg(target_arch = "x86_64")]
            1 => (simd::dot_avx2, simd::cross_avx2),
            #[cfg(target_arch = "x86_64")]
            2 => (simd::dot_avx512, simd::cross_avx512),
            _ => (scalar::dot_interaction, scalar::cross_combine),
        };
        Ok(InteractionOps { dot, cross })
    }

    fn cache() -> &'static FamilyCache<InteractionOps> {
        &CACHE
    }
}

impl InteractionOps {
    /// The cached table of `isa`; levels the CPU lacks are an error.
    pub fn for_isa(isa: Isa) -> Result<&'static InteractionOps> {
        InteractionFamily::for_level(isa)
    }

    /// [`dot_interaction`] with this table.
    pub fn dot_interaction(
        &self,
        features: &[f32],
        batch: usize,
        f: usize,
        d: usize,
        pairs: &[(usize, usize)],
        out: &mut [f32],
    ) -> Result<()> {
        check_dot(features, batch, f, d, pairs, out)?;
        let input = DotInput {
            features,
            batch,
            f,
            d,
            pairs,
        };
        (self.dot)(&input, out);
        Ok(())
    }

    /// [`cross_combine`] with this table.
    pub fn cross_combine(
        &self,
        x0: &[f32],
        u: &[f32],
        x: &[f32],
        x_next: &mut [f32],
    ) -> Result<()> {
        check_cross(x0, u, x, x_next)?;
        (self.cross)(x0, u, x, x_next);
        Ok(())
    }
}

/// Dot interaction for a batch: `features` is `[batch, f, d]`; each output row is the dense vector
/// (feature 0, `d` values) followed by the dot products of `pairs`. `out` is `[batch, d + pairs.len()]`.
/// Runs at [`Isa::active`].
pub fn dot_interaction(
    features: &[f32],
    batch: usize,
    f: usize,
    d: usize,
    pairs: &[(usize, usize)],
    out: &mut [f32],
) -> Result<()> {
    InteractionFamily::active().dot_interaction(features, batch, f, d, pairs, out)
}

/// The element-wise step of a DCN-v2 cross layer: `x_next = x0 ⊙ u + x` where `u = W(V x) + b` was
/// computed by two dense layers. All slices have the same length. Runs at [`Isa::active`].
pub fn cross_combine(x0: &[f32], u: &[f32], x: &[f32], x_next: &mut [f32]) -> Result<()> {
    InteractionFamily::active().cross_combine(x0, u, x, x_next)
}

fn check_dot(
    features: &[f32],
    batch: usize,
    f: usize,
    d: usize,
    pairs: &[(usize, usize)],
    out: &[f32],
) -> Result<()> {
    let width = d + pairs.len();
    if features.len() != batch * f * d {
        return Err(KernelError::Shape {
            what: "interaction features [batch, f, d]",
            index: None,
            expected: batch * f * d,
            found: features.len(),
        });
    }
    if out.len() != batch * width {
        return Err(KernelError::Shape {
            what: "interaction output",
            index: None,
            expected: batch * width,
            found: out.len(),
        });
    }
    if batch > 0 && f == 0 {
        return Err(KernelError::Shape {
            what: "interaction feature count (the dense vector is feature 0)",
            index: None,
            expected: 1,
            found: 0,
        });
    }
    if let Some((p, &(i, j))) = pairs
        .iter()
        .enumerate()
        .find(|(_, (i, j))| *i >= f || *j >= f)
    {
        return Err(KernelError::Shape {
            what: "interaction pair (feature count)",
            index: Some(p),
            expected: f,
            found: i.max(j),
        });
    }
    Ok(())
}

fn check_cross(x0: &[f32], u: &[f32], x: &[f32], x_next: &[f32]) -> Result<()> {
    let n = x0.len();
    for (what, len) in [
        ("cross u", u.len()),
        ("cross x", x.len()),
        ("cross output", x_next.len()),
    ] {
        if len != n {
            return Err(KernelError::Shape {
                what,
                index: None,
                expected: n,
                found: len,
            });
        }
    }
    Ok(())
}
