//! SIMD row decoders: `LANES` values per step (8 with AVX2, 16 with AVX-512), the tail by the
//! oracle.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::{add_weighted, fused_tail};
use crate::formats::{TableFormat, dequantize_row, row_code, row_scale_bias};
use crate::simd::{SimdF32, simd_entries};

simd_entries! {
    decode(format: TableFormat, row: &[u8], out: &mut [f32]);
    avx2 => decode_avx2,
    avx512 => decode_avx512,
}

simd_entries! {
    accumulate(format: TableFormat, row: &[u8], weight: Option<f32>, scratch: &mut [f32], acc: &mut [f32]);
    avx2 => accumulate_avx2,
    avx512 => accumulate_avx512,
}

/// Adds `row` (decoded as [`decode`] does) to `acc`, or its `weight` multiple by fma (see
/// `DecodeOps::accumulate_checked`): fused rows are decoded in registers and added at once;
/// other formats go through `scratch` (at least `acc.len()` values).
///
/// # Safety
/// The CPU has `V`'s level.
#[inline(always)]
unsafe fn accumulate<V: SimdF32>(
    format: TableFormat,
    row: &[u8],
    weight: Option<f32>,
    scratch: &mut [f32],
    acc: &mut [f32],
) {
    let d = acc.len();
    let lanes = V::LANES;
    let steps = d / lanes;
    let fused = matches!(
        format,
        TableFormat::Fused8 | TableFormat::Fused8Half | TableFormat::Fused4 | TableFormat::Fused2
    );
    if !fused {
        // SAFETY: the CPU has `V`'s level (forwarded).
        unsafe { decode::<V>(format, row, &mut scratch[..d]) };
        return add_weighted(weight, &scratch[..d], acc);
    }
    let (scale, bias) = row_scale_bias(format, d, row);
    let bits = format.bits();
    let step_bytes = bits * lanes / 8;
    let src = row[..step_bytes * steps].as_ptr();
    let dst = acc.as_mut_ptr();
    // SAFETY: the CPU has `V`'s level (forwarded); step `s` reads the `step_bytes` bytes at
    // `step_bytes · s` of the slice above and reads and writes LANES values at `LANES · s < d`.
    unsafe {
        let (sv, bv) = (V::splat(scale), V::splat(bias));
        match weight {
            Some(w) => {
                let wv = V::splat(w);
                for s in 0..steps {
                    let packed = load_bytes(src.add(step_bytes * s), step_bytes);
                    let v = V::from_u8(unpack(packed, bits)).mul_add(sv, bv);
                    let a = dst.add(lanes * s);
                    wv.mul_add(v, V::load(a)).store(a);
                }
            }
            None => {
                for s in 0..steps {
                    let packed = load_bytes(src.add(step_bytes * s), step_bytes);
                    let v = V::from_u8(unpack(packed, bits)).mul_add(sv, bv);
                    let a = dst.add(lanes * s);
                    V::load(a).add(v).store(a);
                }
            }
        }
    }
    for (i, a) in acc.iter_mut().enumerate().skip(lanes * steps) {
        let v = f32::from(row_code(format, row, i)).mul_add(scale, bias);
        *a = match weight {
            Some(w) => w.mul_add(v, *a),
            None => *a + v,
        };
    }
}

/// Decodes `row` of `format` into `out` (`row` holds `format.row_bytes(out.len())` bytes; a shorter
/// row panics on the slicing below, never reads out of bounds).
///
/// # Safety
/// The CPU has `V`'s level.
#[inline(always)]
unsafe fn decode<V: SimdF32>(format: TableFormat, row: &[u8], out: &mut [f32]) {
    let d = out.len();
    let lanes = V::LANES;
    let steps = d / lanes;
    let dst = out.as_mut_ptr();
    match format {
        TableFormat::F16 | TableFormat::Bf16 => {
            // LANES halves (2 · LANES bytes) per step.
            let src = row[..2 * lanes * steps].as_ptr();
            // SAFETY: the CPU has `V`'s level (forwarded); step `s` reads the 2 · LANES bytes at
            // `2 · LANES · s` of the slice above and writes LANES values at `LANES · s < d`.
            unsafe {
                if format == TableFormat::F16 {
                    for s in 0..steps {
                        V::load_f16(src.add(2 * lanes * s)).store(dst.add(lanes * s));
                    }
                } else {
                    for s in 0..steps {
                        V::load_bf16(src.add(2 * lanes * s)).store(dst.add(lanes * s));
                    }
                }
            }
            dequantize_row(format, &row[2 * lanes * steps..], &mut out[lanes * steps..]);
        }
        TableFormat::F32 => dequantize_row(format, row, out),
        TableFormat::Fused8
        | TableFormat::Fused8Half
        | TableFormat::Fused4
        | TableFormat::Fused2 => {
            let (scale, bias) = row_scale_bias(format, d, row);
            let bits = format.bits();
            // The LANES codes of step `s` occupy `bits · LANES / 8` bytes at `bits · LANES / 8 · s`.
            let step_bytes = bits * lanes / 8;
            let src = row[..step_bytes * steps].as_ptr();
            // SAFETY: the CPU has `V`'s level (forwarded); step `s` reads the `step_bytes` bytes at
            // `step_bytes · s` of the slice above and writes LANES values at `LANES · s < d`.
            unsafe {
                let (sv, bv) = (V::splat(scale), V::splat(bias));
                for s in 0..steps {
                    let packed = load_bytes(src.add(step_bytes * s), step_bytes);
                    let c = V::from_u8(unpack(packed, bits));
                    c.mul_add(sv, bv).store(dst.add(lanes * s));
                }
            }
            fused_tail(format, row, out, lanes * steps);
        }
    }
}

/// The `n` bytes at `p` (2, 4, 8 or 16) in the low bytes of a vector, zero above.
///
/// # Safety
/// `p` is valid for reading `n` bytes.
#[inline(always)]
unsafe fn load_bytes(p: *const u8, n: usize) -> __m128i {
    // SAFETY: SSE2 is baseline on x86_64; each arm reads exactly `n` bytes at `p`.
    unsafe {
        match n {
            16 => _mm_loadu_si128(p.cast()),
            8 => _mm_loadl_epi64(p.cast()),
            4 => _mm_cvtsi32_si128(p.cast::<i32>().read_unaligned()),
            _ => _mm_cvtsi32_si128(i32::from(p.cast::<u16>().read_unaligned())),
        }
    }
}

/// Codes of `bits` (8, 4 or 2) packed low-first in the low bytes of `b`, one per byte.
#[inline(always)]
fn unpack(b: __m128i, bits: usize) -> __m128i {
    // SAFETY: SSE2 is baseline on x86_64.
    unsafe {
        match bits {
            8 => b,
            4 => {
                let m = _mm_set1_epi8(0x0f);
                let lo = _mm_and_si128(b, m);
                let hi = _mm_and_si128(_mm_srli_epi16::<4>(b), m);
                _mm_unpacklo_epi8(lo, hi)
            }
            _ => {
                let m = _mm_set1_epi8(0x03);
                let c0 = _mm_and_si128(b, m);
                let c1 = _mm_and_si128(_mm_srli_epi16::<2>(b), m);
                let c2 = _mm_and_si128(_mm_srli_epi16::<4>(b), m);
                let c3 = _mm_and_si128(_mm_srli_epi16::<6>(b), m);
                _mm_unpacklo_epi16(_mm_unpacklo_epi8(c0, c1), _mm_unpacklo_epi8(c2, c3))
            }
        }
    }
}
