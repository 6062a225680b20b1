//! AVX2 int8 ops. The GEMM widens both operands to i16 and multiplies with `vpmaddwd` (pairs of
//! u8·s8 products summed into i32), so it is exact for every code, including activations up to 255
//! with weights of −128; `vpmaddubsw` is avoided because its i16 pair sums saturate.

use std::arch::x86_64::*;

use super::driver::{Epi, EpiFn, Out, TILE_MAX, epilogue_generic};
use super::scalar::row_param;
use super::{Int8Weights, KG, NR};

/// `(min, max, all finite)`; see [`super::scalar::min_max`].
pub(crate) fn min_max(x: &[f32]) -> (f32, f32, bool) {
    // SAFETY: this table entry is only installed for kernels whose ISA the CPU has (AVX2).
    unsafe { min_max_avx2(x) }
}

#[target_feature(enable = "avx2,fma")]
/// # Safety
/// The CPU must have AVX2 and FMA (the function is compiled for them); any slice.
unsafe fn min_max_avx2(x: &[f32]) -> (f32, f32, bool) {
    if x.is_empty() {
        return (0.0, 0.0, true);
    }
    let mut lo = _mm256_set1_ps(f32::INFINITY);
    let mut hi = _mm256_set1_ps(f32::NEG_INFINITY);
    let mut nan = _mm256_setzero_ps();
    let zero = _mm256_setzero_ps();
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        // SAFETY: `c` holds exactly 8 f32.
        let v = unsafe { _mm256_loadu_ps(c.as_ptr()) };
        lo = _mm256_min_ps(lo, v);
        hi = _mm256_max_ps(hi, v);
        // inf·0 and NaN·0 are NaN; finite·0 is ±0, so `nan` stays finite iff every value is.
        nan = _mm256_fmadd_ps(v, zero, nan);
    }
    let mut l = [0f32; 8];
    let mut h = [0f32; 8];
    let mut s = [0f32; 8];
    // SAFETY: each array has room for 8 f32.
    unsafe {
        _mm256_storeu_ps(l.as_mut_ptr(), lo);
        _mm256_storeu_ps(h.as_mut_ptr(), hi);
        _mm256_storeu_ps(s.as_mut_ptr(), nan);
    }
    let mut lo = l.iter().fold(f32::INFINITY, |a, &b| a.min(b));
    let mut hi = h.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut finite = s.iter().all(|v| !v.is_nan());
    for &v in rest {
        finite &= v.is_finite();
        lo = lo.min(v);
        hi = hi.max(v);
    }
    (lo, hi, finite)
}

/// Quantizes rows; see [`super::scalar::quantize_rows`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn quantize_rows(
    x: &[f32],
    m: usize,
    k: usize,
    kp: usize,
    h: usize,
    inv: &[f32],
    zp: &[i32],
    out: &mut [u8],
) {
    if h != 1 {
        return super::scalar::quantize_rows(x, m, k, kp, h, inv, zp, out);
    }
    // SAFETY: only installed for kernels whose ISA the CPU has (AVX2).
    unsafe { quantize_rows_avx2(x, m, k, kp, inv, zp, out) }
}

#[target_feature(enable = "avx2,fma")]
/// # Safety
/// The CPU must have AVX2 and FMA (the function is compiled for them); `x` holds `m·k` values,
/// `out` at least `m·kp` bytes (`kp >= k`), and `inv_rows`/`zp_rows` one value or `m`.
unsafe fn quantize_rows_avx2(
    x: &[f32],
    m: usize,
    k: usize,
    kp: usize,
    inv_rows: &[f32],
    zp_rows: &[i32],
    out: &mut [u8],
) {
    let v0 = _mm256_setzero_ps();
    let v255 = _mm256_set1_ps(255.0);
    let perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for i in 0..m {
        let (inv, zp) = (row_param(inv_rows, i), row_param(zp_rows, i));
        let vinv = _mm256_set1_ps(inv);
        let vzp = _mm256_set1_ps(zp as f32);
        let q = |p: *const f32| {
            // SAFETY: callers pass pointers to 8 readable f32.
            let v = unsafe { _mm256_loadu_ps(p) };
            let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm256_mul_ps(v, vinv),
            );
            _mm256_cvtps_epi32(_mm256_min_ps(
                _mm256_max_ps(_mm256_add_ps(r, vzp), v0),
                v255,
            ))
        };
        {
            let src = &x[i * k..(i + 1) * k];
            let dst = &mut out[i * kp..(i + 1) * kp];
            let mut p = 0;
            while p + 32 <= k {
                let s = src[p..].as_ptr();
                // SAFETY: `p + 32 <= k`, so 32 f32 are readable from `s` and 32 bytes writable at `dst[p..]`.
                unsafe {
                    let a = _mm256_packs_epi32(q(s), q(s.add(8)));
                    let b = _mm256_packs_epi32(q(s.add(16)), q(s.add(24)));
                    let c = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(a, b), perm);
                    _mm256_storeu_si256(dst[p..].as_mut_ptr().cast(), c);
                }
                p += 32;
            }
            for j in p..k {
                dst[j] = super::scalar::quantize_u8(src[j], inv, zp);
            }
            dst[k..].fill(0);
        }
    }
}

