//! 512-bit AVX512-VNNI GEMM: `vpdpbusd` sums four u8·s8 products straight into each i32 lane, exact
//! for every code. Register tiles: 6 rows × 32 columns (12 accumulators) for `m ≥ 4`, 2–3 rows × 64
//! columns for `m ∈ 2..=3`, 1 row × 128 columns for `m = 1` (enough independent chains to hide the
//! `vpdpbusd` latency). Column blocks are the outer loop, so a block's weights stay in L1 while every
//! row block passes over them.

use std::arch::x86_64::*;

use super::super::driver::{Epi, EpiFn, Out, TILE_MAX};
use super::super::{Int8Weights, KG, NR};

/// Packed GEMM; see the module docs.
pub(crate) fn gemm(
    a: &[u8],
    lda: usize,
    m: usize,
    w: &Int8Weights,
    epi: &Epi<'_>,
    epi_fn: EpiFn,
    out: &mut Out<'_>,
) {
    // SAFETY: only installed for the Avx512Vnni kernel, selected only when the CPU has AVX512-VNNI.
    unsafe { gemm_vnni(a, lda, m, w, epi, epi_fn, out) }
}

macro_rules! dispatch {
    ($r:expr, $np:expr, $args:tt, [$($mr:literal),*], $ps:tt) => {
        match $r {
            $( $mr => dispatch!(@panels $mr, $np, $args, $ps), )*
            _ => unreachable!("row tile height out of range"),
        }
    };
    (@panels $mr:literal, $np:expr, $args:tt, [$($p:literal),*]) => {
        match $np {
            $( $p => tile::<$mr, $p> $args, )*
            _ => unreachable!("panel count out of range"),
        }
    };
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn gemm_vnni(
    a: &[u8],
    lda: usize,
    m: usize,
    w: &Int8Weights,
    epi: &Epi<'_>,
    epi_fn: EpiFn,
    out: &mut Out<'_>,
) {
    let groups = w.kp / KG;
    let pstride = groups * NR * KG;
    let panels = w.n.div_ceil(NR);
    let mut tile = [0i32; TILE_MAX];
    assert!(a.len() >= m * lda && lda >= w.kp && w.packed.len() >= panels * pstride);
    let (mr, npb) = match m {
        1 => (1, 8),
        2 | 3 => (m, 4),
        _ => (6, 2),
    };
    let mut p0 = 0;
    while p0 < panels {
        let np = (panels - p0).min(npb);
        let cols = (np * NR).min(w.n - p0 * NR);
        let ld = np * NR;
        // SAFETY: panels p0..p0+np lie inside `packed` (asserted above).
        let wp = unsafe { w.packed.as_ptr().add(p0 * pstride) };
        let mut i = 0;
        while i < m {
            let r = (m - i).min(mr);
            let t = tile.as_mut_ptr();
            // SAFETY: rows i..i+r of `a` hold `kp` codes each (asserted above); r·ld ≤ TILE_MAX.
            unsafe {
                let ap = a.as_ptr().add(i * lda);
                if mr == 1 {
                    dispatch!(1, np, (ap, lda, wp, pstride, groups, t), [1], [1, 2, 3, 4, 5, 6, 7, 8]);
                } else if mr <= 3 {
                    dispatch!(r, np, (ap, lda, wp, pstride, groups, t), [1, 2, 3], [1, 2, 3, 4]);
                } else {
                    dispatch!(r, np, (ap, lda, wp, pstride, groups, t), [1, 2, 3, 4, 5, 6], [1, 2]);
                }
            }
            epi_fn(&tile, ld, r, i, p0 * NR, cols, epi, out);
            i += r;
        }
        p0 += np;
    }
}

/// `MR` rows × `NP` 16-column panels; writes the raw accumulators to `out` with row stride `NP·16`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
unsafe fn tile<const MR: usize, const NP: usize>(
    a: *const u8,
    lda: usize,
    w: *const i8,
    pstride: usize,
    groups: usize,
    out: *mut i32,
) {
    let mut acc = [[_mm512_setzero_si512(); NP]; MR];
    for g in 0..groups {
        let mut wv = [_mm512_setzero_si512(); NP];
        for (p, v) in wv.iter_mut().enumerate() {
            // SAFETY: group g of panel p has 64 readable bytes.
            *v = unsafe { _mm512_loadu_si512(w.add(p * pstride + g * NR * KG).cast()) };
        }
        for (r, ar) in acc.iter_mut().enumerate() {
            // SAFETY: the caller guarantees row r has `groups * 4` readable codes.
            let four = unsafe { (a.add(r * lda + g * KG) as *const i32).read_unaligned() };
            let av = _mm512_set1_epi32(four);
            for p in 0..NP {
                ar[p] = _mm512_dpbusd_epi32(ar[p], av, wv[p]);
            }
        }
    }
    for (r, ar) in acc.iter().enumerate() {
        for (p, v) in ar.iter().enumerate() {
            // SAFETY: the caller's tile has room for MR rows of NP·16 i32.
            unsafe { _mm512_storeu_si512(out.add(r * NP * NR + p * NR).cast(), *v) };
        }
    }
}
