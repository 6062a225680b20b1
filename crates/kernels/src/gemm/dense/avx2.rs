//! AVX2+FMA micro-kernels: up to 3 rows × 16 columns in two accumulator sets (even / odd k-steps,
//! 12 ymm accumulators, merged at the end of the k block), with f32 weights, f16 weights widened by
//! `vcvtph2ps` (F16C), and bf16 weight pairs widened by shifts. Column tails use `vmaskmovps`.
//! Every tile height sums a row in the same order, so a row's result does not depend on the batch.

use std::arch::x86_64::*;

use super::act::{self, Bf16Layout};
use super::{ActFeed, DenseOps, Kernel, Tile};

/// Rows per tile.
const MR: usize = 3;
/// Columns per tile (two ymm).
const NR: usize = 16;
/// k-steps per cache block (see the driver's docs).
const KC: usize = 1024;

/// Installs the AVX2 kernels.
pub(super) fn install(ops: &mut DenseOps) {
    let k = |tile, act| Kernel {
        nr: NR,
        mr: MR,
        kc: KC,
        step_multiple: 1,
        small: None,
        widen: None,
        tile,
        act,
    };
    ops.f32 = Some(k(f32_tile, ActFeed::F32));
    ops.f16 = Some(Kernel {
        widen: Some((widen_f16, f32_tile)),
        ..k(f16_tile, ActFeed::F32)
    });
    ops.bf16 = Some(k(
        bf16w_tile,
        ActFeed::Bf16(Bf16Layout::Widened, act::widened_avx2),
    ));
}

type Acc<const R: usize> = [[__m256; 2]; R];
type Masks = (__m256i, __m256i);

/// Lane masks of the two halves of a tile with `nv` valid columns.
#[inline]
#[target_feature(enable = "avx2")]
fn masks(nv: usize) -> Masks {
    let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let nv = nv as i32;
    (
        _mm256_cmpgt_epi32(_mm256_set1_epi32(nv), idx),
        _mm256_cmpgt_epi32(_mm256_set1_epi32(nv - 8), idx),
    )
}

#[inline]
#[target_feature(enable = "avx2")]
/// # Safety
/// The CPU must have AVX2; the tile's bias (when not null) or its `R` output rows hold the `nv`
/// columns the masks `m` enable.
unsafe fn init<const R: usize>(t: &Tile, m: Masks) -> Acc<R> {
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    // SAFETY: masked loads touch only the nv valid columns of the bias or of rows 0..R of `c`.
    unsafe {
        if !t.bias.is_null() {
            let b0 = _mm256_maskload_ps(t.bias, m.0);
            let b1 = _mm256_maskload_ps(t.bias.wrapping_add(8), m.1);
            for r in acc.iter_mut() {
                *r = [b0, b1];
            }
        } else {
            for (i, r) in acc.iter_mut().enumerate() {
                let c = t.c.wrapping_add(i * t.ldc);
                *r = [
                    _mm256_maskload_ps(c, m.0),
                    _mm256_maskload_ps(c.wrapping_add(8), m.1),
                ];
            }
        }
    }
    acc
}

#[inline]
#[target_feature(enable = "avx2")]
fn merge<const R: usize>(acc: &mut Acc<R>, other: &Acc<R>) {
    for (a, o) in acc.iter_mut().zip(other) {
        a[0] = _mm256_add_ps(a[0], o[0]);
        a[1] = _mm256_add_ps(a[1], o[1]);
    }
}

#[inline]
#[target_feature(enable = "avx2")]
/// # Safety
/// The CPU must have AVX2; the tile's `R` output rows can be written in the `nv` columns the masks
/// `m` enable.
unsafe fn store<const R: usize>(t: &Tile, acc: &Acc<R>, m: Masks) {
    let zero = _mm256_setzero_ps();
    for (i, r) in acc.iter().enumerate() {
        let (mut v0, mut v1) = (r[0], r[1]);
        if t.relu {
            v0 = _mm256_max_ps(v0, zero);
            v1 = _mm256_max_ps(v1, zero);
        }
        let c = t.c.wrapping_add(i * t.ldc);
        // SAFETY: masked stores write only the nv valid columns of row i < R of the tile.
        unsafe {
            _mm256_maskstore_ps(c, m.0, v0);
            _mm256_maskstore_ps(c.wrapping_add(8), m.1, v1);
        }
    }
}

macro_rules! tile_fn {
    ($name:ident, $inner:ident, $step:ident, $wty:ty, $wstep:expr) => {
        #[target_feature(enable = "avx2,fma,f16c")]
        /// # Safety
        /// The [`TileFn`](super::TileFn) contract for `R` rows; the CPU must have AVX2, FMA and
        /// F16C.
        unsafe fn $inner<const R: usize>(t: &Tile) {
            let m = masks(t.nv);
            // SAFETY: the caller guarantees the tile's pointers cover R rows, kc steps and nv columns.
            unsafe {
                let mut acc = init::<R>(t, m);
                let a = t.a;
                let mut w = t.w.cast::<$wty>();
                let mut p = 0;
                {
                    let mut acc2 = [[_mm256_setzero_ps(); 2]; R];
                    while p + 2 <= t.kc {
                        $step(&mut acc, a, t.lda, p, w);
                        $step(&mut acc2, a, t.lda, p + 1, w.add($wstep));
                        w = w.add(2 * $wstep);
                        p += 2;
                    }
                    merge(&mut acc, &acc2);
                }
                while p < t.kc {
                    $step(&mut acc, a, t.lda, p, w);
                    w = w.add($wstep);
                    p += 1;
                }
                store(t, &acc, m);
            }
        }

        /// Tile routine (see the module docs).
        ///
        /// # Safety
        /// The [`TileFn`](super::TileFn) contract; the CPU must support AVX2, FMA and F16C.
        unsafe fn $name(t: &Tile, mr: usize) {
            // SAFETY: forwarded contract; mr is checked against the kernel height.
            unsafe {
                match mr {
                    1 => $inner::<1>(t),
                    2 => $inner::<2>(t),
                    3 => $inner::<3>(t),
                    _ => unreachable!("tile height {mr} exceeds the AVX2 kernel"),
                }
            }
        }
    };
}

