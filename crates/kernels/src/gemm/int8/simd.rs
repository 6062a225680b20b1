//! Width-generic int8 ops: the activation range scan ([`min_max`]), the epilogue ([`epilogue`]) and
//! the row-major panel driver of the 16-column GEMM tiles ([`panel_gemm`]), written once against
//! [`SimdF32`] and the integer lanes of [`Int8Vec`], and instantiated at AVX2 (`__m256`) and AVX-512
//! (`__m512`) by [`level_entries!`] and [`gemm_entry!`].
//!
//! Like [`crate::simd`], every generic function here is `#[inline(always)]` and only reached from a
//! `#[target_feature]` function of its level, so each entry point compiles to the code a
//! hand-written kernel of that level would.

use std::arch::x86_64::*;

use super::driver::{Epi, EpiFn, Out, TILE_MAX, epilogue_generic};
use super::{Int8Weights, KG, NR};
use crate::simd::SimdF32;

/// The integer side of one level's vectors and the epilogue's column accesses.
///
/// The column methods take a lane mask: a level with [`Int8Vec::MASKED_TAIL`] honours it (AVX-512's
/// masked loads and stores cost the same as plain ones); the others are only called with every lane
/// enabled and use plain loads and stores.
///
/// # Safety
/// As [`SimdF32`]: implementations only use instructions of their level, every method needs a CPU
/// with the level, and pointer arguments must be valid for the lanes the method names (all of them
/// without `MASKED_TAIL`).
pub(super) unsafe trait Int8Vec: SimdF32 {
    /// `LANES` i32 lanes.
    type I: Copy;
    /// Column tails in masked vectors rather than by the portable epilogue.
    const MASKED_TAIL: bool;

    /// The f32 columns `m` enables from `p`, zero elsewhere.
    unsafe fn cols_f32(p: *const f32, m: Self::Mask) -> Self;
    /// The i32 columns `m` enables from `p`, zero elsewhere.
    unsafe fn cols_i32(p: *const i32, m: Self::Mask) -> Self::I;
    /// The lanes `m` enables to `p`.
    unsafe fn store_cols_f32(self, p: *mut f32, m: Self::Mask);
    /// The i32 lanes `m` enables to `p`.
    unsafe fn store_cols_i32(v: Self::I, p: *mut i32, m: Self::Mask);
    /// The lanes `m` enables (whole numbers in `0..=255`) as bytes to `p`.
    unsafe fn store_cols_u8(self, p: *mut u8, m: Self::Mask);
    /// `acc - corr` (wrapping), converted to f32.
    unsafe fn sub_to_f32(acc: Self::I, corr: Self::I) -> Self;
    /// `x` in every i32 lane.
    unsafe fn splat_i32(x: i32) -> Self::I;
    /// Lane-wise `a · b`, wrapping (the low 32 bits of the product).
    unsafe fn mullo_i32(a: Self::I, b: Self::I) -> Self::I;
    /// The smallest lane (`vminps` order).
    unsafe fn reduce_min(self) -> f32;
    /// The largest lane (`vmaxps` order).
    unsafe fn reduce_max(self) -> f32;
}

// SAFETY: every method uses AVX and AVX2 instructions only; the column methods (called with every
// lane enabled, see the trait) read and write all 8 lanes.
unsafe impl Int8Vec for __m256 {
    type I = __m256i;
    const MASKED_TAIL: bool = false;

