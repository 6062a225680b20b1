//! int8 dense layers: u8 activations × s8 weights → exact i32 accumulation, then a fused epilogue
//! (dequantize to f32 with bias and ReLU, or requantize to u8 for the next int8 layer).
//!
//! # Semantics (PyTorch `torch.ao.nn.quantized.dynamic.Linear` with FBGEMM)
//! - **Weights** are quantized the way PyTorch's default weight observers do it
//!   (`MinMaxObserver` / `PerChannelMinMaxObserver` with `qint8` and `per_{tensor,channel}_symmetric`):
//!   `scale = max(max|w| / 127.5, f32::EPSILON)` in f32 (`127.5 = (127 − (−128)) / 2`), zero point 0,
//!   codes `clamp(round_ties_even(w · (1/scale)), −128, 127)`. Codes can therefore be −128.
//! - **Activations** are asymmetric u8: `q = clamp(round_ties_even(x · (1/scale)) + zero_point, 0, 255)`.
//!   Dynamic parameters come from the batch's min/max by FBGEMM's `ChooseQuantizationParams`
//!   ([`choose_qparams`]) — so a row's output depends on the other rows of its batch, as in PyTorch's
//!   per-tensor dynamic quantization — or, with [`ActivationQuant::DynamicPerRow`], from each row's own
//!   min/max through the same function (every row then computes the same whatever the batch). PyTorch's dynamic `Linear` module passes `reduce_range=True` (7-bit activations,
//!   codes 0..=127) on every CPU; we default to the full 8-bit range (twice the resolution) and
//!   reproduce PyTorch exactly with [`PackedLinear::int8_reduce_range`].
//! - **Accumulation** is exact in i32: `acc[i][j] = Σ_p a[i][p] · w[j][p]`, corrected by the zero point
//!   through column sums computed once at pack time: `c = acc − zp · colsum[j]` (weights are symmetric,
//!   so no row sums are needed). `k` is limited to [`MAX_K`] so this can never overflow.
//! - **f32 epilogue**: `y = (c as f32) · (x_scale · w_scale[j]) + bias[j]` (a multiply, then an add; the
//!   formula of FBGEMM's `ReQuantizeForFloat`), then `max(y, 0)` with ReLU. Per row:
//!   `y = (acc − zp_i · colsum[j]) as f32 · (x_scale_i · w_scale[j]) + bias[j]`.
//! - **u8 epilogue**: `clamp(round_ties_even(y · (1/out_scale)) + out_zp, lo, 255)` with `lo = out_zp`
//!   under ReLU (ReLU folded into the clamp, which is exact) and 0 otherwise.
//!
//! # Kernels
//! Weights are packed once into panels of [`NR`] = 16 output columns; inside a panel, `k` runs in groups
//! of 4 (64 bytes per group: column-major 4-byte groups, exactly one `vpdpbusd` operand). `k` is padded
//! to a multiple of 4 and `n` to a multiple of 16 with zero weights; activations are padded with zero codes.
//! - [`Int8Kernel::Avx512Vnni`]: 512-bit `vpdpbusd`; 8×48 register tiles, or all rows at once for
//!   `m ≤ 16`; activations are laid out in row blocks of the tile height, each group of 4 codes of the
//!   block's rows adjacent, so every broadcast comes from one running pointer.
//! - [`Int8Kernel::Amx`]: AMX-INT8 `tdpbusd` on 16×64-byte tiles (2×2 tiles: 32 rows × 32 columns)
//!   for `m ≥ 16`, row-major activations padded to 64 bytes; the VNNI kernel does the rest.
//! - [`Int8Kernel::AvxVnni`]: 256-bit VEX `vpdpbusd`, 6×16 tiles.
//! - [`Int8Kernel::Avx2`]: never saturates: weights are sign-extended to i16 (`vpmovsxbw`), activations
//!   zero-extended to i16, products summed in i32 by `vpmaddwd` (no `vpmaddubsw`, whose i16 sums saturate).
//! - [`Int8Kernel::Scalar`]: the plain reference on the same packed layout.

pub mod cross_quant;
pub mod scalar;

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod avxvnni;
mod buf;
mod driver;
#[cfg(target_arch = "x86_64")]
mod simd;