#[inline]
#[target_feature(enable = "avx2,fma")]
/// # Safety
/// The CPU must have AVX2 and FMA (the function is compiled for them); `w` is a 32-byte aligned
/// panel step of 16 floats and `a.add(i·lda + p)` is readable for rows `i < R`.
unsafe fn step_f32<const R: usize>(
    acc: &mut Acc<R>,
    a: *const u32,
    lda: usize,
    p: usize,
    w: *const f32,
) {
    // SAFETY: w points at an aligned 16-float panel step; row i step p is inside the activations.
    unsafe {
        let w0 = _mm256_load_ps(w);
        let w1 = _mm256_load_ps(w.add(8));
        for (i, r) in acc.iter_mut().enumerate() {
            let x = _mm256_set1_ps(f32::from_bits(*a.add(i * lda + p)));
            r[0] = _mm256_fmadd_ps(x, w0, r[0]);
            r[1] = _mm256_fmadd_ps(x, w1, r[1]);
        }
    }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
/// # Safety
/// The CPU must have AVX2, FMA and F16C (the function is compiled for them); `w` is a 16-byte
/// aligned panel step of 16 halves and `a.add(i·lda + p)` is readable for rows `i < R`.
unsafe fn step_f16<const R: usize>(
    acc: &mut Acc<R>,
    a: *const u32,
    lda: usize,
    p: usize,
    w: *const u16,
) {
    // SAFETY: w points at an aligned 16-half panel step; row i step p is inside the activations.
    unsafe {
        let w0 = _mm256_cvtph_ps(_mm_load_si128(w.cast()));
        let w1 = _mm256_cvtph_ps(_mm_load_si128(w.add(8).cast()));
        for (i, r) in acc.iter_mut().enumerate() {
            let x = _mm256_set1_ps(f32::from_bits(*a.add(i * lda + p)));
            r[0] = _mm256_fmadd_ps(x, w0, r[0]);
            r[1] = _mm256_fmadd_ps(x, w1, r[1]);
        }
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
/// # Safety
/// The CPU must have AVX2 and FMA (the function is compiled for them); `w` is a 32-byte aligned
/// panel step of 16 bf16 pairs and `a.add(i·lda + 2p + 1)` is readable for rows `i < R`.
unsafe fn step_bf16w<const R: usize>(
    acc: &mut Acc<R>,
    a: *const u32,
    lda: usize,
    p: usize,
    w: *const u32,
) {
    // SAFETY: w points at an aligned 16-pair panel step; activations are widened rows of 2·steps.
    unsafe {
        let hi = _mm256_set1_epi32(0xFFFF_0000_u32 as i32);
        let v0 = _mm256_load_si256(w.cast());
        let v1 = _mm256_load_si256(w.add(8).cast());
        let e0 = _mm256_castsi256_ps(_mm256_slli_epi32::<16>(v0));
        let e1 = _mm256_castsi256_ps(_mm256_slli_epi32::<16>(v1));
        let o0 = _mm256_castsi256_ps(_mm256_and_si256(v0, hi));
        let o1 = _mm256_castsi256_ps(_mm256_and_si256(v1, hi));
        for (i, r) in acc.iter_mut().enumerate() {
            let row = a.add(i * lda + 2 * p);
            let xe = _mm256_set1_ps(f32::from_bits(*row));
            let xo = _mm256_set1_ps(f32::from_bits(*row.add(1)));
            r[0] = _mm256_fmadd_ps(xe, e0, r[0]);
            r[1] = _mm256_fmadd_ps(xe, e1, r[1]);
            r[0] = _mm256_fmadd_ps(xo, o0, r[0]);
            r[1] = _mm256_fmadd_ps(xo, o1, r[1]);
        }
    }
}

tile_fn!(f32_tile, f32_rows, step_f32, f32, NR);
tile_fn!(f16_tile, f16_rows, step_f16, u16, NR);
tile_fn!(bf16w_tile, bf16w_rows, step_bf16w, u32, NR);

/// Widens `count` f16 panel entries (a multiple of 8) to f32.
///
/// # Safety
/// `src` holds `count` halves, 32-byte aligned; `dst` has room for `count` f32, 64-byte aligned; the
/// CPU has the module's features.
#[target_feature(enable = "avx2,f16c")]
unsafe fn widen_f16(src: *const u8, count: usize, dst: *mut f32) {
    let src = src.cast::<u16>();
    for c in (0..count).step_by(8) {
        // SAFETY: c + 8 <= count entries on both sides; alignment per the contract.
        unsafe {
            _mm256_store_ps(
                dst.add(c),
                _mm256_cvtph_ps(_mm_load_si128(src.add(c).cast())),
            )
        };
    }
}
