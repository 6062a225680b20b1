//! bf16 micro-kernel on `vdpbf16ps` (AVX512-BF16): 6 rows × 32 columns in two accumulator sets (even /
//! odd k-pairs), one instruction per row, half-tile and k-pair; the tile body is the width-generic
//! one of [`super::tile`] at `__m512` with the [`Dpbf16`] step.
//!
//! `vdpbf16ps` adds, per f32 lane, the two exact products of a bf16 pair to the accumulator (odd
//! element first, then even, each rounded to f32 nearest-even, with bf16 denormal inputs read as zero
//! and denormal results flushed); so against the sequential-FMA oracle it only reassociates the sum,
//! plus flush-to-zero effects below 2⁻¹²⁶ per step.

use std::arch::x86_64::*;

use super::act::{self, Bf16Layout};
use super::avx512::{MR, NR};
use super::tile::{Acc, Rows, Step};
use super::{ActFeed, DenseOps, Kernel};

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

/// One k-pair step of bf16 pairs on `vdpbf16ps` (needs AVX512-BF16 besides AVX-512).
pub(super) struct Dpbf16;

impl Step<__m512> for Dpbf16 {
    type W = u32;
    #[inline(always)]
    unsafe fn step<const R: usize>(acc: &mut Acc<__m512, R>, x: Rows, w: *const u32) {
        // SAFETY: the CPU has AVX512-BF16 (the trait contract); w points at an aligned 32-pair
        // panel step; row i pair p is inside the activations.
        unsafe {
            let w0: __m512bh = std::mem::transmute(_mm512_load_si512(w.cast()));
            let w1: __m512bh = std::mem::transmute(_mm512_load_si512(w.add(16).cast()));
            for (i, r) in acc.iter_mut().enumerate() {
                let pair = *x.a.add(i * x.lda + x.p) as i32;
                let xv: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
                r[0] = _mm512_dpbf16_ps(r[0], xv, w0);
                r[1] = _mm512_dpbf16_ps(r[1], xv, w1);
            }
        }
    }
}

super::tile::tile_entry!(
    bf16_tile,
    __m512,
    Dpbf16,
    "avx512f,avx512bw,avx512vl,avx512dq,avx512bf16",
    [1, 2, 3, 4, 5, 6]
);
