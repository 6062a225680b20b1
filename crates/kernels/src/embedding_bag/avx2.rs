//! AVX2 embedding bags: the width-generic body (`simd.rs`) at 8 columns per register (64 columns
//! per pass over a bag). A row tail (fewer than 8 columns) is copied into a zeroed stack buffer
//! first, so nothing past the row is ever read. 4-bit and 2-bit codes are unpacked by broadcasting
//! a dword and shifting each lane by its own count. Every id is resolved before its row is read.

use std::arch::x86_64::*;

use super::simd::BagVec;
use super::simd_shared::*;

super::simd_shared::range_kernels!("AVX2", __m256, "avx2,fma,f16c");

// SAFETY: every method uses AVX, AVX2, FMA or F16C instructions only (the AVX2 level's features);
// `decode` reads only the bytes of the columns it names (a tail through a stack copy).
unsafe impl BagVec for __m256 {
    const SPECIALIZED: bool = false;
    const NIBBLE_PAIRS: bool = false;

    #[inline(always)]
    unsafe fn decode<const F: u8>(row: *const u8, col: usize, n: usize) -> __m256 {
        // SAFETY: forwarded contract.
        unsafe { decode::<F>(row, col, n) }
    }
    #[inline(always)]
    unsafe fn nibble_pair(_: *const u8, _: usize) -> (__m256, __m256) {
        unreachable!("AVX2 decodes 4-bit rows one register at a time (NIBBLE_PAIRS is false)")
    }
    #[inline(always)]
    unsafe fn interleave(_: __m256, _: __m256) -> (__m256, __m256) {
        unreachable!("AVX2 decodes 4-bit rows one register at a time (NIBBLE_PAIRS is false)")
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, n: usize) {
        // SAFETY: `n` floats are writable at p (the caller's contract); a masked store writes only
        // the first n lanes; the CPU has AVX2 (the caller's).
        unsafe {
            if n == 8 {
                _mm256_storeu_ps(p, self);
            } else {
                let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes);
                _mm256_maskstore_ps(p, mask, self);
            }
        }
    }
}

/// Byte offset of column `col` (a multiple of 8) in a row of format `F`.
#[inline(always)]
fn byte_offset<const F: u8>(col: usize) -> usize {
    match F {
        F32 => 4 * col,
        F16 | BF16 => 2 * col,
        FUSED8 | FUSED8H => col,
        FUSED4 => col / 2,
        _ => col / 4,
    }
}

/// Bytes holding `n` columns of format `F`.
#[inline(always)]
fn bytes_for<const F: u8>(n: usize) -> usize {
    match F {
        F32 => 4 * n,
        F16 | BF16 => 2 * n,
        FUSED8 | FUSED8H => n,
        FUSED4 => n.div_ceil(2),
        _ => n.div_ceil(4),
    }
}

/// Decodes columns `col..col + n` (`1 <= n <= 8`, `col` a multiple of 8) of a row to f32 lanes
/// (fused formats: the raw codes), reading only the bytes of those columns.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C (the function is compiled for them); the bytes of columns
/// `col..col + n` (`1 <= n <= 8`) of a row of format `F` are readable at `row`.
unsafe fn decode<const F: u8>(row: *const u8, col: usize, n: usize) -> __m256 {
    // SAFETY: the caller guarantees the bytes of columns col..col + n are inside the row.
    let p = unsafe { row.add(byte_offset::<F>(col)) };
    if n == 8 {
        // SAFETY: eight whole columns are readable at p.
        unsafe { decode8::<F>(p) }
    } else {
        let mut buf = [0u8; 32];
        // SAFETY: bytes_for(n) <= 32 bytes of those columns are readable at p; buf is large enough.
        unsafe {
            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), bytes_for::<F>(n));
            decode8::<F>(buf.as_ptr())
        }
    }
}

/// Decodes eight whole columns at `p`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C (the function is compiled for them); the bytes of eight
/// whole columns of format `F` are readable at `p`.
unsafe fn decode8<const F: u8>(p: *const u8) -> __m256 {
    // SAFETY: in all arms, the caller guarantees bytes_for(8) readable bytes at p, and each arm reads
    // exactly that many.
    unsafe {
        match F {
            F32 => _mm256_loadu_ps(p.cast()),
            F16 => _mm256_cvtph_ps(_mm_loadu_si128(p.cast())),
            BF16 => {
                let h = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast()));
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(h))
            }
            FUSED8 | FUSED8H => _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast()))),
            FUSED4 => {
                let v = _mm256_set1_epi32(p.cast::<i32>().read_unaligned());
                let sh = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
                let q = _mm256_and_si256(_mm256_srlv_epi32(v, sh), _mm256_set1_epi32(0xf));
                _mm256_cvtepi32_ps(q)
            }
            _ => {
                let v = _mm256_set1_epi32(i32::from(p.cast::<u16>().read_unaligned()));
                let sh = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
                let q = _mm256_and_si256(_mm256_srlv_epi32(v, sh), _mm256_set1_epi32(3));
                _mm256_cvtepi32_ps(q)
            }
        }
    }
}