use super::{ActivationQuant, Int8Spec, PackedLinear, PackedWeights, QParams};
use crate::registry::{FamilyCache, Implementation, KernelFamily};
use crate::{Isa, KernelError, QuantProblem, Result};

/// Output columns per packed weight panel.
pub const NR: usize = 16;
/// Reduction elements per `vpdpbusd` group.
pub const KG: usize = 4;
/// Reduction elements per AMX tile row: each panel's `k` is padded to a multiple of this, so a
/// panel is a whole number of 1 KiB `B` tiles.
pub const KT: usize = 64;
/// Largest supported input width: `255 · 128 · k < 2³¹` keeps every i32 accumulator exact.
pub const MAX_K: usize = 65_793;

/// FBGEMM's `ChooseQuantizationParams` for u8 (`qmin = 0`, `qmax = 255`, or 127 with `reduce_range`),
/// without sparsity preservation or power-of-two scales: the range is widened to include 0, the scale is
/// `(max − min) / (qmax − qmin)` in f64 (0.1 for an empty or degenerate range, at least 6.1e-5 with the
/// range rescaled as FBGEMM does), and the zero point is taken from whichever end has the smaller error,
/// rounded to nearest even and clamped to `[qmin, qmax]`.
pub fn choose_qparams(min: f32, max: f32, reduce_range: bool) -> QParams {
    const SMALL_SCALE_THRESHOLD: f32 = 6.1e-5;
    let (qmin, qmax) = if reduce_range {
        (0i32, 127i32)
    } else {
        (0, 255)
    };
    let mut min = min.min(0.0);
    let mut max = max.max(0.0);
    let mut scale = (f64::from(max) - f64::from(min)) / f64::from(qmax - qmin);
    let s32 = scale as f32;
    if s32 == 0.0 || (1.0f32 / s32).is_infinite() {
        scale = 0.1;
    }
    let mut scale = scale as f32;
    if scale < SMALL_SCALE_THRESHOLD {
        let org = scale;
        scale = SMALL_SCALE_THRESHOLD;
        let span = (qmax - qmin) as f32;
        if min == 0.0 {
            max = SMALL_SCALE_THRESHOLD * span;
        } else if max == 0.0 {
            min = -SMALL_SCALE_THRESHOLD * span;
        } else {
            let amp = SMALL_SCALE_THRESHOLD / org;
            min *= amp;
            max *= amp;
        }
    }
    let s = f64::from(scale);
    let zp_from_min = f64::from(qmin) - f64::from(min) / s;
    let zp_from_max = f64::from(qmax) - f64::from(max) / s;
    let err_min = f64::from(qmin).abs() - (f64::from(min) / s).abs();
    let err_max = f64::from(qmax).abs() - (f64::from(max) / s).abs();
    let initial = if err_min < err_max {
        zp_from_min
    } else {
        zp_from_max
    };
    let zero_point = if initial < f64::from(qmin) {
        qmin
    } else if initial > f64::from(qmax) {
        qmax
    } else {
        initial.round_ties_even() as i32
    };
    QParams { scale, zero_point }
}

/// PyTorch's symmetric s8 weight scale for a tensor (or channel) whose largest magnitude is `amax`.
pub fn weight_scale(amax: f32) -> f32 {
    (amax / 127.5).max(f32::EPSILON)
}

/// PyTorch's symmetric s8 weight quantization (the one source of truth for int8 weights): one
/// [`weight_scale`] per output channel (`per_channel`, `n` scales) or for the whole tensor (1 scale),
/// codes `clamp(round_ties_even(w · (1/scale)), −128, 127)`, row-major `n×k`.
pub fn quantize_weights(w: &[f32], n: usize, k: usize, per_channel: bool) -> (Vec<i8>, Vec<f32>) {
    let amax = |s: &[f32]| s.iter().fold(0f32, |a, v| a.max(v.abs()));
    let scales: Vec<f32> = if per_channel {
        (0..n)
            .map(|j| weight_scale(amax(&w[j * k..(j + 1) * k])))
            .collect()
    } else {
        vec![weight_scale(amax(&w[..n * k]))]
    };
    let mut codes = vec![0i8; n * k];
    for j in 0..n {
        let inv = 1.0 / scales[if per_channel { j } else { 0 }];
        for q in 0..k {
            codes[j * k + q] = (w[j * k + q] * inv).round_ties_even().clamp(-128.0, 127.0) as i8;
        }
    }
    (codes, scales)
}

