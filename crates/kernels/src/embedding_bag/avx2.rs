//! AVX2 embedding bags: 8 columns per register, up to 8 registers (64 columns) accumulated across a
//! whole bag before one store; wider rows are pooled 64 columns at a time. A row tail (fewer than 8
//! columns) is copied into a zeroed stack buffer first, so nothing past the row is ever read.
//! 4-bit and 2-bit codes are unpacked by broadcasting a dword and shifting each lane by its own count.

use std::arch::x86_64::*;

use super::plan::{Idx, Job};
use super::simd_shared::*;

/// Columns pooled per pass over a bag.
const BLOCK: usize = 64;

super::simd_shared::range_kernels!("AVX2");

#[target_feature(enable = "avx2,fma,f16c")]
/// # Safety
/// The CPU must have AVX2, FMA and F16C (the function is compiled for them); `job` is validated and
/// stored in format `F`, `ids` is its id array, `lo <= hi <= num_bags`, and no other thread writes
/// the output columns of these bags.
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
        return match dim.div_ceil(8) {
            0 => Ok(()),
            // SAFETY: the caller's contract.
            n => by_regs!(n, R => unsafe { bags::<F, I, R>(job, ids, lo, hi) }),
        };
    }
    let mut start = job.bag_start(lo);
    for b in lo..hi {
        let end = job.bag_end(b, start);
        // SAFETY: validated output: bag b's row starts at b · out_stride and holds `dim` floats.
        let out = unsafe { job.out.add(b * job.out_stride) };
        let mut c0 = 0;
        while c0 < dim {
            let n = (dim - c0).min(BLOCK);
            let pf = if c0 == 0 { job.prefetch } else { 0 };
            // SAFETY: the caller's contract; `c0 + n <= dim`.
            let ok = by_regs!(n.div_ceil(8), R => unsafe {
                block::<F, I, R>(job, ids, start, end, c0, n, out, pf)
            });
            if !ok {
                return Err(b);
            }
            c0 += n;
        }
        start = end;
    }
    Ok(())
}

/// Bags `lo..hi` of a job whose rows fit one block of `R` registers (`dim <= BLOCK`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
///
/// # Safety
/// As [`range`], and the job's `dim` needs exactly `R` registers (`8·(R-1) < dim <= 8·R`).
unsafe fn bags<const F: u8, I: Idx, const R: usize>(
    job: &Job<'_>,
    ids: &[I],
    lo: usize,
    hi: usize,
) -> Result<(), usize> {
    let mut start = job.bag_start(lo);
    for b in lo..hi {
        let end = job.bag_end(b, start);
        // SAFETY: validated output: bag b's row starts at b · out_stride and holds `dim` floats;
        // the block covers columns 0..dim, which the caller's contract makes readable in every row.
        let ok = unsafe {
            let out = job.out.add(b * job.out_stride);
            block::<F, I, R>(job, ids, start, end, 0, job.dim, out, job.prefetch)
        };
        if !ok {
            return Err(b);
        }
        start = end;
    }
    Ok(())
}

/// Pools columns `c0..c0 + n` (`8·(R-1) < n <= 8·R`) of the bag `start..end` into `out`;
/// false when an id is bad. Prefetches the row `pf` ids ahead when `pf > 0`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
///
/// # Safety
/// As [`range`] for the bag `start..end` (a bag of the job); columns `c0..c0 + n` lie inside the
/// row, `8·(R-1) < n <= 8·R`, and `out` is that bag's output row; the caller is compiled with AVX2,
/// FMA and F16C.
unsafe fn block<const F: u8, I: Idx, const R: usize>(
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
        let tail = n - 8 * (R - 1);
        let base = job.table.as_ptr();
        let rb = job.row_bytes;
        let mut acc = [_mm256_setzero_ps(); R];
        for i in start..end {
            if pf > 0
                && let Some(id) = ids.get(i + pf)
                && let Some(r) = job.prefetch_row(id.wide())
            {
                prefetch_row(base.wrapping_add(r * rb), rb);
            }
            let r = match job.resolve(ids[i].wide()) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(()) => return false,
            };
            // r < rows and the table holds rows · rb bytes.
            let row = base.add(r * rb);
            let w = job.weight(i);
            if F >= FUSED8 {
                // The scale and bias lie inside the row.
                let (s, bi) = scale_bias::<F>(row.add(job.code_bytes));
                let sv = _mm256_set1_ps(s * w);
                let bv = _mm256_set1_ps(bi * w);
                for (k, a) in acc.iter_mut().enumerate() {
                    let m = if k + 1 == R { tail } else { 8 };
                    // Columns c0 + 8k .. + m lie inside the row.
                    let q = decode::<F>(row, c0 + 8 * k, m);
                    *a = _mm256_fmadd_ps(sv, q, _mm256_add_ps(*a, bv));
                }
            } else {
                let wv = _mm256_set1_ps(w);
                for (k, a) in acc.iter_mut().enumerate() {
                    let m = if k + 1 == R { tail } else { 8 };
                    // Columns c0 + 8k .. + m lie inside the row.
                    let v = decode::<F>(row, c0 + 8 * k, m);
                    *a = _mm256_fmadd_ps(wv, v, *a);
                }
            }
        }
        if job.mean && end > start {
            let inv = _mm256_set1_ps(1.0 / (end - start) as f32);
            for a in acc.iter_mut() {
                *a = _mm256_mul_ps(*a, inv);
            }
        }
        for (k, a) in acc.iter().enumerate() {
            let m = if k + 1 == R { tail } else { 8 };
            // Columns c0 + 8k .. + m of this bag's output row are inside the validated output;
            // a masked store writes only the first m lanes.
            {
                let p = out.add(c0 + 8 * k);
                if m == 8 {
                    _mm256_storeu_ps(p, *a);
                } else {
                    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                    let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(m as i32), lanes);
                    _mm256_maskstore_ps(p, mask, *a);
                }
            }
        }
        true
    }
}

