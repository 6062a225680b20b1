//! Scalar oracles for every precision of [`PackedLinear`](super::PackedLinear).

use half::{bf16, f16};

#[inline]
fn finish(v: f32, relu: bool) -> f32 {
    if relu { v.max(0.0) } else { v }
}

/// Defines the oracle's `forward(x, m, n, k, bias, out, relu)`: a plain triple loop with f32
/// accumulation in k order of `widen_x(x[i][p]) · widen_w(w[j][p])`, then bias and optional ReLU.
macro_rules! oracle_forward {
    ($doc:literal, |$x:ident| $widen_x:expr, |$w:ident| $widen_w:expr) => {
        #[doc = $doc]
        #[allow(clippy::too_many_arguments)]
        pub fn forward(
            &self,
            x: &[f32],
            m: usize,
            n: usize,
            k: usize,
            bias: &[f32],
            out: &mut [f32],
            relu: bool,
        ) {
            for i in 0..m {
                for j in 0..n {
                    let mut acc = 0f32;
                    for p in 0..k {
                        let ($x, $w) = (x[i * k + p], self.w[j * k + p]);
                        acc = ($widen_x).mul_add($widen_w, acc);
                    }
                    out[i * n + j] = finish(acc + bias[j], relu);
                }
            }
        }
    };
}

/// f32 weights, row-major `n×k`.
#[derive(Debug, Clone)]
pub struct F32Weights {
    w: Vec<f32>,
}

impl F32Weights {
    /// Copies the weights.
    pub fn pack(w: &[f32], _n: usize, _k: usize) -> Self {
        F32Weights { w: w.to_vec() }
    }

    oracle_forward!(
        "Plain triple loop with f32 accumulation in k order.",
        |x| x,
        |w| w
    );
}

/// f16 weights (values beyond ±65504 saturate, like FBGEMM's fp16 packing).
#[derive(Debug, Clone)]
pub struct F16Weights {
    w: Vec<f16>,
    /// How many weights were saturated while packing.
    pub saturated: usize,
}

impl F16Weights {
    /// Rounds to f16, saturating out-of-range values.
    pub fn pack(w: &[f32], _n: usize, _k: usize) -> Self {
        let mut saturated = 0;
        let w = w
            .iter()
            .map(|&v| {
                if v.abs() > 65504.0 {
                    saturated += 1;
                    f16::from_f32(v.clamp(-65504.0, 65504.0))
                } else {
                    f16::from_f32(v)
                }
            })
            .collect();
        F16Weights { w, saturated }
    }

    oracle_forward!("f32 compute on widened weights.", |x| x, |w| w.to_f32());
}

/// bf16 weights; activations are rounded to bf16 per call.
#[derive(Debug, Clone)]
pub struct Bf16Weights {
    w: Vec<bf16>,
}

impl Bf16Weights {
    /// Rounds to bf16 (nearest even).
    pub fn pack(w: &[f32], _n: usize, _k: usize) -> Self {
        Bf16Weights {
            w: w.iter().map(|&v| bf16::from_f32(v)).collect(),
        }
    }

    oracle_forward!(
        "Products of bf16 values are exact in f32; accumulation is f32 in k order.",
        |x| bf16::from_f32(x).to_f32(),
        |w| w.to_f32()
    );
}
