//! The width-generic dense micro-kernel: `R` rows × two vectors of columns (16 columns with AVX2,
//! 32 with AVX-512), in two accumulator sets (even / odd k-steps, merged at the end of the k block),
//! written once against [`SimdF32`] and a per-precision [`Step`], and instantiated per level by
//! [`tile_entry!`] and [`dense_level!`]. Column tails use masked loads and stores. Every tile height
//! sums a row in the same order, so a row's result does not depend on the batch it is in.
//!
//! Like [`crate::simd`], every generic function here is `#[inline(always)]` and only reached from a
//! `#[target_feature]` function of its level, so each entry point compiles to the code a
//! hand-written kernel of that level would.

use super::Tile;
use crate::simd::SimdF32;

/// The accumulators of a tile: two vectors of columns for each of `R` rows.
pub(super) type Acc<V, const R: usize> = [[V; 2]; R];

/// Lane masks of the two halves of a tile with `nv` valid columns.
///
/// # Safety
/// The CPU has `V`'s level.
#[inline(always)]
pub(super) unsafe fn masks<V: SimdF32>(nv: usize) -> (V::Mask, V::Mask) {
    // SAFETY: the CPU has `V`'s level (forwarded); both counts are at most `LANES`.
    unsafe {
        (
            V::first(nv.min(V::LANES)),
            V::first(nv.saturating_sub(V::LANES).min(V::LANES)),
        )
    }
}

/// Where a step's activations are: row `i`'s at `a + i·lda`, at step `p`.
#[derive(Clone, Copy)]
pub(super) struct Rows {
    /// The tile's first activation row.
    pub(super) a: *const u32,
    /// Distance between activation rows.
    pub(super) lda: usize,
    /// The step.
    pub(super) p: usize,
}

/// One k-step (or k-pair) of a tile for one weight precision: reads a panel step of `2·LANES`
/// elements of [`Step::W`] and multiplies it into the accumulators.
pub(super) trait Step<V: SimdF32> {
    /// The panel's element type (one k-step of a panel is `2·LANES` of them).
    type W;

    /// Adds step `x.p` of rows `0..R` times the panel step at `w` into `acc`.
    ///
    /// # Safety
    /// The CPU has `V`'s level and the step's own features; `w` is an aligned panel step and the
    /// activations the step reads (`x.a.add(i·lda + p)`, or `2p` and `2p + 1` for widened bf16)
    /// are readable for rows `i < R`.
    unsafe fn step<const R: usize>(acc: &mut Acc<V, R>, x: Rows, w: *const Self::W);
}

/// f32 weights.
pub(super) struct F32W;
/// f16 weights, widened by `vcvtph2ps`.
pub(super) struct F16W;
/// bf16 weight pairs widened by shifts, times widened bf16 activations (even index first, like the
/// oracle's k order).
pub(super) struct Bf16Widened;

/// `acc[i] += x_i · (w0, w1)` with `x_i` the f32 activation of row `i` at step `x.p`.
///
/// # Safety
/// The CPU has `V`'s level; `x.a.add(i·lda + p)` is readable for rows `i < R`.
#[inline(always)]
unsafe fn fma_rows<V: SimdF32, const R: usize>(acc: &mut Acc<V, R>, x: Rows, w0: V, w1: V) {
    // SAFETY: row i step p is inside the activations (the caller's contract).
    unsafe {
        for (i, r) in acc.iter_mut().enumerate() {
            let xv = V::splat(f32::from_bits(*x.a.add(i * x.lda + x.p)));
            r[0] = xv.mul_add(w0, r[0]);
            r[1] = xv.mul_add(w1, r[1]);
        }
    }
}

impl<V: SimdF32> Step<V> for F32W {
    type W = f32;
    #[inline(always)]
    unsafe fn step<const R: usize>(acc: &mut Acc<V, R>, x: Rows, w: *const f32) {
        // SAFETY: w points at a panel step of 2·LANES floats (the trait contract).
        unsafe { fma_rows(acc, x, V::load(w), V::load(w.add(V::LANES))) }
    }
}

impl<V: SimdF32> Step<V> for F16W {
    type W = u16;
    #[inline(always)]
    unsafe fn step<const R: usize>(acc: &mut Acc<V, R>, x: Rows, w: *const u16) {
        // SAFETY: w points at a panel step of 2·LANES halves (the trait contract).
        unsafe {
            let w1 = V::load_f16(w.add(V::LANES).cast());
            fma_rows(acc, x, V::load_f16(w.cast()), w1)
        }
    }
}

