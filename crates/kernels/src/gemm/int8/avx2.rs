//! AVX2 int8 ops. The GEMM widens both operands to i16 and multiplies with `vpmaddwd` (pairs of
//! u8·s8 products summed into i32), so it is exact for every code, including activations up to 255
//! with weights of −128; `vpmaddubsw` is avoided because its i16 pair sums saturate. The range scan,
//! the epilogue and the panel loop are the width-generic ones of [`super::simd`] at `__m256`.

use std::arch::x86_64::*;

use super::scalar::row_param;
use super::simd::PanelTile;
use super::{KG, NR};

super::simd::level_entries!(std::arch::x86_64::__m256, "avx2,fma,f16c");

/// Quantizes rows; see [`super::scalar::quantize_rows`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn quantize_rows(
    x: &[f32],
    m: usize,
    k: usize,
    kp: usize,
    h: usize,
    inv: &[f32],
    zp: &[i32],
    out: &mut [u8],
) {
    if h != 1 {
        return super::scalar::quantize_rows(x, m, k, kp, h, inv, zp, out);
    }
    // SAFETY: only installed for kernels whose ISA the CPU has (AVX2).
    unsafe { quantize_rows_avx2(x, m, k, kp, inv, zp, out) }
}

#[target_feature(enable = "avx2,fma")]
/// # Safety
/// The CPU must have AVX2 and FMA (the function is compiled for them); `x` holds `m·k` values,
/// `out` at least `m·kp` bytes (`kp >= k`), and `inv_rows`/`zp_rows` one value or `m`.
unsafe fn quantize_rows_avx2(
    x: &[f32],
    m: usize,
    k: usize,
    kp: usize,
    inv_rows: &[f32],
    zp_rows: &[i32],
    out: &mut [u8],
) {
    let v0 = _mm256_setzero_ps();
    let v255 = _mm256_set1_ps(255.0);
    let perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for i in 0..m {
        let (inv, zp) = (row_param(inv_rows, i), row_param(zp_rows, i));
        let vinv = _mm256_set1_ps(inv);
        let vzp = _mm256_set1_ps(zp as f32);
        let q = |p: *const f32| {
            // SAFETY: callers pass pointers to 8 readable f32.
            let v = unsafe { _mm256_loadu_ps(p) };
            let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm256_mul_ps(v, vinv),
            );
            _mm256_cvtps_epi32(_mm256_min_ps(
                _mm256_max_ps(_mm256_add_ps(r, vzp), v0),
                v255,
            ))
        };
        {
            let src = &x[i * k..(i + 1) * k];
            let dst = &mut out[i * kp..(i + 1) * kp];
            let mut p = 0;
            while p + 32 <= k {
                let s = src[p..].as_ptr();
                // SAFETY: `p + 32 <= k`, so 32 f32 are readable from `s` and 32 bytes writable at `dst[p..]`.
                unsafe {
                    let a = _mm256_packs_epi32(q(s), q(s.add(8)));
                    let b = _mm256_packs_epi32(q(s.add(16)), q(s.add(24)));
                    let c = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(a, b), perm);
                    _mm256_storeu_si256(dst[p..].as_mut_ptr().cast(), c);
                }
                p += 32;
            }
            for j in p..k {
                dst[j] = super::scalar::quantize_u8(src[j], inv, zp);
            }
            dst[k..].fill(0);
        }
    }
}

/// The i16-widened tile: up to 2 rows × one 16-column panel ([`tile_i16`]).
struct I16Tile;

impl PanelTile for I16Tile {
    const MR: usize = 2;
    #[inline(always)]
    unsafe fn tile(r: usize, a: *const u8, lda: usize, w: *const i8, groups: usize, out: *mut i32) {
        // SAFETY: forwarded contract (the caller is compiled with AVX2 and FMA).
        unsafe {
            if r == 2 {
                tile_i16::<2>(a, lda, w, groups, out);
            } else {
                tile_i16::<1>(a, lda, w, groups, out);
            }
        }
    }
}

super::simd::gemm_entry!(
    I16Tile,
    "avx2,fma",
    "the CPU has AVX2 and FMA (AVX2 kernels and richer)."
);

/// `MR` rows × one 16-column panel. Accumulator `acc[r][q]` holds columns `4q..4q+4` as pairs of
/// partial sums (k ≡ 0,1 and k ≡ 2,3 mod 4), folded by `vphaddd` at the end.
#[target_feature(enable = "avx2,fma")]
#[inline]
///
/// # Safety
/// The CPU must have AVX2 and FMA (the function is compiled for them); rows `r < MR` of `a` (stride
/// `lda`) hold `groups·4` readable codes, `w` holds `groups` 64-byte groups, and `out` has room for
/// `MR` rows of 16 i32.
unsafe fn tile_i16<const MR: usize>(
    a: *const u8,
    lda: usize,
    w: *const i8,
    groups: usize,
    out: *mut i32,
) {
    let mut acc = [[_mm256_setzero_si256(); 4]; MR];
    for g in 0..groups {
        let mut av = [_mm256_setzero_si256(); MR];
        for (r, v) in av.iter_mut().enumerate() {
            // SAFETY: the caller guarantees row r has `groups * 4` readable codes.
            let four = unsafe { (a.add(r * lda + g * KG) as *const i32).read_unaligned() };
            let wide = _mm_cvtepu8_epi16(_mm_cvtsi32_si128(four));
            *v = _mm256_broadcastq_epi64(wide);
        }
        for q in 0..4 {
            // SAFETY: group g of the panel has 64 readable bytes.
            let wq = unsafe {
                _mm256_cvtepi8_epi16(_mm_loadu_si128(w.add(g * NR * KG + q * 16).cast()))
            };
            for (ar, &a) in acc.iter_mut().zip(&av) {
                ar[q] = _mm256_add_epi32(ar[q], _mm256_madd_epi16(wq, a));
            }
        }
    }
    for (r, ar) in acc.iter().enumerate() {
        let lo = _mm256_permute4x64_epi64::<0xD8>(_mm256_hadd_epi32(ar[0], ar[1]));
        let hi = _mm256_permute4x64_epi64::<0xD8>(_mm256_hadd_epi32(ar[2], ar[3]));
        // SAFETY: the caller's tile has room for MR rows of 16 i32.
        unsafe {
            _mm256_storeu_si256(out.add(r * NR).cast(), lo);
            _mm256_storeu_si256(out.add(r * NR + 8).cast(), hi);
        }
    }
}
