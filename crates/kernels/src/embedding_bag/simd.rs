//! The width-generic embedding-bag body: up to 8 registers of `LANES` columns (64 at AVX2, 128 at
//! AVX-512) accumulated across a whole bag before one store; wider rows are pooled `8 · LANES`
//! columns at a time. Written once against [`BagVec`] (a level's row decoding on top of
//! [`SimdF32`]) and instantiated per level by `range_kernels!` in `avx2.rs` and `avx512.rs`.
//!
//! Like [`crate::simd`], every function here is `#[inline(always)]` and only reached from the
//! `#[target_feature]` `range` function of its level, so each instantiation compiles to the code a
//! hand-written kernel of that level would.

use super::plan::{Idx, Job, ids_below};
use super::simd_shared::*;
use crate::simd::SimdF32;

/// What one level adds to [`SimdF32`] for pooling: decoding a row's columns and its pooling
/// strategy.
///
/// # Safety
/// As [`SimdF32`]: implementations only use instructions of their level, every method needs a CPU
/// with the level, and pointer arguments must be valid for the bytes the method names.
pub(super) unsafe trait BagVec: SimdF32 {
    /// Bags are specialized per job: without a remap each bag's ids are checked once (a vectorized
    /// maximum) and its rows read without a per-id test (with the first line of multi-line fused
    /// rows touched [`Job::prefetch_far`] ids ahead), and unweighted jobs fold the weight away.
    /// Without it every id is resolved before its row is read and the weight is always read.
    const SPECIALIZED: bool;
    /// 4-bit rows are decoded `2 · LANES` columns at a time into (even, odd) register pairs
    /// ([`BagVec::nibble_pair`]), interleaved back once per bag ([`BagVec::interleave`]).
    const NIBBLE_PAIRS: bool;

    /// Columns `col..col + n` (`1 <= n <= LANES`, `col` a multiple of `LANES`) of a row of format
    /// `F` as f32 lanes (fused formats: the raw codes), reading only the bytes of those columns.
    ///
    /// # Safety
    /// The CPU has the level; the bytes of those columns are readable at `row`.
    unsafe fn decode<const F: u8>(row: *const u8, col: usize, n: usize) -> Self;
    /// The `m` 4-bit codes (`LANES < m <= 2 · LANES`) at `p`: the even columns, then the odd ones.
    /// Only called with [`BagVec::NIBBLE_PAIRS`].
    ///
    /// # Safety
    /// The CPU has the level; the `m.div_ceil(2)` bytes at `p` are readable.
    unsafe fn nibble_pair(p: *const u8, m: usize) -> (Self, Self);
    /// The even and odd columns of a pair back in column order (the low columns, then the high
    /// ones). Only called with [`BagVec::NIBBLE_PAIRS`].
    ///
    /// # Safety
    /// The CPU has the level.
    unsafe fn interleave(even: Self, odd: Self) -> (Self, Self);
    /// The first `n` lanes (`1 <= n <= LANES`) to `p`; the others are not written.
    ///
    /// # Safety
    /// The CPU has the level; `n` floats are writable at `p`.
    unsafe fn store_first(self, p: *mut f32, n: usize);
}

/// Pools bags `lo..hi` of `job`, stored in format `F`, with `V`'s registers.
///
/// # Safety
/// The CPU has `V`'s level; `job` is validated and stored in format `F`, `ids` is its id array,
/// `lo <= hi <= num_bags`, and no other thread writes the output columns of these bags.
#[inline(always)]
pub(super) unsafe fn range<V: BagVec, const F: u8, I: Idx>(
    job: &Job<'_>,
    ids: &[I],
    lo: usize,
    hi: usize,
) -> Result<(), usize> {
    let dim = job.dim;
    let block = 8 * V::LANES;
    // Without a remap (and with a specialized level), ids are checked per bag, not per row.
    let unchecked = V::SPECIALIZED && job.remap.is_none();
    if dim <= block {
        // One pass per bag: pick the register count once for the whole range.
        // SAFETY: the caller's contract; without `C` the job has no remap.
        return unsafe {
            if unchecked {
                bags_for::<V, F, I, false>(job, ids, lo, hi)
            } else {
                bags_for::<V, F, I, true>(job, ids, lo, hi)
            }
        };
    }
    let mut start = job.bag_start(lo);
    for b in lo..hi {
        let end = job.bag_end(b, start);
        // SAFETY: validated output: bag b's row starts at b · out_stride and holds `dim` floats.
        let out = unsafe { job.out.add(b * job.out_stride) };
        // Unchecked, the bag's ids are checked once here and the blocks read rows unchecked.
        if unchecked && !ids_below(&ids[start..end], job.rows) {
            return Err(b);
        }
        let mut c0 = 0;
        while c0 < dim {
            let n = (dim - c0).min(block);
            let pf = if c0 == 0 { job.prefetch } else { 0 };
            // SAFETY: the caller's contract; `c0 + n <= dim`; unchecked, the job has no remap and
            // the ids of this bag were just checked to be below `rows`.
            let ok = unsafe {
                if unchecked {
                    wide_block::<V, F, I, false>(job, ids, start, end, c0, n, out, pf)
                } else {
                    wide_block::<V, F, I, true>(job, ids, start, end, c0, n, out, pf)
                }
            };
            if !ok {
                return Err(b);
            }
            c0 += n;
        }
        start = end;
    }
    Ok(())
}