    #[inline(always)]
    unsafe fn cols_f32(p: *const f32, _: __m256) -> __m256 {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn cols_i32(p: *const i32, _: __m256) -> __m256i {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_loadu_si256(p.cast()) }
    }
    #[inline(always)]
    unsafe fn store_cols_f32(self, p: *mut f32, _: __m256) {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_storeu_ps(p, self) }
    }
    #[inline(always)]
    unsafe fn store_cols_i32(v: __m256i, p: *mut i32, _: __m256) {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_storeu_si256(p.cast(), v) }
    }
    #[inline(always)]
    unsafe fn store_cols_u8(self, p: *mut u8, _: __m256) {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe {
            let i = _mm256_cvtps_epi32(self);
            let w = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256::<1>(i));
            _mm_storel_epi64(p.cast(), _mm_packus_epi16(w, w));
        }
    }
    #[inline(always)]
    unsafe fn sub_to_f32(acc: __m256i, corr: __m256i) -> __m256 {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_cvtepi32_ps(_mm256_sub_epi32(acc, corr)) }
    }
    #[inline(always)]
    unsafe fn splat_i32(x: i32) -> __m256i {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_set1_epi32(x) }
    }
    #[inline(always)]
    unsafe fn mullo_i32(a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_mullo_epi32(a, b) }
    }
    #[inline(always)]
    unsafe fn reduce_min(self) -> f32 {
        let mut l = [0f32; 8];
        // SAFETY: the caller runs on a CPU with this level; `l` has room for 8 f32.
        unsafe { _mm256_storeu_ps(l.as_mut_ptr(), self) };
        l.iter().fold(f32::INFINITY, |a, &b| a.min(b))
    }
    #[inline(always)]
    unsafe fn reduce_max(self) -> f32 {
        let mut h = [0f32; 8];
        // SAFETY: the caller runs on a CPU with this level; `h` has room for 8 f32.
        unsafe { _mm256_storeu_ps(h.as_mut_ptr(), self) };
        h.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b))
    }
}

// SAFETY: every method uses AVX-512 F/BW/VL/DQ instructions only; masked-off lanes are neither
// read nor written.
unsafe impl Int8Vec for __m512 {
    type I = __m512i;
    const MASKED_TAIL: bool = true;

    #[inline(always)]
    unsafe fn cols_f32(p: *const f32, m: __mmask16) -> __m512 {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_maskz_loadu_ps(m, p) }
    }
    #[inline(always)]
    unsafe fn cols_i32(p: *const i32, m: __mmask16) -> __m512i {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_maskz_loadu_epi32(m, p) }
    }
    #[inline(always)]
    unsafe fn store_cols_f32(self, p: *mut f32, m: __mmask16) {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_mask_storeu_ps(p, m, self) }
    }
    #[inline(always)]
    unsafe fn store_cols_i32(v: __m512i, p: *mut i32, m: __mmask16) {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_mask_storeu_epi32(p, m, v) }
    }
    #[inline(always)]
    unsafe fn store_cols_u8(self, p: *mut u8, m: __mmask16) {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_mask_cvtepi32_storeu_epi8(p.cast(), m, _mm512_cvtps_epi32(self)) }
    }
    #[inline(always)]
    unsafe fn sub_to_f32(acc: __m512i, corr: __m512i) -> __m512 {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, corr)) }
    }
    #[inline(always)]
    unsafe fn splat_i32(x: i32) -> __m512i {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_set1_epi32(x) }
    }
    #[inline(always)]
    unsafe fn mullo_i32(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_mullo_epi32(a, b) }
    }
    #[inline(always)]
    unsafe fn reduce_min(self) -> f32 {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_reduce_min_ps(self) }
    }
    #[inline(always)]
    unsafe fn reduce_max(self) -> f32 {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_reduce_max_ps(self) }
    }
}

/// `(min, max, all finite)`; see [`super::scalar::min_max`].
///
/// # Safety
/// The CPU has `V`'s level.
#[inline(always)]
pub(super) unsafe fn min_max<V: Int8Vec>(x: &[f32]) -> (f32, f32, bool) {
    let p = x.as_ptr();
    // SAFETY: the CPU has `V`'s level (forwarded); `range_scan` only asks for whole vectors inside
    // `x` and a tail whose enabled lanes are inside it.
    unsafe { range_scan::<V>(x.len(), |i, tail| load_lanes(p.add(i), tail)) }
}

