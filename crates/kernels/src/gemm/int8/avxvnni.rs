//! 256-bit AVX-VNNI GEMM (`vpdpbusd` with VEX encoding): u8·s8 quadruples summed straight into i32,
//! exact for every code. Tiles of up to 6 rows × 16 columns (12 accumulators).

use std::arch::x86_64::*;

use super::driver::{Epi, EpiFn, Out, TILE_MAX};
use super::{Int8Weights, KG, NR};

/// Packed GEMM; see the module docs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    a: &[u8],
    lda: usize,
    m: usize,
    h: usize,
    w: &Int8Weights,
    epi: &Epi<'_>,
    epi_fn: EpiFn,
    out: &mut Out<'_>,
) {
    assert_eq!(h, 1, "this kernel reads row-major activations");
    // SAFETY: only installed for the AvxVnni kernel, which is only selected when the CPU has
    // AVX2 and AVX-VNNI.
    unsafe { gemm_avxvnni(a, lda, m, w, epi, epi_fn, out) }
}

#[target_feature(enable = "avx2,fma,avxvnni")]
/// # Safety
/// The CPU must have AVX2, FMA and AVX-VNNI. The buffer sizes are asserted.
unsafe fn gemm_avxvnni(
    a: &[u8],
    lda: usize,
    m: usize,
    w: &Int8Weights,
    epi: &Epi<'_>,
    epi_fn: EpiFn,
    out: &mut Out<'_>,
) {
    let groups = w.kp / KG;
    let pstride = w.pstride;
    let mut tile = [0i32; TILE_MAX];
    assert!(a.len() >= m * lda && lda >= w.kp && w.packed().len() >= w.n.div_ceil(NR) * pstride);
    for p in 0..w.n.div_ceil(NR) {
        let cols = NR.min(w.n - p * NR);
        // SAFETY: panel `p` lies inside `packed` (asserted above).
        let wp = unsafe { w.packed().as_ptr().add(p * pstride) };
        let mut i = 0;
        while i < m {
            let r = (m - i).min(6);
            let t = tile.as_mut_ptr();
            // SAFETY: rows i..i+r of `a` hold `kp` codes each (asserted above); `tile` holds 6×16.
            unsafe {
                let ap = a.as_ptr().add(i * lda);
                match r {
                    6 => tile_vnni::<6>(ap, lda, wp, groups, t),
                    5 => tile_vnni::<5>(ap, lda, wp, groups, t),
                    4 => tile_vnni::<4>(ap, lda, wp, groups, t),
                    3 => tile_vnni::<3>(ap, lda, wp, groups, t),
                    2 => tile_vnni::<2>(ap, lda, wp, groups, t),
                    _ => tile_vnni::<1>(ap, lda, wp, groups, t),
                }
            }
            epi_fn(&tile, NR, r, i, p * NR, cols, epi, out);
            i += r;
        }
    }
}

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
