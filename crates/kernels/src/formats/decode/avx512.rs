//! AVX-512 row decoders: sixteen values per step.

use std::arch::x86_64::*;

use super::fused_tail;
use crate::formats::{TableFormat, dequantize_row, row_scale_bias};

/// Ops-table entry (installed only for AVX-512 levels, which `DecodeOps::for_isa` checks).
pub(crate) fn decode(format: TableFormat, row: &[u8], out: &mut [f32]) {
    // SAFETY: the table holding this entry was built for a level whose features the CPU has; every
    // caller checked `row.len() == format.row_bytes(out.len())`.
    unsafe { decode_avx512(format, row, out) }
}

/// # Safety
/// The CPU has AVX-512 F/BW/VL/DQ and `row.len() == format.row_bytes(out.len())`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn decode_avx512(format: TableFormat, row: &[u8], out: &mut [f32]) {
    let d = out.len();
    let steps = d / 16;
    let src = row.as_ptr();
    let dst = out.as_mut_ptr();
    match format {
        TableFormat::F16 => {
            for s in 0..steps {
                // SAFETY: 16 halves (32 bytes) at `32 s` are within the `2 d` bytes of the row,
                // and 16 values at `16 s` within `out`.
                unsafe {
                    let h = _mm256_loadu_si256(src.add(32 * s).cast());
                    _mm512_storeu_ps(dst.add(16 * s), _mm512_cvtph_ps(h));
                }
            }
            dequantize_row(format, &row[32 * steps..], &mut out[16 * steps..]);
        }
        TableFormat::Bf16 => {
            for s in 0..steps {
                // SAFETY: as for f16.
                unsafe {
                    let h = _mm256_loadu_si256(src.add(32 * s).cast());
                    let w = _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h));
                    _mm512_storeu_ps(dst.add(16 * s), _mm512_castsi512_ps(w));
                }
            }
            dequantize_row(format, &row[32 * steps..], &mut out[16 * steps..]);
        }
        TableFormat::F32 => dequantize_row(format, row, out),
        TableFormat::Fused8
        | TableFormat::Fused8Half
        | TableFormat::Fused4
        | TableFormat::Fused2 => {
            let (scale, bias) = row_scale_bias(format, d, row);
            let (sv, bv) = (_mm512_set1_ps(scale), _mm512_set1_ps(bias));
            let bits = format.bits();
            for s in 0..steps {
                // SAFETY: the 16 codes of step `s` occupy `2 · bits` bytes at `2 · bits · s`,
                // inside the row's code bytes; 16 values at `16 s` are within `out`.
                unsafe {
                    let bytes = match bits {
                        8 => _mm_loadu_si128(src.add(16 * s).cast()),
                        4 => {
                            let b = _mm_loadl_epi64(src.add(8 * s).cast());
                            let m = _mm_set1_epi8(0x0f);
                            let lo = _mm_and_si128(b, m);
                            let hi = _mm_and_si128(_mm_srli_epi16::<4>(b), m);
                            _mm_unpacklo_epi8(lo, hi)
                        }
                        _ => {
                            let b = _mm_cvtsi32_si128(i32::from_le_bytes(
                                row[4 * s..4 * s + 4].try_into().expect("4 bytes"),
                            ));
                            let m = _mm_set1_epi8(0x03);
                            let c0 = _mm_and_si128(b, m);
                            let c1 = _mm_and_si128(_mm_srli_epi16::<2>(b), m);
                            let c2 = _mm_and_si128(_mm_srli_epi16::<4>(b), m);
                            let c3 = _mm_and_si128(_mm_srli_epi16::<6>(b), m);
                            _mm_unpacklo_epi16(_mm_unpacklo_epi8(c0, c1), _mm_unpacklo_epi8(c2, c3))
                        }
                    };
                    let c = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes));
                    _mm512_storeu_ps(dst.add(16 * s), _mm512_fmadd_ps(c, sv, bv));
                }
            }
            fused_tail(format, row, out, 16 * steps);
        }
    }
}
