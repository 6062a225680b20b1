//! 256-bit AVX-VNNI GEMM (`vpdpbusd` with VEX encoding): u8·s8 quadruples summed straight into i32,
//! exact for every code. Tiles of up to 6 rows × 16 columns (12 accumulators), driven by the panel
//! loop of [`super::simd`].

use std::arch::x86_64::*;

use super::simd::PanelTile;
use super::{KG, NR};

/// The `vpdpbusd` tile: up to 6 rows × one 16-column panel ([`tile_vnni`]).
struct VnniTile;

impl PanelTile for VnniTile {
    const MR: usize = 6;
    #[inline(always)]
    unsafe fn tile(r: usize, a: *const u8, lda: usize, w: *const i8, groups: usize, t: *mut i32) {
        // SAFETY: forwarded contract (the caller is compiled with AVX2 and AVX-VNNI).
        unsafe {
            match r {
                6 => tile_vnni::<6>(a, lda, w, groups, t),
                5 => tile_vnni::<5>(a, lda, w, groups, t),
                4 => tile_vnni::<4>(a, lda, w, groups, t),
                3 => tile_vnni::<3>(a, lda, w, groups, t),
                2 => tile_vnni::<2>(a, lda, w, groups, t),
                _ => tile_vnni::<1>(a, lda, w, groups, t),
            }
        }
    }
}

super::simd::gemm_entry!(
    VnniTile,
    "avx2,fma,avxvnni",
    "the CPU has AVX2 and AVX-VNNI (the AvxVnni kernel only)."
);

#[target_feature(enable = "avx2,fma,avxvnni")]
#[inline]
/// # Safety
/// The CPU must have AVX2 and AVX-VNNI; rows `r < MR` of `a` (stride `lda`) hold `groups·4`
/// readable codes, `w` holds `groups` 64-byte groups, and `out` has room for `MR` rows of 16 i32.
unsafe fn tile_vnni<const MR: usize>(
    a: *const u8,
    lda: usize,
    w: *const i8,
    groups: usize,
    out: *mut i32,
) {
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    for g in 0..groups {
        // SAFETY: group g of the panel has 64 readable bytes.
        let (w0, w1) = unsafe {
            let p = w.add(g * NR * KG);
            (
                _mm256_loadu_si256(p.cast()),
                _mm256_loadu_si256(p.add(32).cast()),
            )
        };
        for (r, ar) in acc.iter_mut().enumerate() {
            // SAFETY: the caller guarantees row r has `groups * 4` readable codes.
            let four = unsafe { (a.add(r * lda + g * KG) as *const i32).read_unaligned() };
            let av = _mm256_set1_epi32(four);
            ar[0] = _mm256_dpbusd_avx_epi32(ar[0], av, w0);
            ar[1] = _mm256_dpbusd_avx_epi32(ar[1], av, w1);
        }
    }
    for (r, ar) in acc.iter().enumerate() {
        // SAFETY: the caller's tile has room for MR rows of 16 i32.
        unsafe {
            _mm256_storeu_si256(out.add(r * NR).cast(), ar[0]);
            _mm256_storeu_si256(out.add(r * NR + 8).cast(), ar[1]);
        }
    }
}