/// `dst = x0 ⊙ u + x` (one fused multiply-add per element, as `interaction::cross_combine`) and
/// `(min, max, all finite)` of `dst`, in one pass: the cross net's element-wise step with the
/// range scan of the per-row dynamic layer it feeds. The range is exact (the same as [`min_max`]
/// of `dst`). Lengths: `u`, `x`, `dst` at least `x0.len()` (asserted).
///
/// # Safety
/// The CPU has `V`'s level.
#[inline(always)]
pub(crate) unsafe fn combine_min_max<V: Int8Vec>(
    x0: &[f32],
    u: &[f32],
    x: &[f32],
    dst: &mut [f32],
) -> (f32, f32, bool) {
    let n = x0.len();
    assert!(u.len() >= n && x.len() >= n && dst.len() >= n);
    let (a, b, c, d) = (x0.as_ptr(), u.as_ptr(), x.as_ptr(), dst.as_mut_ptr());
    // SAFETY: the CPU has `V`'s level (forwarded); `range_scan` only asks for whole vectors inside
    // the first `n` values and a tail whose enabled lanes are inside them, which every slice holds
    // (asserted above).
    unsafe {
        range_scan::<V>(n, |i, tail| {
            let (va, vb, vc) = (
                load_lanes::<V>(a.add(i), tail),
                load_lanes::<V>(b.add(i), tail),
                load_lanes::<V>(c.add(i), tail),
            );
            let v = va.mul_add(vb, vc);
            store_lanes(v, d.add(i), tail);
            v
        })
    }
}

/// A whole vector from `p` (`tail` = `None`), or the lanes `tail` enables (zero elsewhere).
///
/// # Safety
/// The CPU has `V`'s level; `p` is valid for the lanes read.
#[inline(always)]
unsafe fn load_lanes<V: SimdF32>(p: *const f32, tail: Option<V::Mask>) -> V {
    // SAFETY: forwarded from the caller.
    unsafe {
        match tail {
            None => V::load(p),
            Some(m) => V::load_masked(p, m),
        }
    }
}

/// `v` to `p`: every lane (`tail` = `None`), or the lanes `tail` enables.
///
/// # Safety
/// The CPU has `V`'s level; `p` is valid for the lanes written.
#[inline(always)]
unsafe fn store_lanes<V: SimdF32>(v: V, p: *mut f32, tail: Option<V::Mask>) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match tail {
            None => v.store(p),
            Some(m) => v.store_masked(p, m),
        }
    }
}

/// `(min, max, all finite)` of `n` values that `at(i, tail)` yields a vector at a time: whole
/// vectors from `i` when `tail` is `None`, else the lanes the mask enables (the last `n % LANES`).
/// Four independent accumulator sets, so the min/max/fma latency chains overlap. `(0, 0, true)` for
/// `n = 0`.
///
/// # Safety
/// The CPU has `V`'s level, and `at` is safe to call for every whole vector in `0..n` and the tail.
#[inline(always)]
unsafe fn range_scan<V: Int8Vec>(
    n: usize,
    mut at: impl FnMut(usize, Option<V::Mask>) -> V,
) -> (f32, f32, bool) {
    if n == 0 {
        return (0.0, 0.0, true);
    }
    let l = V::LANES;
    // SAFETY: the CPU has `V`'s level (forwarded); `at` is called for whole vectors below `n` and
    // one masked tail (its contract).
    unsafe {
        let mut lo = V::splat(f32::INFINITY);
        let mut hi = V::splat(f32::NEG_INFINITY);
        let mut nan = V::zero();
        let zero = V::zero();
        let (mut lo4, mut hi4, mut nan4) = ([lo; 4], [hi; 4], [nan; 4]);
        let mut i = 0;
        while i + 4 * l <= n {
            for t in 0..4 {
                let v = at(i + l * t, None);
                lo4[t] = lo4[t].min(v);
                hi4[t] = hi4[t].max(v);
                // inf·0 and NaN·0 are NaN; finite·0 is ±0, so `nan` stays finite iff every value is.
                nan4[t] = v.mul_add(zero, nan4[t]);
            }
            i += 4 * l;
        }
        for t in 0..4 {
            lo = lo.min(lo4[t]);
            hi = hi.max(hi4[t]);
            nan = nan.add(nan4[t]);
        }
        while i + l <= n {
            let v = at(i, None);
            lo = lo.min(v);
            hi = hi.max(v);
            nan = v.mul_add(zero, nan);
            i += l;
        }
        if i < n {
            let m = V::first(n - i);
            let v = at(i, Some(m));
            lo = V::select(m, lo, lo.min(v));
            hi = V::select(m, hi, hi.max(v));
            nan = v.mul_add(zero, nan);
        }
        let finite = !V::mask_any(V::mask_not(nan.eq(nan)));
        (lo.reduce_min(), hi.reduce_max(), finite)
    }
}

