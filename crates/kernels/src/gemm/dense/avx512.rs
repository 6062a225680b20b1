//! AVX-512 micro-kernels: up to 6 rows × 32 columns in two accumulator sets (even / odd k-steps, 24
//! zmm accumulators, merged at the end of the k block), with f32 weights, f16 weights widened by
//! `vcvtph2ps`, and bf16 weight pairs widened by shifts (for CPUs without AVX512-BF16). Column tails
//! use masked loads and stores. Every tile height sums a row in the same order (so a row's result
//! does not depend on the batch it is in) and even one-row tiles have 4 independent FMA chains.

use std::arch::x86_64::*;

use super::act::{self, Bf16Layout};
use super::{ActFeed, DenseOps, Kernel, Tile};

/// Rows per tile.
pub(super) const MR: usize = 6;
/// Columns per tile (two zmm).
pub(super) const NR: usize = 32;
/// k-steps per cache block (see the driver's docs).
const KC: usize = 1024;

/// Installs the AVX-512 kernels.
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
        ActFeed::Bf16(Bf16Layout::Widened, act::widened_avx512),
    ));
}

pub(super) type Acc<const R: usize> = [[__m512; 2]; R];

/// Calls `$f::<mr>` for a runtime `mr` in 1..=6.
macro_rules! by_rows {
    ($f:ident, $t:expr, $mr:expr) => {
        match $mr {
            1 => $f::<1>($t),
            2 => $f::<2>($t),
            3 => $f::<3>($t),
            4 => $f::<4>($t),
            5 => $f::<5>($t),
            6 => $f::<6>($t),
            _ => unreachable!("tile height {} exceeds the AVX-512 kernel", $mr),
        }
    };
}

/// Column masks of the two halves of a tile with `nv` valid columns.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn masks(nv: usize) -> (__mmask16, __mmask16) {
    let lo = if nv >= 16 { 0xFFFF } else { (1u32 << nv) - 1 };
    let hi = if nv >= 32 {
        0xFFFF
    } else if nv > 16 {
        (1u32 << (nv - 16)) - 1
    } else {
        0
    };
    (lo as u16, hi as u16)
}

/// Starting accumulators: the bias broadcast to every row, or the partial sums already in `c`.
#[inline]
#[target_feature(enable = "avx512f")]
///
/// # Safety
/// The CPU must have AVX-512F; the tile's bias (when not null) or its `R` output rows hold the `nv`
/// columns the masks `m` enable.
pub(super) unsafe fn init<const R: usize>(t: &Tile, m: (__mmask16, __mmask16)) -> Acc<R> {
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    // SAFETY: masked loads touch only the nv valid columns of the bias or of rows 0..R of `c`
    // (caller's contract); wrapping_add keeps the address arithmetic defined for masked-out halves.
    unsafe {
        if !t.bias.is_null() {
            let b0 = _mm512_maskz_loadu_ps(m.0, t.bias);
            let b1 = _mm512_maskz_loadu_ps(m.1, t.bias.wrapping_add(16));
            for r in acc.iter_mut() {
                *r = [b0, b1];
            }
        } else {
            for (i, r) in acc.iter_mut().enumerate() {
                let c = t.c.wrapping_add(i * t.ldc);
                *r = [
                    _mm512_maskz_loadu_ps(m.0, c),
                    _mm512_maskz_loadu_ps(m.1, c.wrapping_add(16)),
                ];
            }
        }
    }
    acc
}

/// Adds the second accumulator set into the first.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn merge<const R: usize>(acc: &mut Acc<R>, other: &Acc<R>) {
    for (a, o) in acc.iter_mut().zip(other) {
        a[0] = _mm512_add_ps(a[0], o[0]);
        a[1] = _mm512_add_ps(a[1], o[1]);
    }
}

/// Stores the tile (ReLU first when asked).
#[inline]
#[target_feature(enable = "avx512f")]
///
/// # Safety
/// The CPU must have AVX-512F; the tile's `R` output rows can be written in the `nv` columns the
/// masks `m` enable.
pub(super) unsafe fn store<const R: usize>(t: &Tile, acc: &Acc<R>, m: (__mmask16, __mmask16)) {
    let zero = _mm512_setzero_ps();
    for (i, r) in acc.iter().enumerate() {
        let (mut v0, mut v1) = (r[0], r[1]);
        if t.relu {
            v0 = _mm512_max_ps(v0, zero);
            v1 = _mm512_max_ps(v1, zero);
        }
        let c = t.c.wrapping_add(i * t.ldc);
        // SAFETY: masked stores write only the nv valid columns of row i < R of the tile.
        unsafe {
            _mm512_mask_storeu_ps(c, m.0, v0);
            _mm512_mask_storeu_ps(c.wrapping_add(16), m.1, v1);
        }
    }
}

