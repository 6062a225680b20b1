//! AVX-512 embedding bags: the width-generic body (`simd.rs`) at 16 columns per register (128
//! columns per pass over a bag). Row tails use masked loads and stores (fault-free past the end of
//! the table). 4-bit codes are widened 16 bytes at a time (`vpmovzxbd`) and split by mask and shift
//! into even and odd columns, accumulated in register pairs that are interleaved back once per bag;
//! a lone 16-column tail and 2-bit codes use a dword permute/broadcast and per-lane variable shifts;
//! f16 goes through `vcvtph2ps`, bf16 a 16-bit shift.
//!
//! Without a remap, each bag's ids are checked against the table once (a vectorized maximum) and
//! the row loop then has no per-id test; rows are prefetched `Job::prefetch` ids ahead, and fused
//! rows spanning several lines also get their first line touched `Job::prefetch_far` ids ahead.

use std::arch::x86_64::*;

use super::simd::BagVec;
use super::simd_shared::*;

super::simd_shared::range_kernels!(
    "AVX-512",
    __m512,
    "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"
);

// SAFETY: every method uses AVX-512 F/BW/VL/DQ instructions (and the SSE/AVX ones they imply)
// only; masked-off bytes and lanes are neither read nor written.
unsafe impl BagVec for __m512 {
    const SPECIALIZED: bool = true;
    const NIBBLE_PAIRS: bool = true;

    #[inline(always)]
    unsafe fn decode<const F: u8>(row: *const u8, col: usize, n: usize) -> __m512 {
        // SAFETY: forwarded contract.
        unsafe { decode::<F>(row, col, n) }
    }
    #[inline(always)]
    unsafe fn nibble_pair(p: *const u8, m: usize) -> (__m512, __m512) {
        // SAFETY: the `m.div_ceil(2)` bytes at p are readable (the caller's contract); a masked
        // load touches no others; the CPU has AVX-512 (the caller's).
        unsafe {
            let b = if m == 32 {
                _mm_loadu_si128(p.cast())
            } else {
                _mm_maskz_loadu_epi8(lane_mask(m.div_ceil(2)), p.cast())
            };
            let d = _mm512_cvtepu8_epi32(b);
            let even = _mm512_cvtepi32_ps(_mm512_and_si512(d, _mm512_set1_epi32(0xf)));
            let odd = _mm512_cvtepi32_ps(_mm512_srli_epi32::<4>(d));
            (even, odd)
        }
    }
    #[inline(always)]
    unsafe fn interleave(even: __m512, odd: __m512) -> (__m512, __m512) {
        // SAFETY: the CPU has AVX-512 (the caller's).
        unsafe {
            let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            let hi =
                _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            (
                _mm512_permutex2var_ps(even, lo, odd),
                _mm512_permutex2var_ps(even, hi, odd),
            )
        }
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, n: usize) {
        // SAFETY: `n` floats are writable at p (the caller's contract) and the masked store writes
        // only those; the CPU has AVX-512 (the caller's).
        unsafe { _mm512_mask_storeu_ps(p, lane_mask(n), self) }
    }
}

/// Mask of the low `n` lanes (`n <= 16`).
#[inline(always)]
fn lane_mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as u16
}

/// Decodes columns `col..col + n` (`1 <= n <= 16`, `col` a multiple of 16) of a row to f32 lanes
/// (fused formats: the raw codes), reading only the bytes of those columns.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/DQ, FMA and F16C (the function is compiled for them); the
/// bytes of columns `col..col + n` (`1 <= n <= 16`) of a row of format `F` are inside the row at
/// `row` (masked-off bytes are never touched).
unsafe fn decode<const F: u8>(row: *const u8, col: usize, n: usize) -> __m512 {
    let m = lane_mask(n);
    // SAFETY: in all arms, the masked loads touch only the bytes of columns col..col + n, which the
    // caller guarantees are inside the row; masked-off bytes are neither read nor faulted on.
    unsafe {
        match F {
            // Whole registers take plain loads (foldable into the widening instruction); only a
            // row tail needs the mask.
            F32 if n == 16 => _mm512_loadu_ps(row.add(4 * col).cast()),
            F32 => _mm512_maskz_loadu_ps(m, row.add(4 * col).cast()),
            F16 | BF16 => {
                let p = row.add(2 * col);
                let h = if n == 16 {
                    _mm256_loadu_si256(p.cast())
                } else {
                    _mm256_maskz_loadu_epi16(m, p.cast())
                };
                if F == F16 {
                    _mm512_cvtph_ps(h)
                } else {
                    _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
                }
            }
            FUSED8 | FUSED8H => {
                let p = row.add(col);
                let b = if n == 16 {
                    _mm_loadu_si128(p.cast())
                } else {
                    _mm_maskz_loadu_epi8(m, p.cast())
                };
                _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b))
            }
            FUSED4 => {
                let b = _mm_maskz_loadu_epi8(lane_mask(n.div_ceil(2)), row.add(col / 2).cast());
                let idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
                let sh =
                    _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
                let v = _mm512_permutexvar_epi32(idx, _mm512_castsi128_si512(b));
                let q = _mm512_and_si512(_mm512_srlv_epi32(v, sh), _mm512_set1_epi32(0xf));
                _mm512_cvtepi32_ps(q)
            }
            _ => {
                let p = row.add(col / 4);
                let v = if n == 16 {
                    // Four whole bytes: a plain broadcast load.
                    _mm512_set1_epi32(p.cast::<i32>().read_unaligned())
                } else {
                    _mm512_broadcastd_epi32(_mm_maskz_loadu_epi8(
                        lane_mask(n.div_ceil(4)),
                        p.cast(),
                    ))
                };
                let sh =
                    _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                let q = _mm512_and_si512(_mm512_srlv_epi32(v, sh), _mm512_set1_epi32(3));
                _mm512_cvtepi32_ps(q)
            }
        }
    }
}