/// The epilogue's per-call vectors.
#[derive(Clone, Copy)]
struct Consts<V> {
    zero: V,
    inv: V,
    zp: V,
    lo: V,
    hi: V,
}

/// One tile of raw accumulators to dequantize or requantize (see [`EpiFn`]).
#[derive(Clone, Copy)]
struct TileIn<'t> {
    tile: &'t [i32],
    ldt: usize,
    rows: usize,
    row0: usize,
    col0: usize,
}

/// The epilogue on the columns `m` enables of `c..c + LANES` of the tile.
///
/// # Safety
/// The CPU has `V`'s level; the enabled lanes (all of them without [`Int8Vec::MASKED_TAIL`]) are
/// columns inside the per-column arrays, every tile row and every output row.
#[inline(always)]
unsafe fn columns<V: Int8Vec>(
    t: TileIn<'_>,
    c: usize,
    m: V::Mask,
    k: Consts<V>,
    epi: &Epi<'_>,
    out: &mut Out<'_>,
) {
    let at0 = t.col0 + c;
    // SAFETY: the caller's contract: the enabled lanes are inside every array read or written
    // (the per-row parameters hold every row of the call, see `RowQ`).
    unsafe {
        let bias = V::cols_f32(epi.bias.as_ptr().add(at0), m);
        // Per-tensor parameters once per column vector; per-row ones rebuilt per row from the
        // column sums and weight scales: `x_zp[r] · colsum[j]` (wrapping) and `x_scale[r] ·
        // w_scale[j]`, the products the portable epilogue forms.
        let (corr, mult, per_row) = match &epi.rows {
            None => (
                V::cols_i32(epi.corr.as_ptr().add(at0), m),
                V::cols_f32(epi.mult.as_ptr().add(at0), m),
                None,
            ),
            Some(q) => {
                let sums = V::cols_i32(q.col_sums.as_ptr().add(at0), m);
                let ws = V::cols_f32(q.w_scales.as_ptr().add(at0), m);
                (sums, ws, Some(q))
            }
        };
        for r in 0..t.rows {
            let acc = V::cols_i32(t.tile.as_ptr().add(r * t.ldt + c), m);
            let at = (t.row0 + r) * epi.n + at0;
            if let Out::I32(o) = out {
                V::store_cols_i32(acc, o.as_mut_ptr().add(at), m);
                continue;
            }
            let (corr, mult) = match per_row {
                None => (corr, mult),
                Some(q) => {
                    let i = t.row0 + r;
                    (
                        V::mullo_i32(V::splat_i32(*q.zp.get_unchecked(i)), corr),
                        V::splat(*q.scale.get_unchecked(i)).mul(mult),
                    )
                }
            };
            let v = V::sub_to_f32(acc, corr).mul(mult).add(bias);
            match out {
                Out::F32(o) => {
                    let v = if epi.relu { v.max(k.zero) } else { v };
                    v.store_cols_f32(o.as_mut_ptr().add(at), m);
                }
                Out::U8(o) => {
                    let q = v.mul(k.inv).round_even();
                    let q = q.add(k.zp).max(k.lo).min(k.hi);
                    q.store_cols_u8(o.as_mut_ptr().add(at), m);
                }
                Out::I32(_) => {}
            }
        }
    }
}