/// Columns `c0..c0 + n` (`n <= 8 · LANES`) of one bag of a wide table, weighted when the job has
/// weights; `C` as in [`block`].
///
/// # Safety
/// As [`block`] (columns `c0..c0 + n`, `n <= 8 · LANES`, of the bag `start..end`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn wide_block<V: BagVec, const F: u8, I: Idx, const C: bool>(
    job: &Job<'_>,
    ids: &[I],
    start: usize,
    end: usize,
    c0: usize,
    n: usize,
    out: *mut f32,
    pf: usize,
) -> bool {
    // SAFETY: the caller's contract (see `block`).
    by_regs!(n.div_ceil(V::LANES), R => unsafe {
        block::<V, F, I, true, R, C>(job, ids, start, end, c0, n, out, pf)
    })
}

/// Bags `lo..hi` of a job with `dim <= 8 · LANES`: picks the register count and (specialized) the
/// weighting once.
///
/// # Safety
/// As [`range`]; the job's `dim` is at most `8 · LANES`; without `C` the level is specialized and
/// the job has no remap.
#[inline(always)]
unsafe fn bags_for<V: BagVec, const F: u8, I: Idx, const C: bool>(
    job: &Job<'_>,
    ids: &[I],
    lo: usize,
    hi: usize,
) -> Result<(), usize> {
    let weighted = !V::SPECIALIZED || job.weights.is_some();
    match (weighted, job.dim.div_ceil(V::LANES)) {
        (_, 0) => Ok(()),
        // SAFETY: the caller's contract.
        (true, n) => by_regs!(n, R => unsafe { bags::<V, F, I, true, R, C>(job, ids, lo, hi) }),
        // SAFETY: the caller's contract.
        (false, n) => by_regs!(n, R => unsafe { bags::<V, F, I, false, R, C>(job, ids, lo, hi) }),
    }
}

/// Bags `lo..hi` of a job whose rows fit one block of `R` registers (`dim <= 8 · LANES`). Unless
/// `C` (a job without a remap), each bag's ids are checked against the table with one vectorized
/// scan before its rows are read unchecked.
///
/// # Safety
/// As [`range`]; the job's `dim` needs exactly `R` registers (`LANES·(R-1) < dim <= LANES·R`), `W`
/// is false only when the job has no weights, and without `C` the job has no remap.
#[inline(always)]
unsafe fn bags<V: BagVec, const F: u8, I: Idx, const W: bool, const R: usize, const C: bool>(
    job: &Job<'_>,
    ids: &[I],
    lo: usize,
    hi: usize,
) -> Result<(), usize> {
    let mut start = job.bag_start(lo);
    for b in lo..hi {
        let end = job.bag_end(b, start);
        if !C && !ids_below(&ids[start..end], job.rows) {
            return Err(b);
        }
        // SAFETY: validated output: bag b's row starts at b · out_stride and holds `dim` floats;
        // the block covers columns 0..dim, which the caller's contract makes readable in every row;
        // unless `C`, the ids of this bag were just checked to be below `rows`.
        let ok = unsafe {
            let out = job.out.add(b * job.out_stride);
            block::<V, F, I, W, R, C>(job, ids, start, end, 0, job.dim, out, job.prefetch)
        };
        if !ok {
            return Err(b);
        }
        start = end;
    }
    Ok(())
}