impl<V: SimdF32> Step<V> for Bf16Widened {
    type W = u32;
    #[inline(always)]
    unsafe fn step<const R: usize>(acc: &mut Acc<V, R>, x: Rows, w: *const u32) {
        // SAFETY: w points at a panel step of 2·LANES bf16 pairs; activations are widened rows of
        // 2·steps (the trait contract).
        unsafe {
            let (e0, o0) = V::load_bf16_pairs(w);
            let (e1, o1) = V::load_bf16_pairs(w.add(V::LANES));
            for (i, r) in acc.iter_mut().enumerate() {
                let row = x.a.add(i * x.lda + 2 * x.p);
                let xe = V::splat(f32::from_bits(*row));
                let xo = V::splat(f32::from_bits(*row.add(1)));
                r[0] = xe.mul_add(e0, r[0]);
                r[1] = xe.mul_add(e1, r[1]);
                r[0] = xo.mul_add(o0, r[0]);
                r[1] = xo.mul_add(o1, r[1]);
            }
        }
    }
}

/// Starting accumulators: the bias broadcast to every row, or the partial sums already in `c`.
///
/// # Safety
/// The CPU has `V`'s level; the tile's bias (when not null) or its `R` output rows hold the `nv`
/// columns the masks `m` enable.
#[inline(always)]
unsafe fn init<V: SimdF32, const R: usize>(t: &Tile, m: (V::Mask, V::Mask)) -> Acc<V, R> {
    // SAFETY: masked loads touch only the nv valid columns of the bias or of rows 0..R of `c`
    // (caller's contract); wrapping_add keeps the address arithmetic defined for masked-out halves.
    unsafe {
        let mut acc = [[V::zero(); 2]; R];
        if !t.bias.is_null() {
            let b0 = V::load_masked(t.bias, m.0);
            let b1 = V::load_masked(t.bias.wrapping_add(V::LANES), m.1);
            for r in acc.iter_mut() {
                *r = [b0, b1];
            }
        } else {
            for (i, r) in acc.iter_mut().enumerate() {
                let c = t.c.wrapping_add(i * t.ldc);
                *r = [
                    V::load_masked(c, m.0),
                    V::load_masked(c.wrapping_add(V::LANES), m.1),
                ];
            }
        }
        acc
    }
}

/// Stores the tile (ReLU first when asked).
///
/// # Safety
/// The CPU has `V`'s level; the tile's `R` output rows can be written in the `nv` columns the masks
/// `m` enable.
#[inline(always)]
unsafe fn store<V: SimdF32, const R: usize>(t: &Tile, acc: &Acc<V, R>, m: (V::Mask, V::Mask)) {
    // SAFETY: masked stores write only the nv valid columns of row i < R of the tile.
    unsafe {
        let zero = V::zero();
        for (i, r) in acc.iter().enumerate() {
            let (mut v0, mut v1) = (r[0], r[1]);
            if t.relu {
                v0 = v0.max(zero);
                v1 = v1.max(zero);
            }
            let c = t.c.wrapping_add(i * t.ldc);
            v0.store_masked(c, m.0);
            v1.store_masked(c.wrapping_add(V::LANES), m.1);
        }
    }
}

/// One tile of `R` rows: the whole k block of `t` with step `S`, even and odd steps in separate
/// accumulator sets.
///
/// # Safety
/// The [`TileFn`](super::TileFn) contract for `R` rows; the CPU has `V`'s level and `S`'s features.
#[inline(always)]
pub(super) unsafe fn rows<V: SimdF32, S: Step<V>, const R: usize>(t: &Tile) {
    let wstep = 2 * V::LANES;
    // SAFETY: the caller guarantees the tile's pointers cover R rows, kc steps and nv columns, and
    // the CPU's features.
    unsafe {
        let m = masks::<V>(t.nv);
        let mut acc = init::<V, R>(t, m);
        let (a, lda) = (t.a, t.lda);
        let mut w = t.w.cast::<S::W>();
        let mut p = 0;
        {
            let mut acc2 = [[V::zero(); 2]; R];
            while p + 2 <= t.kc {
                S::step(&mut acc, Rows { a, lda, p }, w);
                S::step(&mut acc2, Rows { a, lda, p: p + 1 }, w.add(wstep));
                w = w.add(2 * wstep);
                p += 2;
            }
            for (a, o) in acc.iter_mut().zip(&acc2) {
                a[0] = a[0].add(o[0]);
                a[1] = a[1].add(o[1]);
            }
        }
        while p < t.kc {
            S::step(&mut acc, Rows { a, lda, p }, w);
            w = w.add(wstep);
            p += 1;
        }
        store(t, &acc, m);
    }
}

