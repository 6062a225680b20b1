//! Feature interaction: DLRM's pairwise dot products and the DCN-v2 cross layer's element-wise step.

use crate::{KernelError, Result};

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

/// Dot interaction for a batch: `features` is `[batch, f, d]`; each output row is the dense vector
/// (feature 0, `d` values) followed by the dot products of `pairs`. `out` is `[batch, d + pairs.len()]`.
pub fn dot_interaction(
    features: &[f32],
    batch: usize,
    f: usize,
    d: usize,
    pairs: &[(usize, usize)],
    out: &mut [f32],
) -> Result<()> {
    let width = d + pairs.len();
    if features.len() != batch * f * d {
        return Err(KernelError::Shape {
            what: "interaction features [batch, f, d]".into(),
            expected: batch * f * d,
            found: features.len(),
        });
    }
    if out.len() != batch * width {
        return Err(KernelError::Shape {
            what: "interaction output".into(),
            expected: batch * width,
            found: out.len(),
        });
    }
    if let Some(&(i, j)) = pairs.iter().find(|&&(i, j)| i >= f || j >= f) {
        return Err(KernelError::Shape {
            what: format!("interaction pair ({i}, {j})"),
            expected: f,
            found: i.max(j),
        });
    }
    for b in 0..batch {
        let feats = &features[b * f * d..(b + 1) * f * d];
        let o = &mut out[b * width..(b + 1) * width];
        o[..d].copy_from_slice(&feats[..d]);
        for (slot, &(i, j)) in o[d..].iter_mut().zip(pairs) {
            let (a, c) = (&feats[i * d..(i + 1) * d], &feats[j * d..(j + 1) * d]);
            *slot = a.iter().zip(c).fold(0f32, |acc, (x, y)| x.mul_add(*y, acc));
        }
    }
    Ok(())
}

/// The element-wise step of a DCN-v2 cross layer: `x_next = x0 ⊙ u + x` where `u = W(V x) + b` was
/// computed by two dense layers. All slices have the same length.
pub fn cross_combine(x0: &[f32], u: &[f32], x: &[f32], x_next: &mut [f32]) -> Result<()> {
    let n = x0.len();
    for (what, len) in [
        ("cross u", u.len()),
        ("cross x", x.len()),
        ("cross output", x_next.len()),
    ] {
        if len != n {
            return Err(KernelError::Shape {
                what: what.into(),
                expected: n,
                found: len,
            });
        }
    }
    for i in 0..n {
        x_next[i] = x0[i].mul_add(u[i], x[i]);
    }
    Ok(())
}