fn check_k(k: usize) -> Result<()> {
    if k > MAX_K {
        return Err(KernelError::Shape {
            what: "int8 linear input width (at most MAX_K keeps i32 sums exact)",
            index: None,
            expected: MAX_K,
            found: k,
        });
    }
    Ok(())
}

/// Whether the AMX kernel can run here (CPU, OS permission).
pub(crate) fn amx_usable() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        amx::usable()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// An int8 kernel variant (what the ops table is built from); tests run every available one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Int8Kernel {
    /// Portable reference on the packed layout.
    Scalar,
    /// AVX2, i16-widened products (`vpmovsxbw` + `vpmaddwd`): exact, no saturation.
    Avx2,
    /// 256-bit AVX-VNNI `vpdpbusd` (used at levels Avx2 and Avx512 when the CPU has it).
    AvxVnni,
    /// 512-bit AVX512-VNNI `vpdpbusd` (level Vnni).
    Avx512Vnni,
    /// AMX-INT8 `tdpbusd` tiles for `m ≥ 16` (AVX512-VNNI for the rest); used at level Vnni when the
    /// CPU has AMX and the OS grants the tile state.
    Amx,
}

impl Int8Kernel {
    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Int8Kernel::Scalar => "scalar",
            Int8Kernel::Avx2 => "avx2",
            Int8Kernel::AvxVnni => "avxvnni",
            Int8Kernel::Avx512Vnni => "avx512vnni",
            Int8Kernel::Amx => "amx",
        }
    }

    /// Every kernel, in the order of [`Int8Family::IMPLEMENTATIONS`].
    pub const ALL: [Int8Kernel; 5] = [
        Int8Kernel::Scalar,
        Int8Kernel::Avx2,
        Int8Kernel::AvxVnni,
        Int8Kernel::Avx512Vnni,
        Int8Kernel::Amx,
    ];

    /// The kernel's index in [`Int8Family::IMPLEMENTATIONS`].
    pub fn index(self) -> usize {
        match self {
            Int8Kernel::Scalar => 0,
            Int8Kernel::Avx2 => 1,
            Int8Kernel::AvxVnni => 2,
            Int8Kernel::Avx512Vnni => 3,
            Int8Kernel::Amx => 4,
        }
    }

    /// The richest kernel for an ISA level on this CPU (the registry's choice for that level).
    pub fn for_isa(isa: Isa) -> Int8Kernel {
        Int8Kernel::ALL[Int8Family::index_for(isa)]
    }

    /// Every kernel this CPU can run (what the tests iterate over).
    pub fn available() -> Vec<Int8Kernel> {
        Int8Family::available()
            .map(|(i, _)| Int8Kernel::ALL[i])
            .collect()
    }

    /// The kernel of [`Isa::active`].
    pub fn active() -> Int8Kernel {
        Int8Kernel::ALL[Int8Family::active_index()]
    }

    fn isa(self) -> Isa {
        Int8Family::IMPLEMENTATIONS[self.index()].isa
    }
}

/// The int8 GEMM family in the [registry](crate::registry); its implementations are the
/// [`Int8Kernel`]s, in that enum's order.
pub struct Int8Family;

static CACHE: FamilyCache<Int8Ops> = FamilyCache::new();

impl KernelFamily for Int8Family {
    const NAME: &'static str = "gemm_int8";
    type Ops = Int8Ops;
    const IMPLEMENTATIONS: &'static [Implementation] = &[
        Implementation::at("scalar", Isa::Scalar),
        Implementation::at("avx2", Isa::Avx2),
        Implementation::probed("avxvnni", Isa::Avx2, crate::isa::has_avx_vnni),
        Implementation::at("avx512vnni", Isa::Vnni),
        Implementation::probed("amx", Isa::Vnni, amx_usable),
    ];

    fn build(index: usize) -> Result<Int8Ops> {
        Ok(Int8Ops::build(Int8Kernel::ALL[index]))
    }

    fn cache() -> &'static FamilyCache<Int8Ops> {
        &CACHE
    }
}

