//! Shared by the int8 Linear test files: precisions, random layers with channels of very
//! different ranges, and activation codes that hit both ends of the range.

use quantrec_kernels::gemm::{ActivationQuant, Int8Spec, PackedLinear, Precision};
use quantrec_kernels::rng::Rng;

/// The int8 precision with per-channel (or per-tensor) weights and the given activations.
pub fn spec(per_channel: bool, activations: ActivationQuant) -> Precision {
    Precision::Int8(Int8Spec {
        per_channel,
        activations,
    })
}

/// A random `n × k` layer (weights, bias and the packed layer) at `prec`.
pub fn layer(
    rng: &mut Rng,
    n: usize,
    k: usize,
    prec: Precision,
) -> (Vec<f32>, Vec<f32>, PackedLinear) {
    let mut w = rng.normal_vec(n * k, 0.1);
    // Give channels very different ranges so per-channel scales differ.
    for j in 0..n {
        let f = 1.0 + (j % 5) as f32 * 3.0;
        w[j * k..(j + 1) * k].iter_mut().for_each(|v| *v *= f);
    }
    let b = rng.normal_vec(n, 0.5);
    let lin = PackedLinear::new(&w, Some(&b), n, k, prec).unwrap();
    (w, b, lin)
}

/// `len` random activation codes, every 11th 255 and the next 0.
pub fn u8_vec(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| match i % 11 {
            0 => 255,
            1 => 0,
            _ => rng.below(256) as u8,
        })
        .collect()
}
