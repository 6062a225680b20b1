//! The per-element half of row quantization, shared by every fused format: the row's min and max in
//! FBGEMM's AVX2 order, and `code = clamp(lrintf((x - bias) · inverse), 0, qmax)`, one code per byte.
//!
//! Every level gives the scalar oracle's bytes. (The oracle keeps the low 32 bits of an `lrintf`
//! result outside the `i32` range, as PyTorch's reference path does, where the vector conversions
//! give 0 like FBGEMM's AVX2 path; the quantizers never produce such products: `|x - bias| · inverse`
//! stays within a few times `qmax` for every finite row whose scale and bias are finite, and other
//! rows are rejected.)

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod scalar;

use crate::registry::{FamilyCache, Implementation, KernelFamily, SCALAR_AVX2_AVX512};
use crate::{Isa, KernelError, QuantProblem, Result};

/// `(row) -> (min, max)`.
type MinMaxFn = fn(&[f32]) -> (f32, f32);
/// `(row, bias, inverse, qmax, codes)`.
type CodesFn = fn(&[f32], f32, f32, i32, &mut [u8]);
/// `(row, bias, inverse, bits, scratch, packed codes)`.
type PackedFn = fn(&[f32], f32, f32, u32, &mut Vec<u8>, &mut [u8]);

/// The row-code kernels of one ISA level.
#[derive(Clone, Copy, Debug)]
pub struct CodeOps {
    /// The level this table was built for.
    pub isa: Isa,
    min_max: MinMaxFn,
    codes: CodesFn,
    /// Packed codes in registers; `None`: [`CodeOps::codes`] into scratch, then the scalar packing
    /// (which vectorizes).
    packed: Option<PackedFn>,
}

/// The row-code family in the [registry](crate::registry) (min/max and codes).
pub struct Codes;

static CACHE: FamilyCache<CodeOps> = FamilyCache::new();

impl KernelFamily for Codes {
    const NAME: &'static str = "formats_codes";
    type Ops = CodeOps;
    const IMPLEMENTATIONS: &'static [Implementation] = SCALAR_AVX2_AVX512;

    fn build(index: usize) -> Result<CodeOps> {
        let isa = Self::IMPLEMENTATIONS[index].isa;
        #[allow(unused_mut)]
        let mut ops = CodeOps {
            isa,
            min_max: scalar::min_max,
            codes: scalar::codes,
            packed: None,
        };
        // Each level keeps the entries of the levels below that it does not replace (AVX-512 keeps
        // the AVX2 min/max).
        #[cfg(target_arch = "x86_64")]
        {
            if isa >= Isa::Avx2 {
                ops.min_max = avx2::min_max;
                ops.codes = avx2::codes;
            }
            if isa >= Isa::Avx512 {
                ops.codes = avx512::codes;
                ops.packed = Some(avx512::packed_codes);
            }
        }
        Ok(ops)
    }

    fn cache() -> &'static FamilyCache<CodeOps> {
        &CACHE
    }
}

impl CodeOps {
    /// The table for `isa` (see [`Codes`]). Asking for a level this CPU lacks is an error.
    pub fn for_isa(isa: Isa) -> Result<CodeOps> {
        Codes::for_level(isa).copied()
    }

    /// The table for [`Isa::active`], built once.
    pub fn active() -> &'static CodeOps {
        Codes::active()
    }

    /// The row's minimum and maximum as FBGEMM's AVX2 quantizers find them (eight running lanes
    /// over the first `len / 8 · 8` values, folded in lane order, then the tail; this order only
    /// shows in the sign of a zero result). An empty row gives `(f32::MAX, -f32::MAX)`.
    #[inline]
    pub fn min_max(&self, x: &[f32]) -> (f32, f32) {
        (self.min_max)(x)
    }

    /// `codes[i] = clamp(lrintf((x[i] - bias) · inverse), 0, qmax)`, one code per byte, for `qmax`
    /// in `1..=255` and `codes.len() == x.len()` (otherwise an error).
    pub fn codes(
        &self,
        x: &[f32],
        bias: f32,
        inverse: f32,
        qmax: i32,
        codes: &mut [u8],
    ) -> Result<()> {
        if codes.len() != x.len() {
            return Err(KernelError::Shape {
                what: "row codes",
                index: None,
                expected: x.len(),
                found: codes.len(),
            });
        }
        if !(1..=255).contains(&qmax) {
            return Err(KernelError::BadQuantParams {
                what: "row codes",
                table: None,
                problem: QuantProblem::Qmax { qmax },
            });
        }
        (self.codes)(x, bias, inverse, qmax, codes);
        Ok(())
    }

    /// The codes of `x` for `bits` in 1, 2, 4, 8 (`qmax = 2^bits - 1`), packed with element 0 in the
    /// lowest bits into `ceil(len · bits / 8)` bytes of `out`; `scratch` is working space reused
    /// between calls.
    pub fn packed_codes(
        &self,
        x: &[f32],
        bias: f32,
        inverse: f32,
        bits: u32,
        scratch: &mut Vec<u8>,
        out: &mut [u8],
    ) -> Result<()> {
        if ![1, 2, 4, 8].contains(&bits) {
            return Err(KernelError::BadQuantParams {
                what: "packed row codes",
                table: None,
                problem: QuantProblem::Bits {
                    bits,
                    expected: "1, 2, 4 or 8",
                },
            });
        }
        let expected = (x.len() * bits as usize).div_ceil(8);
        if out.len() != expected {
            return Err(KernelError::Shape {
                what: "packed row codes",
                index: None,
                expected,
                found: out.len(),
            });
        }
        self.packed_codes_into(x, bias, inverse, bits, scratch, out);
        Ok(())
    }

    /// [`CodeOps::packed_codes`] for the crate's quantizers, which size `out` themselves (asserted:
    /// the vector kernels rely on it).
    #[inline]
    pub(crate) fn packed_codes_into(
        &self,
        x: &[f32],
        bias: f32,
        inverse: f32,
        bits: u32,
        scratch: &mut Vec<u8>,
        out: &mut [u8],
    ) {
        assert_eq!(
            out.len(),
            (x.len() * bits as usize).div_ceil(8),
            "packed length"
        );
        debug_assert!([1, 2, 4, 8].contains(&bits));
        match self.packed {
            Some(packed) => packed(x, bias, inverse, bits, scratch, out),
            None => {
                scratch.resize(x.len(), 0);
                (self.codes)(x, bias, inverse, (1 << bits) - 1, scratch);
                scalar::pack(scratch, bits, out);
            }
        }
    }

    /// [`CodeOps::codes`] for the crate's quantizers, which size `codes` themselves; the length is
    /// still asserted because the vector kernels rely on it.
    #[inline]
    pub(crate) fn codes_into(
        &self,
        x: &[f32],
        bias: f32,
        inverse: f32,
        qmax: i32,
        codes: &mut [u8],
    ) {
        assert_eq!(x.len(), codes.len(), "one code per value");
        debug_assert!((1..=255).contains(&qmax));
        (self.codes)(x, bias, inverse, qmax, codes);
    }
}
