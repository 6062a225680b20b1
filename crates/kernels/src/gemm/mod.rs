//! Dense layers: `Y[m×n] = X[m×k] · Wᵀ + b` with `W` stored `n×k` (PyTorch's `Linear`), optional fused
//! ReLU, in four precisions.
//!
//! A [`PackedLinear`] is built once from f32 weights and a [`Precision`] (packing into whatever layout the
//! micro-kernels want); it is immutable and shared across threads. [`PackedLinear::forward`] runs it on a
//! batch with caller-provided [`LinearScratch`], so steady-state calls do not allocate.
//!
//! f32, f16 and bf16 layers run SIMD kernels chosen for [`Isa::active`] (or an explicit level with
//! [`PackedLinear::new_for_isa`]): weights packed once into column panels, register-blocked
//! micro-kernels (AVX2, AVX-512, `vdpbf16ps`, AMX `tdpbf16ps`), cache blocking, and rayon over row
//! blocks × panels for large batches (batches of ≤ 16 rows stay on the calling thread). The scalar
//! oracles in [`scalar`] define the results; the kernels only reassociate f32 sums.

#[cfg(target_arch = "x86_64")]
mod amx_state;
mod dense;
pub mod int8;
pub mod scalar;

use crate::registry::KernelFamily;
use crate::{Isa, KernelError, QuantProblem, Result};
use dense::PackedDense;
pub use dense::{DenseFamily, DenseOps};

/// Symmetric-or-asymmetric 8-bit quantization parameters: `real = scale · (q − zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    /// Step between consecutive codes (finite, > 0).
    pub scale: f32,
    /// The code that represents 0.0.
    pub zero_point: i32,
}

impl QParams {
    /// Asymmetric u8 parameters covering `[min(lo, 0), max(hi, 0)]` (0.0 is always exact), the way
    /// PyTorch's dynamic quantization chooses them without `reduce_range`.
    pub fn for_u8_range(lo: f32, hi: f32) -> QParams {
        let lo = lo.min(0.0);
        let hi = hi.max(0.0);
        let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
        let zp = (-lo / scale).round_ties_even().clamp(0.0, 255.0) as i32;
        QParams {
            scale,
            zero_point: zp,
        }
    }
}

/// How activations of an int8 layer are quantized to u8.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActivationQuant {
    /// Min/max of the whole batch, chosen while packing the activations (PyTorch's per-tensor
    /// dynamic quantization: a row's result depends on the other rows of its batch).
    Dynamic,
    /// Min/max of each row on its own, through the same [`int8::choose_qparams`]: every row has its
    /// own scale and zero point, so its result does not depend on the batch it is in.
    DynamicPerRow,
    /// Fixed, calibrated parameters.
    Static(QParams),
}

/// Options of an int8 layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Int8Spec {
    /// One weight scale per output channel (true) or one for the whole tensor.
    pub per_channel: bool,
    /// How activations are quantized.
    pub activations: ActivationQuant,
}

/// The arithmetic a layer runs in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Precision {
    /// f32 weights and activations.
    F32,
    /// f16 weights (saturated to ±65504), f32 activations and accumulation.
    F16,
    /// bf16 weights and activations (activations rounded per call), f32 accumulation.
    Bf16,
    /// s8 symmetric weights, u8 asymmetric activations, i32 accumulation.
    Int8(Int8Spec),
}

/// Reusable buffers for [`PackedLinear::forward`]; grows to the largest call and is then reused.
#[derive(Debug, Default, Clone)]
pub struct LinearScratch {
    /// bf16-rounded activations of the SIMD dense kernels.
    pub(crate) dense: Vec<u32>,
    /// Buffers of the int8 path.
    pub(crate) int8: int8::Int8Scratch,
}

/// Weights in the layout of their precision.
#[derive(Debug, Clone)]
enum PackedWeights {
    F32(FloatWeights<scalar::F32Weights>),
    F16(FloatWeights<scalar::F16Weights>),
    Bf16(FloatWeights<scalar::Bf16Weights>),
    Int8(int8::Int8Weights),
}