/// AVX2 epilogue (the generic one, auto-vectorized for AVX2).
#[allow(clippy::too_many_arguments)]
pub(crate) fn epilogue(
    tile: &[i32],
    ldt: usize,
    rows: usize,
    row0: usize,
    col0: usize,
    cols: usize,
    epi: &Epi<'_>,
    out: &mut Out<'_>,
) {
    // SAFETY: only installed for kernels whose ISA the CPU has (AVX2).
    unsafe { epilogue_avx2(tile, ldt, rows, row0, col0, cols, epi, out) }
}

#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
/// # Safety
/// The CPU must have AVX2 and FMA (the function is compiled for them). The tile, per-column arrays
/// and output sizes are asserted.
unsafe fn epilogue_avx2(
    tile: &[i32],
    ldt: usize,
    rows: usize,
    row0: usize,
    col0: usize,
    cols: usize,
    epi: &Epi<'_>,
    out: &mut Out<'_>,
) {
    if epi.rows.is_some() {
        // Per-row parameters: the portable epilogue, vectorized for this module's features.
        return epilogue_generic(tile, ldt, rows, row0, col0, cols, epi, out);
    }
    let n = epi.n;
    let full = cols / 8 * 8;
    assert!(rows == 0 || tile.len() >= (rows - 1) * ldt + cols);
    assert!(col0 + cols <= n && epi.corr.len() >= n && epi.mult.len() >= n && epi.bias.len() >= n);
    let out_len = match out {
        Out::F32(o) => o.len(),
        Out::U8(o) => o.len(),
        Out::I32(o) => o.len(),
    };
    assert!(rows == 0 || (row0 + rows) * n <= out_len);
    let zero = _mm256_setzero_ps();
    let inv = _mm256_set1_ps(epi.out_inv);
    let zp = _mm256_set1_ps(epi.out_zp as f32);
    let lo = if epi.relu { zp } else { zero };
    let hi = _mm256_set1_ps(255.0);
    for c in (0..full).step_by(8) {
        // SAFETY: columns col0 + c .. col0 + c + 8 are inside the per-column arrays, every tile row
        // and every output row (asserted above).
        unsafe {
            let corr = _mm256_loadu_si256(epi.corr.as_ptr().add(col0 + c).cast());
            let mult = _mm256_loadu_ps(epi.mult.as_ptr().add(col0 + c));
            let bias = _mm256_loadu_ps(epi.bias.as_ptr().add(col0 + c));
            for r in 0..rows {
                let acc = _mm256_loadu_si256(tile.as_ptr().add(r * ldt + c).cast());
                let at = (row0 + r) * n + col0 + c;
                let v = _mm256_add_ps(
                    _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc, corr)), mult),
                    bias,
                );
                match out {
                    Out::F32(o) => {
                        let v = if epi.relu { _mm256_max_ps(v, zero) } else { v };
                        _mm256_storeu_ps(o.as_mut_ptr().add(at), v);
                    }
                    Out::U8(o) => {
                        let q = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                            _mm256_mul_ps(v, inv),
                        );
                        let q = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(q, zp), lo), hi);
                        let i = _mm256_cvtps_epi32(q);
                        let w = _mm_packs_epi32(
                            _mm256_castsi256_si128(i),
                            _mm256_extracti128_si256::<1>(i),
                        );
                        let b = _mm_packus_epi16(w, w);
                        _mm_storel_epi64(o.as_mut_ptr().add(at).cast(), b);
                    }
                    Out::I32(o) => _mm256_storeu_si256(o.as_mut_ptr().add(at).cast(), acc),
                }
            }
        }
    }
    if full < cols {
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

/// Packed GEMM with i16-widened products; tiles of up to 2 rows × 16 columns.
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
    assert_eq!(h, 1, "this kernel reads row-major activations");
    // SAFETY: only installed for kernels whose ISA the CPU has (AVX2).
    unsafe { gemm_avx2(a, lda, m, w, epi, epi_fn, out) }
}

