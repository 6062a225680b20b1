//! AVX-512 embedding bags: 16 columns per register, up to 8 registers (128 columns) accumulated across
//! a whole bag before one store; wider rows are pooled 128 columns at a time. Row tails use masked
//! loads and stores (fault-free past the end of the table). 4-bit codes are widened 16 bytes at a time
//! (`vpmovzxbd`) and split by mask and shift into even and odd columns, accumulated in register pairs
//! that are interleaved back once per bag; a lone 16-column tail and 2-bit codes use a dword
//! permute/broadcast and per-lane variable shifts; f16 goes through `vcvtph2ps`, bf16 a 16-bit shift.
//!
//! Without a remap, each bag's ids are checked against the table once (a vectorized maximum) and
//! the row loop then has no per-id test; rows are prefetched [`Job::prefetch`] ids ahead, and fused
//! rows spanning several lines also get their first line touched [`Job::prefetch_far`] ids ahead.

use std::arch::x86_64::*;

use super::plan::{Idx, Job, ids_below};
use super::simd_shared::*;

/// Columns pooled per pass over a bag.
const BLOCK: usize = 128;

super::simd_shared::range_kernels!("AVX-512");

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/DQ, FMA and F16C (the function is compiled for them); `job` is
/// validated and stored in format `F`, `ids` is its id array, `lo <= hi <= num_bags`, and no other
/// thread writes the output columns of these bags; without `C` the job has no remap.
unsafe fn range<const F: u8, I: Idx>(
    job: &Job<'_>,
    ids: &[I],
    lo: usize,
    hi: usize,
) -> Result<(), usize> {
    let dim = job.dim;
    if dim <= BLOCK {
        // One pass per bag: pick the register count once for the whole range.
        // SAFETY: the caller's contract.
        return unsafe {
            if job.remap.is_none() {
                bags_for::<F, I, false>(job, ids, lo, hi)
            } else {
                bags_for::<F, I, true>(job, ids, lo, hi)
            }
        };
    }
    let mut start = job.bag_start(lo);
    for b in lo..hi {
        let end = job.bag_end(b, start);
        // SAFETY: validated output: bag b's row starts at b · out_stride and holds `dim` floats.
        let out = unsafe { job.out.add(b * job.out_stride) };
        // Without a remap, the bag's ids are checked once here and the blocks read rows unchecked.
        if job.remap.is_none() && !ids_below(&ids[start..end], job.rows) {
            return Err(b);
        }
        let mut c0 = 0;
        while c0 < dim {
            let n = (dim - c0).min(BLOCK);
            let pf = if c0 == 0 { job.prefetch } else { 0 };
            // SAFETY: the caller's contract; `c0 + n <= dim`; without a remap the ids of this bag
            // were just checked to be below `rows`.
            let ok = unsafe {
                if job.remap.is_none() {
                    wide_block::<F, I, false>(job, ids, start, end, c0, n, out, pf)
                } else {
                    wide_block::<F, I, true>(job, ids, start, end, c0, n, out, pf)
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

/// Columns `c0..c0 + n` (`n <= BLOCK`) of one bag of a wide table, weighted when the job has
/// weights; `C` as in [`block`].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
///
/// # Safety
/// As [`block`] (columns `c0..c0 + n`, `n <= 128`, of the bag `start..end`).
unsafe fn wide_block<const F: u8, I: Idx, const C: bool>(
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
    by_regs!(n.div_ceil(16), R => unsafe {
        block::<F, I, true, R, C>(job, ids, start, end, c0, n, out, pf)
    })
}

/// Bags `lo..hi` of a job with `dim <= BLOCK`: picks the register count and weighting once.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
///
/// # Safety
/// As [`range`]; the job's `dim` is at most [`BLOCK`].
unsafe fn bags_for<const F: u8, I: Idx, const C: bool>(
    job: &Job<'_>,
    ids: &[I],
    lo: usize,
    hi: usize,
) -> Result<(), usize> {
    match (job.weights.is_some(), job.dim.div_ceil(16)) {
        (_, 0) => Ok(()),
        // SAFETY: the caller's contract.
        (true, n) => by_regs!(n, R => unsafe { bags::<F, I, true, R, C>(job, ids, lo, hi) }),
        // SAFETY: the caller's contract.
        (false, n) => by_regs!(n, R => unsafe { bags::<F, I, false, R, C>(job, ids, lo, hi) }),
    }
}

/// Bags `lo..hi` of a job whose rows fit one block of `R` registers (`dim <= BLOCK`). Unless `C`
/// (a job without a remap), each bag's ids are checked against the table with one vectorized scan
/// before its rows are read unchecked.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
///
/// # Safety
/// As [`range`]; the job's `dim` needs exactly `R` registers (`16·(R-1) < dim <= 16·R`), and `W`
/// only when the job has weights.
unsafe fn bags<const F: u8, I: Idx, const W: bool, const R: usize, const C: bool>(
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
            block::<F, I, W, R, C>(job, ids, start, end, 0, job.dim, out, job.prefetch)
        };
        if !ok {
            return Err(b);
        }
        start = end;
    }
    Ok(())
}

/// Pools columns `c0..c0 + n` (`16·(R-1) < n <= 16·R`) of the bag `start..end` into `out`, with
/// per-sample weights when `W` (and the job has them);
/// false when an id is bad. Prefetches the row `pf` ids ahead when `pf > 0`.
///
/// With `C`, every id is resolved (remap, bounds) before its row is read. Without it the job must
/// have no remap and the caller must have checked that the ids `start..end` are below `rows`: rows
/// are then read without a per-id test, and the prefetch targets `ids[i + pf]` (clamped to the id
/// array) whatever its value, since a prefetch never faults.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
///
/// # Safety
/// As [`range`] for the bag `start..end`: columns `c0..c0 + n` lie inside the row, `16·(R-1) < n <=
/// 16·R`, `out` is the bag's output row; without `C`, the job has no remap and the ids `start..end`
/// were checked to be below `rows`; the caller is compiled with this module's features.
unsafe fn block<const F: u8, I: Idx, const W: bool, const R: usize, const C: bool>(
    job: &Job<'_>,
    ids: &[I],
    start: usize,
    end: usize,
    c0: usize,
    n: usize,
    out: *mut f32,
    pf: usize,
) -> bool {
    // SAFETY: `block` is only inlined into callers compiled with this module's CPU features,
    // which their callers guarantee; memory safety rests on the validated job (ids are checked
    // before a row is read, the table and output sizes were checked) as noted below.
    unsafe {
        let tail = n - 16 * (R - 1);
        let base = job.table.as_ptr();
        let rb = job.row_bytes;
        let mut acc = [_mm512_setzero_ps(); R];
        // 4-bit rows are decoded 32 columns at a time into (even, odd) register pairs.
        let pairs = if F == FUSED4 { R / 2 } else { 0 };
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
                        _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(f.wrapping_mul(rb)).cast());
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
                let sv = _mm512_set1_ps(s * w);
                let bv = _mm512_set1_ps(bi * w);
                for p in 0..pairs {
                    // 32 columns from 16 bytes: even columns in register 2p, odd ones in 2p + 1.
                    let m = if 2 * p + 2 == R { 16 + tail } else { 32 };
                    // The bytes of columns c0 + 32p .. + m lie inside the row.
                    let src = row.add((c0 + 32 * p) / 2);
                    let b = if m == 32 {
                        _mm_loadu_si128(src.cast())
                    } else {
                        _mm_maskz_loadu_epi8(lane_mask(m.div_ceil(2)), src.cast())
                    };
                    let d = _mm512_cvtepu8_epi32(b);
                    let even = _mm512_cvtepi32_ps(_mm512_and_si512(d, _mm512_set1_epi32(0xf)));
                    let odd = _mm512_cvtepi32_ps(_mm512_srli_epi32::<4>(d));
                    acc[2 * p] = _mm512_fmadd_ps(sv, even, _mm512_add_ps(acc[2 * p], bv));
                    acc[2 * p + 1] = _mm512_fmadd_ps(sv, odd, _mm512_add_ps(acc[2 * p + 1], bv));
                }
                for (k, a) in acc.iter_mut().enumerate().skip(2 * pairs) {
                    let m = if k + 1 == R { tail } else { 16 };
                    // Columns c0 + 16k .. + m lie inside the row.
                    let q = decode::<F>(row, c0 + 16 * k, m);
                    *a = _mm512_fmadd_ps(sv, q, _mm512_add_ps(*a, bv));
                }
            } else {
                let wv = _mm512_set1_ps(w);
                for (k, a) in acc.iter_mut().enumerate() {
                    let m = if k + 1 == R { tail } else { 16 };
                    // Columns c0 + 16k .. + m lie inside the row.
                    let v = decode::<F>(row, c0 + 16 * k, m);
                    *a = _mm512_fmadd_ps(wv, v, *a);
                }
            }
        }
        if pairs > 0 {
            // Back to column order: interleave the even and odd columns of each pair.
            let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            let hi =
                _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            for p in 0..pairs {
                let (even, odd) = (acc[2 * p], acc[2 * p + 1]);
                acc[2 * p] = _mm512_permutex2var_ps(even, lo, odd);
                acc[2 * p + 1] = _mm512_permutex2var_ps(even, hi, odd);
            }
        }
        if job.mean && end > start {
            let inv = _mm512_set1_ps(1.0 / (end - start) as f32);
            for a in acc.iter_mut() {
                *a = _mm512_mul_ps(*a, inv);
            }
        }
        for (k, a) in acc.iter().enumerate() {
            let m = if k + 1 == R { tail } else { 16 };
            // Columns c0 + 16k .. + m of this bag's output row are inside the validated output.
            _mm512_mask_storeu_ps(out.add(c0 + 16 * k), lane_mask(m), *a);
        }
        true
    }
}