/// Float weights: the scalar oracle's layout, or panels for a SIMD kernel.
#[derive(Debug, Clone)]
enum FloatWeights<O> {
    Oracle(O),
    Simd(PackedDense),
}

/// A dense layer packed once for its precision.
#[derive(Debug, Clone)]
pub struct PackedLinear {
    n: usize,
    k: usize,
    precision: Precision,
    isa: Isa,
    saturated: usize,
    bias: Vec<f32>,
    weights: PackedWeights,
}

impl PackedLinear {
    /// Packs `weight` (`n×k`, row-major, one row per output) and `bias` (`n`, or zeros) for the
    /// kernels of [`Isa::active`]. Non-finite weights or biases are an error naming the row and column.
    pub fn new(
        weight: &[f32],
        bias: Option<&[f32]>,
        n: usize,
        k: usize,
        precision: Precision,
    ) -> Result<Self> {
        Self::new_for_isa(weight, bias, n, k, precision, Isa::active())
    }

    /// Like [`PackedLinear::new`], for the kernels of an explicit ISA level (tests, benchmarks).
    /// The packed layout depends on the level. A level above [`Isa::detected`] is an error.
    pub fn new_for_isa(
        weight: &[f32],
        bias: Option<&[f32]>,
        n: usize,
        k: usize,
        precision: Precision,
        isa: Isa,
    ) -> Result<Self> {
        if isa > Isa::detected() {
            return Err(KernelError::IsaUnavailable {
                requested: isa,
                detected: Isa::detected(),
            });
        }
        let index = if isa == Isa::active() {
            DenseFamily::active_index()
        } else {
            DenseFamily::index_for(isa)
        };
        Self::pack(weight, bias, n, k, precision, index, isa)
    }

    /// Like [`PackedLinear::new`], for implementation `index` of [`DenseFamily`] (tests and
    /// benchmarks reach every implementation this way, e.g. `vdpbf16ps` on AMX machines). An
    /// implementation this CPU cannot run is an error.
    pub fn new_for_implementation(
        weight: &[f32],
        bias: Option<&[f32]>,
        n: usize,
        k: usize,
        precision: Precision,
        index: usize,
    ) -> Result<Self> {
        let isa = DenseFamily::IMPLEMENTATIONS
            .get(index)
            .map_or(Isa::Scalar, |imp| imp.isa);
        Self::pack(weight, bias, n, k, precision, index, isa)
    }

    fn pack(
        weight: &[f32],
        bias: Option<&[f32]>,
        n: usize,
        k: usize,
        precision: Precision,
        index: usize,
        isa: Isa,
    ) -> Result<Self> {
        let ops = *DenseFamily::get(index)?;
        check_len("linear weight", n * k, weight.len())?;
        check_finite("linear weight", weight, k.max(1))?;
        let bias = match bias {
            Some(b) => {
                check_len("linear bias", n, b.len())?;
                check_finite("linear bias", b, n.max(1))?;
                b.to_vec()
            }
            None => vec![0.0; n],
        };
        let saturated = match precision {
            Precision::F16 => weight.iter().filter(|v| v.abs() > 65504.0).count(),
            _ => 0,
        };
        let weights = match precision {
            Precision::F32 => PackedWeights::F32(match ops.f32 {
                Some(kern) => FloatWeights::Simd(PackedDense::f32(kern, weight, n, k)),
                None => FloatWeights::Oracle(scalar::F32Weights::pack(weight, n, k)),
            }),
            Precision::F16 => PackedWeights::F16(match ops.f16 {
                Some(kern) => FloatWeights::Simd(PackedDense::f16(kern, weight, n, k)),
                None => FloatWeights::Oracle(scalar::F16Weights::pack(weight, n, k)),
            }),
            Precision::Bf16 => PackedWeights::Bf16(match ops.bf16 {
                Some(kern) => FloatWeights::Simd(PackedDense::bf16(kern, weight, n, k)),
                None => FloatWeights::Oracle(scalar::Bf16Weights::pack(weight, n, k)),
            }),
            Precision::Int8(spec) => {
                if let ActivationQuant::Static(q) = spec.activations {
                    check_qparams("static activation", q)?;
                }
                PackedWeights::Int8(int8::Int8Weights::pack(weight, n, k, spec)?)
            }
        };
        Ok(PackedLinear {
            n,
            k,
            precision,
            isa,
            saturated,
            bias,
            weights,
        })
    }

