//! Scalar oracles for every precision of [`PackedLinear`](super::PackedLinear).

use half::{bf16, f16};

use super::{ActivationQuant, Int8Spec, LinearScratch, QParams};

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

/// s8 symmetric weights with per-tensor or per-channel scales and their column sums.
#[derive(Debug, Clone)]
pub struct Int8Weights {
    q: Vec<i8>,
    scales: Vec<f32>,
    col_sums: Vec<i32>,
    spec: Int8Spec,
}

impl Int8Weights {
    /// Symmetric quantization: `scale = max|w| / 127`, codes in [-127, 127].
    pub fn pack(w: &[f32], n: usize, k: usize, spec: Int8Spec) -> Self {
        let amax = |s: &[f32]| s.iter().fold(0f32, |a, v| a.max(v.abs()));
        let scales: Vec<f32> = if spec.per_channel {
            (0..n).map(|j| amax(&w[j * k..(j + 1) * k])).collect()
        } else {
            vec![amax(w); n]
        };
        let scales: Vec<f32> = scales
            .into_iter()
            .map(|a| if a > 0.0 { a / 127.0 } else { 1.0 })
            .collect();
        let mut q = vec![0i8; n * k];
        let mut col_sums = vec![0i32; n];
        for j in 0..n {
            for p in 0..k {
                let c = (w[j * k + p] / scales[j])
                    .round_ties_even()
                    .clamp(-127.0, 127.0) as i8;
                q[j * k + p] = c;
                col_sums[j] += i32::from(c);
            }
        }
        Int8Weights {
            q,
            scales,
            col_sums,
            spec,
        }
    }

    /// Quantizes activations to u8, accumulates exactly in i32, dequantizes with the zero-point correction.
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
        scratch: &mut LinearScratch,
    ) {
        let qp = match self.spec.activations {
            ActivationQuant::Static(q) => q,
            ActivationQuant::Dynamic => {
                let (lo, hi) = x
                    .iter()
                    .fold((0f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
                QParams::for_u8_range(lo, hi)
            }
        };
        scratch.act_bytes.resize(m * k, 0);
        let inv = 1.0 / qp.scale;
        for (d, &v) in scratch.act_bytes.iter_mut().zip(x) {
            *d = ((v * inv).round_ties_even() + qp.zero_point as f32).clamp(0.0, 255.0) as u8;
        }
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0i32;
                for p in 0..k {
                    acc += i32::from(scratch.act_bytes[i * k + p]) * i32::from(self.q[j * k + p]);
                }
                let corrected = acc - qp.zero_point * self.col_sums[j];
                let v = corrected as f32 * (qp.scale * self.scales[j]) + bias[j];
                out[i * n + j] = finish(v, relu);
            }
        }
    }
}