/// Quantizes activations: `(x, m, k, row stride, block height, 1/scale, zero point, out)`; the
/// reciprocal scales and zero points hold one value for every row or one per row.
pub(crate) type QuantizeFn = fn(&[f32], usize, usize, usize, usize, &[f32], &[i32], &mut [u8]);

/// The int8 ops table of one [`Int8Kernel`]: function pointers, each level overriding the ones below.
#[derive(Clone, Copy)]
pub struct Int8Ops {
    /// `(min, max, all finite)` of a slice (0.0 both for an empty slice).
    pub(crate) min_max: fn(&[f32]) -> (f32, f32, bool),
    /// Quantizes `m` rows of `k` values into the blocked layout of `kp`-wide rows (zero-padded) with
    /// row blocks of the given height (see [`scalar::a_offset`]).
    pub(crate) quantize: QuantizeFn,
    /// Activation layout `(block height, row stride)` the GEMM wants for `m` rows of `kp` codes
    /// (height 1: plain row-major; the stride is a multiple of 4, at least `kp`).
    pub(crate) a_layout: fn(usize, usize) -> (usize, usize),
    /// Runs the packed GEMM over a block of rows with the epilogue.
    pub(crate) gemm: driver::GemmFn,
    /// Applies the epilogue to one tile of raw accumulators.
    pub(crate) epilogue: driver::EpiFn,
    /// The AMX tile path, used instead of `quantize`/`gemm` for batches of at least
    /// [`driver::TileOps::min_rows`] rows.
    pub(crate) tiles: Option<driver::TileOps>,
}

impl Int8Ops {
    fn build(kernel: Int8Kernel) -> Int8Ops {
        #[allow(unused_mut)]
        let mut ops = Int8Ops {
            min_max: scalar::min_max,
            quantize: scalar::quantize_rows,
            gemm: scalar::gemm,
            epilogue: scalar::epilogue,
            a_layout: |_, kp| (1, kp),
            tiles: None,
        };
        #[cfg(target_arch = "x86_64")]
        {
            if kernel.isa() >= Isa::Avx2 {
                ops.min_max = avx2::min_max;
                ops.quantize = avx2::quantize_rows;
                ops.gemm = avx2::gemm;
                ops.epilogue = avx2::epilogue;
            }
            if kernel == Int8Kernel::AvxVnni {
                ops.gemm = avxvnni::gemm;
            }
            if kernel.isa() >= Isa::Avx512 {
                ops.min_max = avx512::min_max;
                ops.quantize = avx512::quantize_rows;
                ops.epilogue = avx512::epilogue;
            }
            if kernel.isa() >= Isa::Vnni {
                ops.gemm = avx512::vnni::gemm;
                ops.a_layout = avx512::vnni::a_layout;
            }
            if kernel == Int8Kernel::Amx {
                ops.tiles = Some(amx::tile_ops());
            }
        }
        let _ = kernel;
        ops
    }

    fn get(kernel: Int8Kernel) -> Result<&'static Int8Ops> {
        Int8Family::get(kernel.index())
    }
}

/// Reusable buffers of the int8 path (part of [`LinearScratch`](super::LinearScratch)).
#[derive(Debug, Default, Clone)]
pub struct Int8Scratch {
    /// Quantized activations in the kernel's layout (64-byte aligned).
    pub(crate) act: buf::AlignedBytes,
    /// Per-column zero-point correction `zp · colsum[j]`.
    pub(crate) corr: Vec<i32>,
    /// Per-column dequantization multiplier `x_scale · w_scale[j]`.
    pub(crate) mult: Vec<f32>,
    /// Activation zero points: one per row ([`ActivationQuant::DynamicPerRow`]) or one in all.
    pub(crate) row_zp: Vec<i32>,
    /// Activation scales per row ([`ActivationQuant::DynamicPerRow`]).
    pub(crate) row_scale: Vec<f32>,
    /// Reciprocal activation scales: one per row or one in all.
    pub(crate) row_inv: Vec<f32>,
}

