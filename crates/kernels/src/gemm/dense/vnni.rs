//! bf16 micro-kernel on `vdpbf16ps` (AVX512-BF16): 6 rows × 32 columns in two accumulator sets (even /
//! odd k-pairs), one instruction per row, half-tile and k-pair.
//!
//! `vdpbf16ps` adds, per f32 lane, the two exact products of a bf16 pair to the accumulator (odd
//! element first, then even, each rounded to f32 nearest-even, with bf16 denormal inputs read as zero
//! and denormal results flushed); so against the sequential-FMA oracle it only reassociates the sum,
//! plus flush-to-zero effects below 2⁻¹²⁶ per step.

use std::arch::x86_64::*;

use super::act::{self, Bf16Layout};
use super::avx512::{Acc, MR, NR, init, masks, merge, store};
use super::{ActFeed, DenseOps, Kernel, Tile};

/// k-pairs per cache block (1024 k indices, like the f32 kernels).
const KC: usize = 512;

/// Installs the `vdpbf16ps` bf16 kernel (only called when the CPU has AVX512-BF16).
pub(super) fn install(ops: &mut DenseOps) {
    ops.bf16 = Some(Kernel {
        nr: NR,
        mr: MR,
        kc: KC,
        step_multiple: 1,
        small: None,
        widen: None,
        tile: bf16_tile,
        act: ActFeed::Bf16(Bf16Layout::Pairs, act::pairs_avx512),
    });
}

/// One k-pair step.
#[inline]
#[target_feature(enable = "avx512f,avx512bf16")]
///
/// # Safety
/// The CPU must have AVX-512F and AVX512-BF16; `w` is a 64-byte aligned panel step of 32 bf16 pairs
/// and `a.add(i·lda + p)` is readable for rows `i < R`.
unsafe fn step<const R: usize>(
    acc: &mut Acc<R>,
    a: *const u32,
    lda: usize,
    p: usize,
    w: *const u32,
) {
    // SAFETY: w points at an aligned 32-pair panel step; row i pair p is inside the activations.
    unsafe {
        let w0: __m512bh = std::mem::transmute(_mm512_load_si512(w.cast()));
        let w1: __m512bh = std::mem::transmute(_mm512_load_si512(w.add(16).cast()));
        for (i, r) in acc.iter_mut().enumerate() {
            let x: __m512bh = std::mem::transmute(_mm512_set1_epi32(*a.add(i * lda + p) as i32));
            r[0] = _mm512_dpbf16_ps(r[0], x, w0);
            r[1] = _mm512_dpbf16_ps(r[1], x, w1);
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")]
/// # Safety
/// The [`TileFn`](super::TileFn) contract for `R` rows; the CPU must have AVX-512 F/BW/VL/DQ and
/// AVX512-BF16.
unsafe fn rows<const R: usize>(t: &Tile) {
    let m = masks(t.nv);
    // SAFETY: the caller guarantees the tile's pointers cover R rows, kc pair steps and nv columns.
    unsafe {
        let mut acc = init::<R>(t, m);
        let a = t.a;
        let mut w = t.w.cast::<u32>();
        let mut p = 0;
        {
            let mut acc2 = [[_mm512_setzero_ps(); 2]; R];
            while p + 2 <= t.kc {
                step(&mut acc, a, t.lda, p, w);
                step(&mut acc2, a, t.lda, p + 1, w.add(NR));
                w = w.add(2 * NR);
                p += 2;
            }
            merge(&mut acc, &acc2);
        }
        while p < t.kc {
            step(&mut acc, a, t.lda, p, w);
            w = w.add(NR);
            p += 1;
        }
        store(t, &acc, m);
    }
}

/// Tile routine.
///
/// # Safety
/// The [`TileFn`](super::TileFn) contract; the CPU must support AVX-512 F/BW/VL/DQ and BF16.
unsafe fn bf16_tile(t: &Tile, mr: usize) {
    // SAFETY: forwarded contract; mr is checked against the kernel height.
    unsafe { by_rows!(rows, t, mr) }
}