    /// Output features.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input features.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The precision it was packed for.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The ISA level whose kernels it was packed for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// How many weights exceeded ±65504 and were saturated while packing to f16 (0 for other
    /// precisions), like FBGEMM's fp16 packing reports.
    pub fn saturated_weights(&self) -> usize {
        self.saturated
    }

    /// The bias (length `n`).
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// Bytes of the packed weights and bias (what this layer costs in a model).
    pub fn weight_bytes(&self) -> usize {
        let per = match self.precision {
            Precision::F32 => 4,
            Precision::F16 | Precision::Bf16 => 2,
            Precision::Int8(_) => 1,
        };
        self.n * self.k * per + self.n * 4
    }

    /// `out[m×n] = x[m×k] · Wᵀ + b`, then ReLU when `relu`.
    pub fn forward(
        &self,
        x: &[f32],
        m: usize,
        out: &mut [f32],
        relu: bool,
        scratch: &mut LinearScratch,
    ) -> Result<()> {
        check_len("linear input", m * self.k, x.len())?;
        check_len("linear output", m * self.n, out.len())?;
        let (n, k, bias) = (self.n, self.k, &self.bias[..]);
        match &self.weights {
            PackedWeights::F32(FloatWeights::Oracle(w)) => w.forward(x, m, n, k, bias, out, relu),
            PackedWeights::F16(FloatWeights::Oracle(w)) => w.forward(x, m, n, k, bias, out, relu),
            PackedWeights::Bf16(FloatWeights::Oracle(w)) => w.forward(x, m, n, k, bias, out, relu),
            PackedWeights::F32(FloatWeights::Simd(w))
            | PackedWeights::F16(FloatWeights::Simd(w))
            | PackedWeights::Bf16(FloatWeights::Simd(w)) => {
                w.forward(x, m, bias, out, relu, &mut scratch.dense)
            }
            PackedWeights::Int8(w) => w.forward(x, m, bias, out, relu, &mut scratch.int8)?,
        }
        Ok(())
    }
}

/// True when this process can use AMX-BF16 tiles (CPU support, OS tile state and, on Linux, the
/// permission requested on first call); the bf16 dense kernel uses them at the Vnni level.
pub fn amx_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        dense::amx_available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// True when this process can use AMX-INT8 tiles (CPU support, OS tile state and permission);
/// the int8 kernel uses them at the Vnni level.
pub fn amx_int8_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        int8::amx_usable()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

pub(crate) fn check_len(what: &'static str, expected: usize, found: usize) -> Result<()> {
    if expected != found {
        return Err(KernelError::Shape {
            what,
            index: None,
            expected,
            found,
        });
    }
    Ok(())
}

fn check_finite(what: &'static str, v: &[f32], row_len: usize) -> Result<()> {
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(KernelError::NonFinite {
            what,
            table: None,
            row: i / row_len,
            col: i % row_len,
            value: v[i],
        });
    }
    Ok(())
}

pub(crate) fn check_qparams(what: &'static str, q: QParams) -> Result<()> {
    if !(q.scale.is_finite() && q.scale > 0.0 && (0..=255).contains(&q.zero_point)) {
        return Err(KernelError::BadQuantParams {
            what,
            table: None,
            problem: QuantProblem::Activation {
                scale: q.scale,
                zero_point: q.zero_point,
            },
        });
    }
    Ok(())
}