/// Byte offset of column `col` (a multiple of 8) in a row of format `F`.
#[inline(always)]
fn byte_offset<const F: u8>(col: usize) -> usize {
    match F {
        F32 => 4 * col,
        F16 | BF16 => 2 * col,
        FUSED8 | FUSED8H => col,
        FUSED4 => col / 2,
        _ => col / 4,
    }
}

/// Bytes holding `n` columns of format `F`.
#[inline(always)]
fn bytes_for<const F: u8>(n: usize) -> usize {
    match F {
        F32 => 4 * n,
        F16 | BF16 => 2 * n,
        FUSED8 | FUSED8H => n,
        FUSED4 => n.div_ceil(2),
        _ => n.div_ceil(4),
    }
}

/// Decodes columns `col..col + n` (`1 <= n <= 8`, `col` a multiple of 8) of a row to f32 lanes
/// (fused formats: the raw codes), reading only the bytes of those columns.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C (the function is compiled for them); the bytes of columns
/// `col..col + n` (`1 <= n <= 8`) of a row of format `F` are readable at `row`.
unsafe fn decode<const F: u8>(row: *const u8, col: usize, n: usize) -> __m256 {
    // SAFETY: the caller guarantees the bytes of columns col..col + n are inside the row.
    let p = unsafe { row.add(byte_offset::<F>(col)) };
    if n == 8 {
        // SAFETY: eight whole columns are readable at p.
        unsafe { decode8::<F>(p) }
    } else {
        let mut buf = [0u8; 32];
        // SAFETY: bytes_for(n) <= 32 bytes of those columns are readable at p; buf is large enough.
        unsafe {
            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), bytes_for::<F>(n));
            decode8::<F>(buf.as_ptr())
        }
    }
}

/// Decodes eight whole columns at `p`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C (the function is compiled for them); the bytes of eight
/// whole columns of format `F` are readable at `p`.
unsafe fn decode8<const F: u8>(p: *const u8) -> __m256 {
    // SAFETY: in all arms, the caller guarantees bytes_for(8) readable bytes at p, and each arm reads
    // exactly that many.
    unsafe {
        match F {
            F32 => _mm256_loadu_ps(p.cast()),
            F16 => _mm256_cvtph_ps(_mm_loadu_si128(p.cast())),
            BF16 => {
                let h = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast()));
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(h))
            }
            FUSED8 | FUSED8H => _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast()))),
            FUSED4 => {
                let v = _mm256_set1_epi32(p.cast::<i32>().read_unaligned());
                let sh = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
                let q = _mm256_and_si256(_mm256_srlv_epi32(v, sh), _mm256_set1_epi32(0xf));
                _mm256_cvtepi32_ps(q)
            }
            _ => {
                let v = _mm256_set1_epi32(i32::from(p.cast::<u16>().read_unaligned()));
                let sh = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
                let q = _mm256_and_si256(_mm256_srlv_epi32(v, sh), _mm256_set1_epi32(3));
                _mm256_cvtepi32_ps(q)
            }
        }
    }
}
