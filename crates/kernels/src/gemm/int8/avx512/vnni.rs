//! 512-bit AVX512-VNNI GEMM: `vpdpbusd` sums four u8·s8 products straight into each i32 lane, exact
//! for every code. For `m ≤ 16` all rows form one register tile (so every weight is read once) with
//! enough 16-column panels for 8–16 independent accumulators (1×128, 2×96, 3×64, 4×48, 5–7×32,
//! 8×48, 9–16×16); larger `m` uses 8×48 tiles (24 accumulators). Column blocks are the outer loop, so a
//! block's weights stay in L1 while every row block passes over them.

use std::arch::x86_64::*;

use super::super::driver::{Epi, EpiFn, Out, TILE_MAX};
use super::super::{Int8Weights, KG, NR};

/// Packed GEMM over activations in row blocks of height `h` (from [`a_block`]); see the module docs.
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
    // SAFETY: only installed for the Avx512Vnni kernel, selected only when the CPU has AVX512-VNNI.
    unsafe { gemm_vnni(a, lda, m, h, w, epi, epi_fn, out) }
}

/// Activation layout `(block height = register tile height, row stride)` for `m` rows of `kp` codes.
pub(crate) fn a_layout(m: usize, kp: usize) -> (usize, usize) {
    (tile_shape(m).0, kp)
}

/// Calls `tile::<MR, NP>` for the runtime pair `(r, np)`; only the listed shapes are instantiated.
macro_rules! dispatch {
    ($r:expr, $np:expr, $args:tt, [$(($mr:literal, $p:literal)),* $(,)?]) => {
        match ($r, $np) {
            $( ($mr, $p) => tile::<$mr, $p> $args, )*
            _ => unreachable!("tile shape out of range"),
        }
    };
}

/// Tile shape (rows, panels) for a problem of `m` rows: every row in one block for `m ≤ 16`
/// (weights are read once), with enough panels for ≥ 8 independent accumulators; 8 rows × 3 panels
/// otherwise.
fn tile_shape(m: usize) -> (usize, usize) {
    match m {
        1 => (1, 8),
        2 => (2, 6),
        3 => (3, 4),
        4 => (4, 3),
        5..=7 => (m, 2),
        8 => (8, 3),
        9..=16 => (m, 1),
        _ => (8, 3),
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
#[allow(clippy::too_many_arguments)]
/// # Safety
/// The CPU must have AVX-512 F/BW/VL and AVX512-VNNI. The buffer sizes are asserted.
unsafe fn gemm_vnni(
    a: &[u8],
    lda: usize,
    m: usize,
    h: usize,
    w: &Int8Weights,
    epi: &Epi<'_>,
    epi_fn: EpiFn,
    out: &mut Out<'_>,
) {
    let groups = w.kp / KG;
    let pstride = w.pstride;
    let panels = w.n.div_ceil(NR);
    let mut tile = [0i32; TILE_MAX];
    assert!(a.len() >= m * lda && lda >= w.kp && lda.is_multiple_of(KG));
    assert!(w.packed().len() >= panels * pstride);
    // Panels per tile for blocks of height h (the same choice as for a whole problem of h rows).
    let npb = tile_shape(h).1;
    let mr = h;
    let mut p0 = 0;
    while p0 < panels {
        let np = (panels - p0).min(npb);
        let cols = (np * NR).min(w.n - p0 * NR);
        let ld = np * NR;
        // SAFETY: panels p0..p0+np lie inside `packed` (asserted above).
        let wp = unsafe { w.packed().as_ptr().add(p0 * pstride) };
        let mut i = 0;
        while i < m {
            let r = (m - i).min(mr);
            let t = tile.as_mut_ptr();
            // SAFETY: the block of rows i..i+r holds r·lda codes from i·lda (asserted above,
            // blocked layout); r·ld ≤ TILE_MAX.
            unsafe {
                let ap = a.as_ptr().add(i * lda);
                dispatch!(
                    r,
                    np,
                    (ap, wp, pstride, groups, t),
                    [
                        (1, 1),
                        (1, 2),
                        (1, 3),
                        (1, 4),
                        (1, 5),
                        (1, 6),
                        (1, 7),
                        (1, 8),
                        (2, 1),
                        (2, 2),
                        (2, 3),
                        (2, 4),
                        (2, 5),
                        (2, 6),
                        (3, 1),
                        (3, 2),
                        (3, 3),
                        (3, 4),
                        (4, 1),
                        (4, 2),
                        (4, 3),
                        (5, 1),
                        (5, 2),
                        (5, 3),
                        (6, 1),
                        (6, 2),
                        (6, 3),
                        (7, 1),
                        (7, 2),
                        (7, 3),
                        (8, 1),
                        (8, 2),
                        (8, 3),
                        (9, 1),
                        (10, 1),
                        (11, 1),
                        (12, 1),
                        (13, 1),
                        (14, 1),
                        (15, 1),
                        (16, 1),
                    ]
                );
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
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL and AVX512-VNNI; `a` holds a block of `MR` rows of `groups·4`
/// codes in the blocked layout, the `NP` panels at stride `pstride` from `w` hold `groups` 64-byte
/// groups each, and `out` has room for `MR` rows of `NP·16` i32.
unsafe fn tile<const MR: usize, const NP: usize>(
    a: *const u8,
    w: *const i8,
    pstride: usize,
    groups: usize,
    out: *mut i32,
) {
    let mut acc = [[_mm512_setzero_si512(); NP]; MR];
    // The caller guarantees a block of MR rows of `groups * 4` readable codes (group g of row r at
    // `a + (g·MR + r)·4`), and NP panels of `groups * 64` readable bytes at stride `pstride`.
    let panels: [*const i8; NP] = std::array::from_fn(|p| w.wrapping_add(p * pstride));
    let step = |acc: &mut [[__m512i; NP]; MR], g: usize| {
        let wv: [__m512i; NP] = std::array::from_fn(|p| {
            // SAFETY: group g < groups of panel p is readable (caller's guarantee above).
            unsafe { _mm512_loadu_si512(panels[p].add(g * NR * KG).cast()) }
        });
        for (r, ar) in acc.iter_mut().enumerate() {
            // SAFETY: group g of row r of the block is readable (caller's guarantee above).
            let four = unsafe { (a.add((g * MR + r) * KG) as *const i32).read_unaligned() };
            let av = _mm512_set1_epi32(four);
            for (c, &wp) in ar.iter_mut().zip(&wv) {
                *c = _mm512_dpbusd_epi32(*c, av, wp);
            }
        }
    };
    let mut g = 0;
    while g + 2 <= groups {
        step(&mut acc, g);
        step(&mut acc, g + 1);
        g += 2;
    }
    if g < groups {
        step(&mut acc, g);
    }
    for (r, ar) in acc.iter().enumerate() {
        for (p, v) in ar.iter().enumerate() {
            // SAFETY: the caller's tile has room for MR rows of NP·16 i32.
            unsafe { _mm512_storeu_si512(out.add(r * NP * NR + p * NR).cast(), *v) };
        }
    }
}