#[target_feature(enable = "avx2,fma")]
/// # Safety
/// The CPU must have AVX2 and FMA (the function is compiled for them). The buffer sizes are
/// asserted.
unsafe fn gemm_avx2(
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
    for p in 0..w.n.div_ceil(NR) {
        let cols = NR.min(w.n - p * NR);
        // SAFETY: panel `p` lies inside `packed` (asserted above).
        let wp = unsafe { w.packed().as_ptr().add(p * pstride) };
        let mut i = 0;
        while i < m {
            let r = (m - i).min(2);
            // SAFETY: rows i..i+r of `a` hold `kp` codes each (asserted above); `tile` holds 2×16.
            unsafe {
                let ap = a.as_ptr().add(i * lda);
                if r == 2 {
                    tile_i16::<2>(ap, lda, wp, groups, tile.as_mut_ptr());
                } else {
                    tile_i16::<1>(ap, lda, wp, groups, tile.as_mut_ptr());
                }
            }
            epi_fn(&tile, NR, r, i, p * NR, cols, epi, out);
            i += r;
        }
    }
}

/// `MR` rows × one 16-column panel. Accumulator `acc[r][q]` holds columns `4q..4q+4` as pairs of
/// partial sums (k ≡ 0,1 and k ≡ 2,3 mod 4), folded by `vphaddd` at the end.
#[target_feature(enable = "avx2,fma")]
#[inline]
///
/// # Safety
/// The CPU must have AVX2 and FMA (the function is compiled for them); rows `r < MR` of `a` (stride
/// `lda`) hold `groups·4` readable codes, `w` holds `groups` 64-byte groups, and `out` has room for
/// `MR` rows of 16 i32.
unsafe fn tile_i16<const MR: usize>(
    a: *const u8,
    lda: usize,
    w: *const i8,
    groups: usize,
    out: *mut i32,
) {
    let mut acc = [[_mm256_setzero_si256(); 4]; MR];
    for g in 0..groups {
        let mut av = [_mm256_setzero_si256(); MR];
        for (r, v) in av.iter_mut().enumerate() {
            // SAFETY: the caller guarantees row r has `groups * 4` readable codes.
            let four = unsafe { (a.add(r * lda + g * KG) as *const i32).read_unaligned() };
            let wide = _mm_cvtepu8_epi16(_mm_cvtsi32_si128(four));
            *v = _mm256_broadcastq_epi64(wide);
        }
        for q in 0..4 {
            // SAFETY: group g of the panel has 64 readable bytes.
            let wq = unsafe {
                _mm256_cvtepi8_epi16(_mm_loadu_si128(w.add(g * NR * KG + q * 16).cast()))
            };
            for (ar, &a) in acc.iter_mut().zip(&av) {
                ar[q] = _mm256_add_epi32(ar[q], _mm256_madd_epi16(wq, a));
            }
        }
    }
    for (r, ar) in acc.iter().enumerate() {
        let lo = _mm256_permute4x64_epi64::<0xD8>(_mm256_hadd_epi32(ar[0], ar[1]));
        let hi = _mm256_permute4x64_epi64::<0xD8>(_mm256_hadd_epi32(ar[2], ar[3]));
        // SAFETY: the caller's tile has room for MR rows of 16 i32.
        unsafe {
            _mm256_storeu_si256(out.add(r * NR).cast(), lo);
            _mm256_storeu_si256(out.add(r * NR + 8).cast(), hi);
        }
    }
}