/// Defines a tile routine from a per-step body `$step(acc, a, lda, p, w)` that consumes one k-step
/// of `$wstep` weight elements of type `$wty`.
macro_rules! tile_fn {
    ($name:ident, $inner:ident, $step:ident, $wty:ty, $wstep:expr) => {
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")]
        /// # Safety
        /// The [`TileFn`](super::TileFn) contract for `R` rows; the CPU must have AVX-512
        /// F/BW/VL/DQ, FMA and F16C.
        unsafe fn $inner<const R: usize>(t: &Tile) {
            let m = masks(t.nv);
            // SAFETY: the caller guarantees the tile's pointers cover R rows, kc steps and nv columns.
            unsafe {
                let mut acc = init::<R>(t, m);
                let a = t.a;
                let mut w = t.w.cast::<$wty>();
                let mut p = 0;
                {
                    let mut acc2 = [[_mm512_setzero_ps(); 2]; R];
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
        /// The [`TileFn`](super::TileFn) contract; the CPU must support AVX-512 F/BW/VL/DQ.
        pub(super) unsafe fn $name(t: &Tile, mr: usize) {
            // SAFETY: forwarded contract; mr is checked against the kernel height.
            unsafe { by_rows!($inner, t, mr) }
        }
    };
}

/// One k-step with f32 weights.
#[inline]
#[target_feature(enable = "avx512f,fma")]
///
/// # Safety
/// The CPU must have AVX-512F and FMA; `w` is a 64-byte aligned panel step of 32 floats and
/// `a.add(i·lda + p)` is readable for rows `i < R`.
unsafe fn step_f32<const R: usize>(
    acc: &mut Acc<R>,
    a: *const u32,
    lda: usize,
    p: usize,
    w: *const f32,
) {
    // SAFETY: w points at an aligned 32-float panel step; row i step p is inside the activations.
    unsafe {
        let w0 = _mm512_load_ps(w);
        let w1 = _mm512_load_ps(w.add(16));
        for (i, r) in acc.iter_mut().enumerate() {
            let x = _mm512_set1_ps(f32::from_bits(*a.add(i * lda + p)));
            r[0] = _mm512_fmadd_ps(x, w0, r[0]);
            r[1] = _mm512_fmadd_ps(x, w1, r[1]);
        }
    }
}

/// One k-step with f16 weights.
#[inline]
#[target_feature(enable = "avx512f,fma,f16c")]
///
/// # Safety
/// The CPU must have AVX-512F, FMA and F16C; `w` is a 32-byte aligned panel step of 32 halves and
/// `a.add(i·lda + p)` is readable for rows `i < R`.
unsafe fn step_f16<const R: usize>(
    acc: &mut Acc<R>,
    a: *const u32,
    lda: usize,
    p: usize,
    w: *const u16,
) {
    // SAFETY: w points at an aligned 32-half panel step; row i step p is inside the activations.
    unsafe {
        let w0 = _mm512_cvtph_ps(_mm256_load_si256(w.cast()));
        let w1 = _mm512_cvtph_ps(_mm256_load_si256(w.add(16).cast()));
        for (i, r) in acc.iter_mut().enumerate() {
            let x = _mm512_set1_ps(f32::from_bits(*a.add(i * lda + p)));
            r[0] = _mm512_fmadd_ps(x, w0, r[0]);
            r[1] = _mm512_fmadd_ps(x, w1, r[1]);
        }
    }
}

/// One pair step with bf16 weight pairs widened to f32 and widened bf16 activations (even index
/// first, like the oracle's k order).
#[inline]
#[target_feature(enable = "avx512f,fma")]
///
/// # Safety
/// The CPU must have AVX-512F and FMA; `w` is a 64-byte aligned panel step of 32 bf16 pairs and
/// `a.add(i·lda + 2p + 1)` is readable for rows `i < R`.
unsafe fn step_bf16w<const R: usize>(
    acc: &mut Acc<R>,
    a: *const u32,
    lda: usize,
    p: usize,
    w: *const u32,
) {
    // SAFETY: w points at an aligned 32-pair panel step; activations are widened rows of 2·steps.
    unsafe {
        let hi = _mm512_set1_epi32(0xFFFF_0000_u32 as i32);
        let v0 = _mm512_load_si512(w.cast());
        let v1 = _mm512_load_si512(w.add(16).cast());
        let e0 = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(v0));
        let e1 = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(v1));
        let o0 = _mm512_castsi512_ps(_mm512_and_si512(v0, hi));
        let o1 = _mm512_castsi512_ps(_mm512_and_si512(v1, hi));
        for (i, r) in acc.iter_mut().enumerate() {
            let row = a.add(i * lda + 2 * p);
            let xe = _mm512_set1_ps(f32::from_bits(*row));
            let xo = _mm512_set1_ps(f32::from_bits(*row.add(1)));
            r[0] = _mm512_fmadd_ps(xe, e0, r[0]);
            r[1] = _mm512_fmadd_ps(xe, e1, r[1]);
            r[0] = _mm512_fmadd_ps(xo, o0, r[0]);
            r[1] = _mm512_fmadd_ps(xo, o1, r[1]);
        }
    }
}

tile_fn!(f32_tile, f32_rows, step_f32, f32, NR);
tile_fn!(f16_tile, f16_rows, step_f16, u16, NR);
tile_fn!(bf16w_tile, bf16w_rows, step_bf16w, u32, NR);

/// Widens `count` f16 panel entries (a multiple of 16) to f32.
///
/// # Safety
/// `src` holds `count` halves, 32-byte aligned; `dst` has room for `count` f32, 64-byte aligned; the
/// CPU has the module's features.
#[target_feature(enable = "avx512f,f16c")]
unsafe fn widen_f16(src: *const u8, count: usize, dst: *mut f32) {
    let src = src.cast::<u16>();
    for c in (0..count).step_by(16) {
        // SAFETY: c + 16 <= count entries on both sides; alignment per the contract.
        unsafe {
            _mm512_store_ps(
                dst.add(c),
                _mm512_cvtph_ps(_mm256_load_si256(src.add(c).cast())),
            )
        };
    }
}