/// Mask of the low `n` lanes (`n <= 16`).
#[inline(always)]
fn lane_mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as u16
}

/// Decodes columns `col..col + n` (`1 <= n <= 16`, `col` a multiple of 16) of a row to f32 lanes
/// (fused formats: the raw codes), reading only the bytes of those columns.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/DQ, FMA and F16C (the function is compiled for them); the
/// bytes of columns `col..col + n` (`1 <= n <= 16`) of a row of format `F` are inside the row at
/// `row` (masked-off bytes are never touched).
unsafe fn decode<const F: u8>(row: *const u8, col: usize, n: usize) -> __m512 {
    let m = lane_mask(n);
    // SAFETY: in all arms, the masked loads touch only the bytes of columns col..col + n, which the
    // caller guarantees are inside the row; masked-off bytes are neither read nor faulted on.
    unsafe {
        match F {
            // Whole registers take plain loads (foldable into the widening instruction); only a
            // row tail needs the mask.
            F32 if n == 16 => _mm512_loadu_ps(row.add(4 * col).cast()),
            F32 => _mm512_maskz_loadu_ps(m, row.add(4 * col).cast()),
            F16 | BF16 => {
                let p = row.add(2 * col);
                let h = if n == 16 {
                    _mm256_loadu_si256(p.cast())
                } else {
                    _mm256_maskz_loadu_epi16(m, p.cast())
                };
                if F == F16 {
                    _mm512_cvtph_ps(h)
                } else {
                    _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
                }
            }
            FUSED8 | FUSED8H => {
                let p = row.add(col);
                let b = if n == 16 {
                    _mm_loadu_si128(p.cast())
                } else {
                    _mm_maskz_loadu_epi8(m, p.cast())
                };
                _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b))
            }
            FUSED4 => {
                let b = _mm_maskz_loadu_epi8(lane_mask(n.div_ceil(2)), row.add(col / 2).cast());
                let idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
                let sh =
                    _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
                let v = _mm512_permutexvar_epi32(idx, _mm512_castsi128_si512(b));
                let q = _mm512_and_si512(_mm512_srlv_epi32(v, sh), _mm512_set1_epi32(0xf));
                _mm512_cvtepi32_ps(q)
            }
            _ => {
                let p = row.add(col / 4);
                let v = if n == 16 {
                    // Four whole bytes: a plain broadcast load.
                    _mm512_set1_epi32(p.cast::<i32>().read_unaligned())
                } else {
                    _mm512_broadcastd_epi32(_mm_maskz_loadu_epi8(
                        lane_mask(n.div_ceil(4)),
                        p.cast(),
                    ))
                };
                let sh =
                    _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                let q = _mm512_and_si512(_mm512_srlv_epi32(v, sh), _mm512_set1_epi32(3));
                _mm512_cvtepi32_ps(q)
            }
        }
    }
}