/// s8 symmetric weights packed into 16-column panels of 4-deep groups, with their scales and column sums.
/// Each panel holds `k` rounded up to a multiple of [`KT`] (zero weights beyond `k`), so it is also a
/// sequence of AMX `B` tiles; the buffer is 64-byte aligned.
#[derive(Debug, Clone)]
pub struct Int8Weights {
    n: usize,
    k: usize,
    /// `k` rounded up to a multiple of [`KG`] (the groups the VNNI kernels sum over).
    kp: usize,
    /// Bytes per panel: `k` rounded up to [`KT`], times [`NR`].
    pstride: usize,
    packed: buf::AlignedBytes,
    scales: Vec<f32>,
    col_sums: Vec<i32>,
    spec: Int8Spec,
    reduce_range: bool,
}

impl Int8Weights {
    /// Quantizes `w` (`n×k`, row-major) as PyTorch's default weight observer does
    /// ([`quantize_weights`]) and packs it. `k` above [`MAX_K`] is an error (the i32 accumulators
    /// could overflow).
    pub fn pack(w: &[f32], n: usize, k: usize, spec: Int8Spec) -> Result<Self> {
        check_k(k)?;
        if w.len() != n * k {
            return Err(KernelError::Shape {
                what: "int8 linear weight",
                index: None,
                expected: n * k,
                found: w.len(),
            });
        }
        let (codes, scales) = quantize_weights(w, n, k, spec.per_channel);
        Self::from_codes(&codes, &scales, n, k, spec)
    }

    /// Packs already-quantized weights: `codes` (`n×k`, row-major, any s8 value) with `scales`
    /// (`n` of them when `spec.per_channel`, else 1), value = `code · scale`. The layer then runs
    /// exactly these codes (a stored model loads without re-quantizing). Errors: wrong lengths,
    /// a scale that is not finite and > 0, `k` above [`MAX_K`].
    pub fn from_codes(
        codes: &[i8],
        scales: &[f32],
        n: usize,
        k: usize,
        spec: Int8Spec,
    ) -> Result<Self> {
        check_k(k)?;
        let n_scales = if spec.per_channel { n } else { 1 };
        for (what, expected, found) in [
            ("int8 weight codes", n * k, codes.len()),
            ("int8 weight scales", n_scales, scales.len()),
        ] {
            if expected != found {
                return Err(KernelError::Shape {
                    what,
                    index: None,
                    expected,
                    found,
                });
            }
        }
        if let Some((j, s)) = scales
            .iter()
            .enumerate()
            .find(|(_, s)| !(s.is_finite() && **s > 0.0))
        {
            return Err(KernelError::BadQuantParams {
                what: "int8 weight scales",
                table: None,
                problem: QuantProblem::Scale {
                    index: j,
                    scale: *s,
                },
            });
        }
        let scales: Vec<f32> = if spec.per_channel {
            scales.to_vec()
        } else {
            vec![scales[0]; n]
        };
        let kp = k.div_ceil(KG) * KG;
        let pstride = k.div_ceil(KT) * KT * NR;
        let panels = n.div_ceil(NR);
        let mut packed = buf::AlignedBytes::zeroed(panels * pstride);
        let dst = packed.as_mut_i8();
        let mut col_sums = vec![0i32; n];
        for j in 0..n {
            let (p, c) = (j / NR, j % NR);
            for q in 0..k {
                let code = codes[j * k + q];
                dst[p * pstride + (q / KG) * NR * KG + c * KG + q % KG] = code;
                col_sums[j] += i32::from(code);
            }
        }
        Ok(Int8Weights {
            n,
            k,
            kp,
            pstride,
            packed,
            scales,
            col_sums,
            spec,
            reduce_range: false,
        })
    }

    /// The weight scales as stored: `n` when per channel, else 1 (see [`Int8Weights::from_codes`]).
    pub fn stored_scales(&self) -> &[f32] {
        if self.spec.per_channel {
            &self.scales
        } else {
            &self.scales[..self.scales.len().min(1)]
        }
    }

    /// The layer's options.
    pub fn spec(&self) -> Int8Spec {
        self.spec
    }