/// Pools columns `c0..c0 + n` (`LANES·(R-1) < n <= LANES·R`) of the bag `start..end` into `out`,
/// with per-sample weights when `W` (and the job has them); false when an id is bad. Prefetches the
/// row `pf` ids ahead when `pf > 0`.
///
/// With `C`, every id is resolved (remap, bounds) before its row is read. Without it the job must
/// have no remap and the caller must have checked that the ids `start..end` are below `rows`: rows
/// are then read without a per-id test, and the prefetch targets `ids[i + pf]` (clamped to the id
/// array) whatever its value, since a prefetch never faults.
///
/// # Safety
/// As [`range`] for the bag `start..end`: columns `c0..c0 + n` lie inside the row, `LANES·(R-1) <
/// n <= LANES·R`, `out` is the bag's output row; `W` is false only when the job has no weights;
/// without `C`, the job has no remap and the ids `start..end` were checked to be below `rows`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn block<V: BagVec, const F: u8, I: Idx, const W: bool, const R: usize, const C: bool>(
    job: &Job<'_>,
    ids: &[I],
    start: usize,
    end: usize,
    c0: usize,
    n: usize,
    out: *mut f32,
    pf: usize,
) -> bool {
    let l = V::LANES;
    // SAFETY: the CPU has `V`'s level (the caller's contract); memory safety rests on the validated
    // job (ids are checked before a row is read, the table and output sizes were checked) as noted
    // below.
    unsafe {
        let tail = n - l * (R - 1);
        let base = job.table.as_ptr();
        let rb = job.row_bytes;
        let mut acc = [V::zero(); R];
        // 4-bit rows are decoded 2 · LANES columns at a time into (even, odd) register pairs.
        let pairs = if V::NIBBLE_PAIRS && F == FUSED4 {
            R / 2
        } else {
            0
        };
        let last = ids.len().saturating_sub(1);
        let far = job.prefetch_far;
        for i in start..end {
            let r = if C {
                if pf > 0
                    && let Some(id) = ids.get(i + pf)
                    && let Some(r) = job.prefetch_row(id.wide())
                {
                    prefetch_row(base.wrapping_add(r * rb), rb);
                }
                match job.resolve(ids[i].wide()) {
                    Ok(Some(r)) => r,
                    Ok(None) => continue,
                    Err(()) => return false,
                }
            } else {
                if pf > 0 {
                    // `(i + pf).min(last)` is inside the id array (`i < end <= len`); the
                    // address may be anything, a prefetch neither faults nor reads.
                    let ahead = ids.get_unchecked((i + pf).min(last)).wide() as usize;
                    prefetch_row(base.wrapping_add(ahead.wrapping_mul(rb)), rb);
                    if far > 0 {
                        // As above: the first line only, which also walks the page tables.
                        let f = ids.get_unchecked((i + far).min(last)).wide() as usize;
                        prefetch_line(base.wrapping_add(f.wrapping_mul(rb)));
                    }
                }
                // `i < end <= len`, and the caller checked `ids[i] < rows`.
                ids.get_unchecked(i).wide() as usize
            };
            // r < rows and the table holds rows · rb bytes.
            let row = base.add(r * rb);
            // Unweighted (`W = false`): the constant 1 folds the scale/bias products away.
            let w = if W { job.weight(i) } else { 1.0 };
            if F >= FUSED8 {
                // The scale and bias lie inside the row.
                let (s, bi) = scale_bias::<F>(row.add(job.code_bytes));
                let sv = V::splat(s * w);
                let bv = V::splat(bi * w);
                for p in 0..pairs {
                    // 2 · LANES columns: even columns in register 2p, odd ones in 2p + 1.
                    let m = if 2 * p + 2 == R { l + tail } else { 2 * l };
                    // The bytes of columns c0 + 2 · LANES · p .. + m lie inside the row.
                    let (even, odd) = V::nibble_pair(row.add((c0 + 2 * l * p) / 2), m);
                    acc[2 * p] = sv.mul_add(even, acc[2 * p].add(bv));
                    acc[2 * p + 1] = sv.mul_add(odd, acc[2 * p + 1].add(bv));
                }
                // The registers after the pairs (all of them without pairs), one at a time. An index
                // loop: `skip` on the register iterator kept the loop from being unrolled (AVX2
                // 4-bit rows at d = 64 measured 10-20% slower).
                #[allow(clippy::needless_range_loop)]
                for k in 2 * pairs..R {
                    let m = if k + 1 == R { tail } else { l };
                    // Columns c0 + LANES · k .. + m lie inside the row.
                    let q = V::decode::<F>(row, c0 + l * k, m);
                    acc[k] = sv.mul_add(q, acc[k].add(bv));
                }
            } else {
                let wv = V::splat(w);
                for (k, a) in acc.iter_mut().enumerate() {
                    let m = if k + 1 == R { tail } else { l };
                    // Columns c0 + LANES · k .. + m lie inside the row.
                    let v = V::decode::<F>(row, c0 + l * k, m);
                    *a = wv.mul_add(v, *a);
                }
            }
        }
        for p in 0..pairs {
            // Back to column order: interleave the even and odd columns of each pair.
            (acc[2 * p], acc[2 * p + 1]) = V::interleave(acc[2 * p], acc[2 * p + 1]);
        }
        if job.mean && end > start {
            let inv = V::splat(1.0 / (end - start) as f32);
            for a in acc.iter_mut() {
                *a = a.mul(inv);
            }
        }
        for (k, a) in acc.iter().enumerate() {
            let m = if k + 1 == R { tail } else { l };
            // Columns c0 + LANES · k .. + m of this bag's output row are inside the validated
            // output; only the first m lanes are written.
            a.store_first(out.add(c0 + l * k), m);
        }
        true
    }
}
