//! Whole-row decoding to f32 for every [`TableFormat`]; [`crate::formats::dequantize_row`] is the
//! scalar oracle, and every level returns its exact bits (fused values are `fma(code, scale, bias)`,
//! one rounding, as the oracle's `mul_add`).

#[cfg(target_arch = "x86_64")]
mod simd;

use super::{TableFormat, dequantize_row, row_code, row_scale_bias};
use crate::registry::{FamilyCache, Implementation, KernelFamily, SCALAR_AVX2_AVX512};
use crate::{Isa, KernelError, Result};

/// `(format, stored row, out)`; `out.len()` is the row dimension.
type DecodeFn = fn(TableFormat, &[u8], &mut [f32]);

/// `(format, stored row, weight, scratch, acc)`: see [`DecodeOps::accumulate_checked`].
type AccumulateFn = fn(TableFormat, &[u8], Option<f32>, &mut [f32], &mut [f32]);

/// The row decoders of one ISA level.
#[derive(Clone, Copy, Debug)]
pub struct DecodeOps {
    /// The level this table was built for.
    pub isa: Isa,
    decode: DecodeFn,
    accumulate: AccumulateFn,
}

/// The row-decoder family in the [registry](crate::registry).
pub struct Decode;

static CACHE: FamilyCache<DecodeOps> = FamilyCache::new();

impl KernelFamily for Decode {
    const NAME: &'static str = "formats_decode";
    type Ops = DecodeOps;
    const IMPLEMENTATIONS: &'static [Implementation] = SCALAR_AVX2_AVX512;

    fn build(index: usize) -> Result<DecodeOps> {
        let (decode, accumulate): (DecodeFn, AccumulateFn) = match index {
            #[cfg(target_arch = "x86_64")]
            1 => (simd::decode_avx2, simd::accumulate_avx2),
            #[cfg(target_arch = "x86_64")]
            2 => (simd::decode_avx512, simd::accumulate_avx512),
            _ => (dequantize_row, accumulate_row),
        };
        Ok(DecodeOps {
            isa: Self::IMPLEMENTATIONS[index].isa,
            decode,
            accumulate,
        })
    }

    fn cache() -> &'static FamilyCache<DecodeOps> {
        &CACHE
    }
}

impl DecodeOps {
    /// The table for `isa` (see [`Decode`]). Asking for a level this CPU lacks is an error.
    pub fn for_isa(isa: Isa) -> Result<DecodeOps> {
        Decode::for_level(isa).copied()
    }

    /// The table for [`Isa::active`], built once.
    pub fn active() -> &'static DecodeOps {
        Decode::active()
    }

    /// Decodes one stored row of `format` into `out` (`out.len()` values); `row` must hold
    /// `format.row_bytes(out.len())` bytes.
    pub fn decode(&self, format: TableFormat, row: &[u8], out: &mut [f32]) -> Result<()> {
        format.check_dim(out.len())?;
        let expected = format.row_bytes(out.len());
        if row.len() != expected {
            return Err(KernelError::Shape {
                what: "stored row bytes",
                index: None,
                expected,
                found: row.len(),
            });
        }
        (self.decode)(format, row, out);
        Ok(())
    }

    /// [`DecodeOps::decode`] for callers that validated the table (a [`crate::formats::TableRef`]).
    #[inline]
    pub(crate) fn decode_checked(&self, format: TableFormat, row: &[u8], out: &mut [f32]) {
        assert_eq!(row.len(), format.row_bytes(out.len()), "row length");
        (self.decode)(format, row, out);
    }

    /// Adds one stored row to `acc` (`acc.len()` values): `acc[i] += v[i]`, or with a weight
    /// `acc[i] = fma(w, v[i], acc[i])`, where `v` is the row [`DecodeOps::decode`] gives; the
    /// same bits as decoding into a buffer and adding, without the buffer's round trip where the
    /// level can (fused rows). `scratch` holds at least `acc.len()` values; for callers that
    /// validated the table.
    #[inline]
    pub(crate) fn accumulate_checked(
        &self,
        format: TableFormat,
        row: &[u8],
        weight: Option<f32>,
        scratch: &mut [f32],
        acc: &mut [f32],
    ) {
        assert_eq!(row.len(), format.row_bytes(acc.len()), "row length");
        assert!(scratch.len() >= acc.len(), "scratch length");
        (self.accumulate)(format, row, weight, scratch, acc);
    }
}

/// The scalar [`DecodeOps::accumulate_checked`]: the oracle's decode into `scratch`, then the
/// add (or weighted fma) element by element.
pub(crate) fn accumulate_row(
    format: TableFormat,
    row: &[u8],
    weight: Option<f32>,
    scratch: &mut [f32],
    acc: &mut [f32],
) {
    let v = &mut scratch[..acc.len()];
    dequantize_row(format, row, v);
    add_weighted(weight, v, acc);
}

/// `acc[i] += v[i]`, or `acc[i] = fma(w, v[i], acc[i])`.
#[inline(always)]
pub(crate) fn add_weighted(weight: Option<f32>, v: &[f32], acc: &mut [f32]) {
    match weight {
        Some(w) => {
            for (a, x) in acc.iter_mut().zip(v) {
                *a = w.mul_add(*x, *a);
            }
        }
        None => {
            for (a, x) in acc.iter_mut().zip(v) {
                *a += *x;
            }
        }
    }
}

/// The oracle for elements `from..` of a fused row (the vector kernels' tails).
pub(crate) fn fused_tail(format: TableFormat, row: &[u8], out: &mut [f32], from: usize) {
    let (scale, bias) = row_scale_bias(format, out.len(), row);
    for (i, o) in out.iter_mut().enumerate().skip(from) {
        *o = f32::from(row_code(format, row, i)).mul_add(scale, bias);
    }
}