    /// The weight codes, unpacked to row-major `n×k`.
    pub fn codes(&self) -> Vec<i8> {
        let packed = self.packed();
        let mut out = vec![0i8; self.n * self.k];
        for j in 0..self.n {
            let (p, c) = (j / NR, j % NR);
            for q in 0..self.k {
                out[j * self.k + q] =
                    packed[p * self.pstride + (q / KG) * NR * KG + c * KG + q % KG];
            }
        }
        out
    }

    /// The packed panels (`n / 16` rounded up, `pstride` bytes each).
    pub(crate) fn packed(&self) -> &[i8] {
        self.packed.as_i8()
    }

    /// One scale per output column (all equal when per-tensor).
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// `Σ_p w[j][p]` of the codes, per output column.
    pub fn col_sums(&self) -> &[i32] {
        &self.col_sums
    }

    /// Whether dynamic activations use PyTorch's 7-bit `reduce_range`.
    pub fn reduce_range(&self) -> bool {
        self.reduce_range
    }

    /// The parameters this layer gives one row of range `[lo, hi]` under per-row dynamic
    /// activations (FBGEMM's choice, with this layer's `reduce_range`).
    pub fn row_qparams(&self, lo: f32, hi: f32) -> QParams {
        choose_qparams(lo, hi, self.reduce_range)
    }

    /// The activation parameters of a dynamic batch with range `[lo, hi]`, or the static ones.
    fn act_qparams(&self, lo: f32, hi: f32) -> QParams {
        match self.spec.activations {
            ActivationQuant::Static(q) => q,
            // Per-row parameters are chosen by the driver; this is the whole batch's (unused then).
            ActivationQuant::Dynamic | ActivationQuant::DynamicPerRow => {
                choose_qparams(lo, hi, self.reduce_range)
            }
        }
    }

    /// `out = x · Wᵀ + b` in f32 with the active kernel (called by [`PackedLinear::forward`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward(
        &self,
        x: &[f32],
        m: usize,
        bias: &[f32],
        out: &mut [f32],
        relu: bool,
        scratch: &mut Int8Scratch,
    ) -> Result<()> {
        driver::run(
            self,
            Int8Family::active(),
            Int8Input::F32(x),
            m,
            bias,
            Int8Output::F32(out),
            relu,
            scratch,
        )
    }
}

