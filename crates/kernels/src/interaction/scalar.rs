//! Scalar oracles of the interaction kernels (arguments already validated by `mod.rs`).

use super::DotInput;

/// Dot interaction: dense copy, then each pair's dot product accumulated in `d` order with
/// fused multiply-adds.
pub fn dot_interaction(input: &DotInput<'_>, out: &mut [f32]) {
    let (features, pairs) = (input.features, input.pairs);
    let (batch, f, d) = (input.batch, input.f, input.d);
    let width = d + pairs.len();
    for b in 0..batch {
        let feats = &features[b * f * d..(b + 1) * f * d];
        let o = &mut out[b * width..(b + 1) * width];
        o[..d].copy_from_slice(&feats[..d]);
        for (slot, &(i, j)) in o[d..].iter_mut().zip(pairs) {
            let (a, c) = (&feats[i * d..(i + 1) * d], &feats[j * d..(j + 1) * d]);
            *slot = a.iter().zip(c).fold(0f32, |acc, (x, y)| x.mul_add(*y, acc));
        }
    }
}

/// `x_next[i] = x0[i] · u[i] + x[i]`, fused.
pub fn cross_combine(x0: &[f32], u: &[f32], x: &[f32], x_next: &mut [f32]) {
    for i in 0..x0.len() {
        x_next[i] = x0[i].mul_add(u[i], x[i]);
    }
}
