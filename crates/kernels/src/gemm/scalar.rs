//! Scalar oracles for every precision of [`PackedLinear`](super::PackedLinear).

use half::{bf16, f16};

#[inline]
fn finish(v: f32, relu: bool) -> f32 {
    if relu { v.max(0.0) } else { v }
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

    /// Plain triple loop with f32 accumulation in k order.
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
                    acc = x[i * k + p].mul_add(self.w[j * k + p], acc);
                }
                out[i * n + j] = finish(acc + bias[j], relu);
            }
        }
    }
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

    /// f32 compute on widened weights.
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
                    acc = x[i * k + p].mul_add(self.w[j * k + p].to_f32(), acc);
                }
                out[i * n + j] = finish(acc + bias[j], relu);
            }
        }
    }
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

    /// Products of bf16 values are exact in f32; accumulation is f32 in k order.
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
                    let xv = bf16::from_f32(x[i * k + p]).to_f32();
                    acc = xv.mul_add(self.w[j * k + p].to_f32(), acc);
                }
                out[i * n + j] = finish(acc + bias[j], relu);
            }
        }
    }
}