/// Widens `count` f16 panel entries (a multiple of `LANES`) to f32.
///
/// # Safety
/// The CPU has `V`'s level; `src` holds `count` halves and `dst` has room for `count` f32.
#[inline(always)]
pub(super) unsafe fn widen_f16<V: SimdF32>(src: *const u8, count: usize, dst: *mut f32) {
    for c in (0..count).step_by(V::LANES) {
        // SAFETY: c + LANES <= count entries on both sides (the caller's contract).
        unsafe { V::load_f16(src.add(2 * c)).store(dst.add(c)) };
    }
}

/// Defines `pub(super) unsafe fn $name(t: &Tile, mr: usize)`, a [`TileFn`](super::TileFn) running
/// [`rows`] with vector `$v` and step `$step` for the tile heights listed, each height in its own
/// function compiled with `$features`.
macro_rules! tile_entry {
    ($name:ident, $v:ty, $step:ty, $features:literal, [$($r:literal),+ $(,)?]) => {
        #[doc = concat!("Tile routine (`", stringify!($step), "` steps on `", stringify!($v), "`).")]
        ///
        /// # Safety
        #[doc = concat!("The [`TileFn`](super::TileFn) contract; the CPU has ", $features, ".")]
        pub(super) unsafe fn $name(t: &super::Tile, mr: usize) {
            /// # Safety
            /// The tile routine's contract for `R` rows.
            #[target_feature(enable = $features)]
            unsafe fn at_level<const R: usize>(t: &super::Tile) {
                // SAFETY: forwarded contract; this function is compiled for the level.
                unsafe { super::tile::rows::<$v, $step, R>(t) }
            }
            // SAFETY: forwarded contract; mr is checked against the kernel height.
            unsafe {
                match mr {
                    $($r => at_level::<$r>(t),)+
                    _ => unreachable!("tile height {mr} exceeds the kernel"),
                }
            }
        }
    };
}
pub(super) use tile_entry;

/// Defines the f32, f16 and widened-bf16 kernels of one level and its `install`: vector `$v`,
/// target features `$features`, `MR` (the largest of the tile heights listed), `NR` (two vectors)
/// and the bf16 activation rounding `$act`.
macro_rules! dense_level {
    ($v:ty, $features:literal, [$($r:literal),+ $(,)?], $act:path) => {
        /// Rows per tile.
        pub(super) const MR: usize = [$($r),+].len();
        /// Columns per tile (two vectors).
        pub(super) const NR: usize = 2 * $crate::simd::lanes::<$v>();
        /// k-steps per cache block (see the driver's docs).
        const KC: usize = 1024;

        super::tile::tile_entry!(f32_tile, $v, super::tile::F32W, $features, [$($r),+]);
        super::tile::tile_entry!(f16_tile, $v, super::tile::F16W, $features, [$($r),+]);
        super::tile::tile_entry!(bf16w_tile, $v, super::tile::Bf16Widened, $features, [$($r),+]);

        /// Widens `count` f16 panel entries (a multiple of the vector's lanes) to f32.
        ///
        /// # Safety
        /// `src` holds `count` halves; `dst` has room for `count` f32; the CPU has the level's
        /// features.
        #[target_feature(enable = $features)]
        unsafe fn widen_f16(src: *const u8, count: usize, dst: *mut f32) {
            // SAFETY: forwarded contract; this function is compiled for the level.
            unsafe { super::tile::widen_f16::<$v>(src, count, dst) }
        }

        /// Installs this level's kernels.
        pub(super) fn install(ops: &mut super::DenseOps) {
            use super::{ActFeed, Kernel, act::Bf16Layout};
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
            ops.bf16 = Some(k(bf16w_tile, ActFeed::Bf16(Bf16Layout::Widened, $act)));
        }
    };
}
pub(super) use dense_level;