/// The input of an int8 call.
#[derive(Clone, Copy, Debug)]
pub enum Int8Input<'a> {
    /// f32 activations (`m×k`), quantized per the layer's [`ActivationQuant`].
    F32(&'a [f32]),
    /// Already-quantized u8 activations (`m×k`) and their parameters.
    U8(&'a [u8], QParams),
    /// Already-quantized u8 activations (`m×k`), each row in its own parameters (as per-row
    /// dynamic activations are; e.g. from
    /// [`cross_combine_quantize_rows`](cross_quant::cross_combine_quantize_rows)).
    U8PerRow {
        /// The codes, row-major.
        codes: &'a [u8],
        /// Zero point of each row.
        zp: &'a [i32],
        /// Scale of each row.
        scale: &'a [f32],
    },
}

/// The output of an int8 call.
#[derive(Debug)]
pub enum Int8Output<'a> {
    /// Dequantized f32 (`m×n`), with bias and optional ReLU.
    F32(&'a mut [f32]),
    /// Requantized u8 (`m×n`) with these parameters (ReLU folded into the clamp).
    U8(&'a mut [u8], QParams),
    /// Test hook: the raw accumulators `Σ_p a[i][p] · w[j][p]` (`m×n`), before zero-point correction.
    RawI32(&'a mut [i32]),
}

impl PackedLinear {
    fn int8_weights_or_err(&self) -> Result<&Int8Weights> {
        match &self.weights {
            PackedWeights::Int8(w) => Ok(w),
            _ => Err(KernelError::BadQuantParams {
                what: "int8 entry point",
                table: None,
                problem: QuantProblem::NotInt8 {
                    precision: match self.precision {
                        super::Precision::F32 => "f32",
                        super::Precision::F16 => "f16",
                        _ => "bf16",
                    },
                },
            }),
        }
    }

    /// An int8 layer from already-quantized weights (see [`Int8Weights::from_codes`]) for the
    /// kernels of [`Isa::active`]: it runs exactly `codes · scales`. `bias` is `n` values or zeros.
    /// Errors: wrong lengths, non-finite bias, scales not finite and > 0, bad static parameters.
    pub fn from_int8_codes(
        codes: &[i8],
        scales: &[f32],
        bias: Option<&[f32]>,
        n: usize,
        k: usize,
        spec: Int8Spec,
    ) -> Result<Self> {
        if let ActivationQuant::Static(q) = spec.activations {
            super::check_qparams("static activation", q)?;
        }
        let bias = match bias {
            Some(b) => {
                super::check_len("linear bias", n, b.len())?;
                super::check_finite("linear bias", b, n.max(1))?;
                b.to_vec()
            }
            None => vec![0.0; n],
        };
        let weights = Int8Weights::from_codes(codes, scales, n, k, spec)?;
        Ok(PackedLinear {
            n,
            k,
            precision: super::Precision::Int8(spec),
            isa: Isa::active(),
            saturated: 0,
            bias,
            weights: PackedWeights::Int8(weights),
        })
    }

    /// The packed int8 weights, when the layer is int8.
    pub fn int8_weights(&self) -> Option<&Int8Weights> {
        match &self.weights {
            PackedWeights::Int8(w) => Some(w),
            _ => None,
        }
    }

    /// Chooses dynamic activation parameters with PyTorch's `reduce_range=True` (codes 0..=127), which
    /// `torch.ao.nn.quantized.dynamic.Linear` always uses, so outputs match PyTorch's; `false` (the
    /// default) uses the full u8 range. Errors when the layer is not int8.
    pub fn int8_reduce_range(mut self, on: bool) -> Result<Self> {
        self.int8_weights_or_err()?;
        if let PackedWeights::Int8(w) = &mut self.weights {
            w.reduce_range = on;
        }
        Ok(self)
    }

    /// u8 activations with parameters `x_q` in, u8 activations with parameters `out_q` out (the chain
    /// between int8 layers); ReLU is folded into the output clamp.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_u8_to_u8(
        &self,
        x: &[u8],
        x_q: QParams,
        m: usize,
        out: &mut [u8],
        out_q: QParams,
        relu: bool,
        scratch: &mut super::LinearScratch,
    ) -> Result<()> {
        self.forward_int8(
            Int8Kernel::active(),
            Int8Input::U8(x, x_q),
            m,
            Int8Output::U8(out, out_q),
            relu,
            scratch,
        )
    }

    /// f32 activations in (quantized per the layer's [`ActivationQuant`]), u8 out with `out_q`.
    pub fn forward_f32_to_u8(
        &self,
        x: &[f32],
        m: usize,
        out: &mut [u8],
        out_q: QParams,
        relu: bool,
        scratch: &mut super::LinearScratch,
    ) -> Result<()> {
        self.forward_int8(
            Int8Kernel::active(),
            Int8Input::F32(x),
            m,
            Int8Output::U8(out, out_q),
            relu,
            scratch,
        )
    }

    /// u8 activations with parameters `x_q` in, f32 out (bias, optional ReLU).
    pub fn forward_u8_to_f32(
        &self,
        x: &[u8],
        x_q: QParams,
        m: usize,
        out: &mut [f32],
        relu: bool,
        scratch: &mut super::LinearScratch,
    ) -> Result<()> {
        self.forward_int8(
            Int8Kernel::active(),
            Int8Input::U8(x, x_q),
            m,
            Int8Output::F32(out),
            relu,
            scratch,
        )
    }

    /// The general int8 entry point with an explicit kernel (tests and benchmarks pick each one).
    /// Errors: not an int8 layer, a kernel this CPU cannot run, wrong buffer sizes, non-finite f32
    /// input, bad quantization parameters.
    pub fn forward_int8(
        &self,
        kernel: Int8Kernel,
        x: Int8Input<'_>,
        m: usize,
        out: Int8Output<'_>,
        relu: bool,
        scratch: &mut super::LinearScratch,
    ) -> Result<()> {
        let w = self.int8_weights_or_err()?;
        driver::run(
            w,
            Int8Ops::get(kernel)?,
            x,
            m,
            &self.bias,
            out,
            relu,
            &mut scratch.int8,
        )
    }
}