/// The epilogue (see [`EpiFn`]): whole vectors of columns, then the tail in one masked vector or by
/// the portable epilogue; per-row parameters (`Epi::rows`) are rebuilt per row in vectors.
///
/// # Safety
/// The CPU has `V`'s level. The tile, per-column arrays and output sizes are asserted.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn epilogue<V: Int8Vec>(
    tile: &[i32],
    ldt: usize,
    rows: usize,
    row0: usize,
    col0: usize,
    cols: usize,
    epi: &Epi<'_>,
    out: &mut Out<'_>,
) {
    let n = epi.n;
    assert!(rows == 0 || tile.len() >= (rows - 1) * ldt + cols);
    assert!(col0 + cols <= n && epi.bias.len() >= n);
    match &epi.rows {
        None => assert!(epi.corr.len() >= n && epi.mult.len() >= n),
        Some(q) => assert!(
            q.col_sums.len() >= n
                && q.w_scales.len() >= n
                && (rows == 0 || q.zp.len().min(q.scale.len()) >= row0 + rows)
        ),
    }
    let out_len = match out {
        Out::F32(o) => o.len(),
        Out::U8(o) => o.len(),
        Out::I32(o) => o.len(),
    };
    assert!(rows == 0 || (row0 + rows) * n <= out_len);
    let l = V::LANES;
    let full = cols / l * l;
    let t = TileIn {
        tile,
        ldt,
        rows,
        row0,
        col0,
    };
    // SAFETY: the CPU has `V`'s level (forwarded); columns col0 + c .. col0 + c + LANES (c < full),
    // and the tail's enabled lanes, are inside the per-column arrays, every tile row and every
    // output row (asserted above).
    unsafe {
        let zero = V::zero();
        let zp = V::splat(epi.out_zp as f32);
        let k = Consts {
            zero,
            inv: V::splat(epi.out_inv),
            zp,
            lo: if epi.relu { zp } else { zero },
            hi: V::splat(255.0),
        };
        let all = V::first(l);
        for c in (0..full).step_by(l) {
            columns::<V>(t, c, all, k, epi, out);
        }
        if full < cols && V::MASKED_TAIL {
            columns::<V>(t, full, V::first(cols - full), k, epi, out);
        }
    }
    if full < cols && !V::MASKED_TAIL {
        epilogue_generic(
            &tile[full..],
            ldt,
            rows,
            row0,
            col0 + full,
            cols - full,
            epi,
            out,
        );
    }
}

/// A register tile of the row-major GEMM: up to [`PanelTile::MR`] rows × one 16-column panel.
pub(super) trait PanelTile {
    /// Most rows per tile.
    const MR: usize;

    /// Rows `0..r` (`1 <= r <= MR`) × one panel: writes the raw accumulators to `out` (row stride
    /// 16).
    ///
    /// # Safety
    /// The CPU has the tile's features; rows `i < r` of `a` (stride `lda`) hold `groups·4` readable
    /// codes, `w` holds `groups` 64-byte groups, and `out` has room for `r` rows of 16 i32.
    unsafe fn tile(r: usize, a: *const u8, lda: usize, w: *const i8, groups: usize, out: *mut i32);
}

/// The packed GEMM over row-major activations: every panel, rows in tiles of up to `T::MR`, each
/// tile handed to `epi_fn`.
///
/// # Safety
/// The CPU has `T`'s features. The buffer sizes are asserted.
#[inline(always)]
pub(super) unsafe fn panel_gemm<T: PanelTile>(
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
    assert!(T::MR * NR <= TILE_MAX);
    for p in 0..w.n.div_ceil(NR) {
        let cols = NR.min(w.n - p * NR);
        // SAFETY: panel `p` lies inside `packed` (asserted above).
        let wp = unsafe { w.packed().as_ptr().add(p * pstride) };
        let mut i = 0;
        while i < m {
            let r = (m - i).min(T::MR);
            // SAFETY: rows i..i+r of `a` hold `kp` codes each (asserted above); `tile` holds MR×16;
            // the CPU has T's features (forwarded).
            unsafe {
                T::tile(
                    r,
                    a.as_ptr().add(i * lda),
                    lda,
                    wp,
                    groups,
                    tile.as_mut_ptr(),
                )
            };
            epi_fn(&tile, NR, r, i, p * NR, cols, epi, out);
            i += r;
        }
    }
}

