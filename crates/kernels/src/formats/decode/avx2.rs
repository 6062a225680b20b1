//! AVX2 row decoders: eight values per step.

use std::arch::x86_64::*;

use super::fused_tail;
use crate::formats::{TableFormat, dequantize_row, row_scale_bias};

/// Ops-table entry (installed only for AVX2 levels or richer, which `DecodeOps::for_isa` checks).
pub(crate) fn decode(format: TableFormat, row: &[u8], out: &mut [f32]) {
    // SAFETY: the table holding this entry was built for a level whose features the CPU has; every
    // caller checked `row.len() == format.row_bytes(out.len())`.
    unsafe { decode_avx2(format, row, out) }
}

/// # Safety
/// The CPU has AVX2, FMA and F16C and `row.len() == format.row_bytes(out.len())`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn decode_avx2(format: TableFormat, row: &[u8], out: &mut [f32]) {
    let d = out.len();
    let steps = d / 8;
    let src = row.as_ptr();
    let dst = out.as_mut_ptr();
    match format {
        TableFormat::F16 => {
            for s in 0..steps {
                // SAFETY: 8 halves (16 bytes) at `16 s` are within the `2 d` bytes of the row, and
                // 8 values at `8 s` within `out`.
                unsafe {
                    let h = _mm_loadu_si128(src.add(16 * s).cast());
                    _mm256_storeu_ps(dst.add(8 * s), _mm256_cvtph_ps(h));
                }
            }
            dequantize_row(format, &row[16 * steps..], &mut out[8 * steps..]);
        }
        TableFormat::Bf16 => {
            for s in 0..steps {
                // SAFETY: as for f16.
                unsafe {
                    let h = _mm_loadu_si128(src.add(16 * s).cast());
                    let w = _mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h));
                    _mm256_storeu_ps(dst.add(8 * s), _mm256_castsi256_ps(w));
                }
            }
            dequantize_row(format, &row[16 * steps..], &mut out[8 * steps..]);
        }
        TableFormat::F32 => dequantize_row(format, row, out),
        TableFormat::Fused8
        | TableFormat::Fused8Half
        | TableFormat::Fused4
        | TableFormat::Fused2 => {
            let (scale, bias) = row_scale_bias(format, d, row);
            let (sv, bv) = (_mm256_set1_ps(scale), _mm256_set1_ps(bias));
            let bits = format.bits();
            for s in 0..steps {
                // The 8 codes of step `s` occupy `bits` bytes at `bits · s`.
                let bytes = match bits {
                    // SAFETY: 8 code bytes at `8 s` are inside the row's `d` code bytes.
                    8 => unsafe { _mm_loadl_epi64(src.add(8 * s).cast()) },
                    4 => {
                        let b = _mm_cvtsi32_si128(i32::from_le_bytes(
                            row[4 * s..4 * s + 4].try_into().expect("4 bytes"),
                        ));
                        let m = _mm_set1_epi8(0x0f);
                        let lo = _mm_and_si128(b, m);
                        let hi = _mm_and_si128(_mm_srli_epi16::<4>(b), m);
                        _mm_unpacklo_epi8(lo, hi)
                    }
                    _ => {
                        let b = _mm_cvtsi32_si128(i32::from(u16::from_le_bytes([
                            row[2 * s],
                            row[2 * s + 1],
                        ])));
                        let m = _mm_set1_epi8(0x03);
                        let c0 = _mm_and_si128(b, m);
                        let c1 = _mm_and_si128(_mm_srli_epi16::<2>(b), m);
                        let c2 = _mm_and_si128(_mm_srli_epi16::<4>(b), m);
                        let c3 = _mm_and_si128(_mm_srli_epi16::<6>(b), m);
                        _mm_unpacklo_epi16(_mm_unpacklo_epi8(c0, c1), _mm_unpacklo_epi8(c2, c3))
                    }
                };
                let c = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
                // SAFETY: 8 values at `8 s` are within `out`.
                unsafe { _mm256_storeu_ps(dst.add(8 * s), _mm256_fmadd_ps(c, sv, bv)) };
            }
            fused_tail(format, row, out, 8 * steps);
        }
    }
}