/// Defines the row-major `gemm` ops-table entry ([`GemmFn`](super::driver::GemmFn)) running
/// [`panel_gemm`] with tile `$tile` in a function compiled with `$features`; `$why` says why the
/// CPU has them wherever the entry is installed.
macro_rules! gemm_entry {
    ($tile:ty, $features:literal, $why:literal) => {
        #[doc = concat!("Packed GEMM with `", stringify!($tile), "` tiles; see the module docs. ")]
        #[doc = concat!("Installed only where ", $why)]
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn gemm(
            a: &[u8],
            lda: usize,
            m: usize,
            h: usize,
            w: &super::Int8Weights,
            epi: &super::driver::Epi<'_>,
            epi_fn: super::driver::EpiFn,
            out: &mut super::driver::Out<'_>,
        ) {
            use super::driver::{Epi, EpiFn, Out};
            assert_eq!(h, 1, "this kernel reads row-major activations");
            /// # Safety
            /// The CPU has the tile's features; the buffer sizes are asserted.
            #[target_feature(enable = $features)]
            unsafe fn at_level(
                a: &[u8],
                lda: usize,
                m: usize,
                w: &super::Int8Weights,
                epi: &Epi<'_>,
                epi_fn: EpiFn,
                out: &mut Out<'_>,
            ) {
                // SAFETY: forwarded contract; this function is compiled for the level.
                unsafe { super::simd::panel_gemm::<$tile>(a, lda, m, w, epi, epi_fn, out) }
            }
            // SAFETY: installed only where the CPU has the features (see the doc above).
            unsafe { at_level(a, lda, m, w, epi, epi_fn, out) }
        }
    };
}
pub(super) use gemm_entry;

/// Defines the `min_max` and `epilogue` ops-table entries of one level: [`min_max`] and
/// [`epilogue`] at vector `$v` in functions compiled with `$features`. The entries may only be
/// installed in ops tables for that level, which the registry refuses unless the CPU has it.
macro_rules! level_entries {
    ($v:ty, $features:literal) => {
        /// `(min, max, all finite)`; see [`super::scalar::min_max`].
        pub(crate) fn min_max(x: &[f32]) -> (f32, f32, bool) {
            /// # Safety
            /// The CPU has the level's features.
            #[target_feature(enable = $features)]
            unsafe fn at_level(x: &[f32]) -> (f32, f32, bool) {
                // SAFETY: this function is compiled for (and only run at) the level.
                unsafe { $crate::gemm::int8::simd::min_max::<$v>(x) }
            }
            // SAFETY: only installed for kernels whose ISA the CPU has.
            unsafe { at_level(x) }
        }

        /// The epilogue at this level; see [`super::driver::EpiFn`].
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn epilogue(
            tile: &[i32],
            ldt: usize,
            rows: usize,
            row0: usize,
            col0: usize,
            cols: usize,
            epi: &$crate::gemm::int8::driver::Epi<'_>,
            out: &mut $crate::gemm::int8::driver::Out<'_>,
        ) {
            use $crate::gemm::int8::driver::{Epi, Out};
            /// # Safety
            /// The CPU has the level's features; sizes are asserted.
            #[target_feature(enable = $features)]
            #[allow(clippy::too_many_arguments)]
            unsafe fn at_level(
                tile: &[i32],
                ldt: usize,
                rows: usize,
                row0: usize,
                col0: usize,
                cols: usize,
                epi: &Epi<'_>,
                out: &mut Out<'_>,
            ) {
                // SAFETY: this function is compiled for (and only run at) the level.
                unsafe {
                    $crate::gemm::int8::simd::epilogue::<$v>(
                        tile, ldt, rows, row0, col0, cols, epi, out,
                    )
                }
            }
            // SAFETY: only installed for kernels whose ISA the CPU has.
            unsafe { at_level(tile, ldt, rows, row0, col0, cols, epi, out) }
        }
    };
}
pub(super) use level_entries;
