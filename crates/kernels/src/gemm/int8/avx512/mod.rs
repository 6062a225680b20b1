//! AVX-512 int8 ops: activation min/max and quantization, and the epilogue; the GEMM is in [`vnni`].

pub(crate) mod vnni;

use std::arch::x86_64::*;

use super::driver::{Epi, Out, epilogue_generic};

/// `(min, max, all finite)`; see [`super::scalar::min_max`].
pub(crate) fn min_max(x: &[f32]) -> (f32, f32, bool) {
    // SAFETY: only installed for kernels whose ISA the CPU has (AVX-512 F/BW/VL/DQ).
    unsafe { min_max_avx512(x) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/DQ (the function is compiled for them); any slice.
unsafe fn min_max_avx512(x: &[f32]) -> (f32, f32, bool) {
    if x.is_empty() {
        return (0.0, 0.0, true);
    }
    let mut lo = _mm512_set1_ps(f32::INFINITY);
    let mut hi = _mm512_set1_ps(f32::NEG_INFINITY);
    let mut nan = _mm512_setzero_ps();
    let zero = _mm512_setzero_ps();
    // Four independent accumulator sets, so the min/max/fma latency chains overlap.
    let mut quads = x.chunks_exact(64);
    let (mut lo4, mut hi4, mut nan4) = ([lo; 4], [hi; 4], [nan; 4]);
    for q in quads.by_ref() {
        for t in 0..4 {
            // SAFETY: `q` holds exactly 64 f32, so lanes 16t..16t+16 are readable.
            let v = unsafe { _mm512_loadu_ps(q.as_ptr().add(16 * t)) };
            lo4[t] = _mm512_min_ps(lo4[t], v);
            hi4[t] = _mm512_max_ps(hi4[t], v);
            // inf·0 and NaN·0 are NaN; finite·0 is ±0, so `nan` stays finite iff every value is.
            nan4[t] = _mm512_fmadd_ps(v, zero, nan4[t]);
        }
    }
    for t in 0..4 {
        lo = _mm512_min_ps(lo, lo4[t]);
        hi = _mm512_max_ps(hi, hi4[t]);
        nan = _mm512_add_ps(nan, nan4[t]);
    }
    let chunks = quads.remainder().chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        // SAFETY: `c` holds exactly 16 f32.
        let v = unsafe { _mm512_loadu_ps(c.as_ptr()) };
        lo = _mm512_min_ps(lo, v);
        hi = _mm512_max_ps(hi, v);
        nan = _mm512_fmadd_ps(v, zero, nan);
    }
    if !rest.is_empty() {
        let mask: __mmask16 = (1u32 << rest.len()).wrapping_sub(1) as __mmask16;
        // SAFETY: the mask only enables the `rest.len()` readable lanes.
        let v = unsafe { _mm512_maskz_loadu_ps(mask, rest.as_ptr()) };
        lo = _mm512_mask_min_ps(lo, mask, lo, v);
        hi = _mm512_mask_max_ps(hi, mask, hi, v);
        nan = _mm512_fmadd_ps(v, zero, nan);
    }
    let finite = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(nan, nan) == 0;
    (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi), finite)
}

/// Quantizes rows into the blocked layout; see [`super::scalar::quantize_rows`].
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
    // SAFETY: only installed for kernels whose ISA the CPU has (AVX-512 F/BW/VL/DQ).
    unsafe { quantize_rows_avx512(x, m, k, kp, h, inv, zp, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
#[allow(clippy::too_many_arguments)]
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/DQ (the function is compiled for them). The buffer sizes are
/// asserted.
unsafe fn quantize_rows_avx512(
    x: &[f32],
    m: usize,
    k: usize,
    kp: usize,
    h: usize,
    inv: &[f32],
    zp: &[i32],
    out: &mut [u8],
) {
    use super::KG;
    use super::scalar::row_param;
    let v0 = _mm512_setzero_ps();
    let v255 = _mm512_set1_ps(255.0);
    assert!(h >= 1 && x.len() >= m * k && out.len() >= m * kp && kp >= k && kp.is_multiple_of(KG));
    for i in 0..m {
        let vinv = _mm512_set1_ps(row_param(inv, i));
        let vzp = _mm512_set1_ps(row_param(zp, i) as f32);
        let b = i / h;
        let rb = h.min(m - b * h);
        // Group g of row i is at `base + g·gstride` (see `scalar::a_offset`).
        let base = b * h * kp + (i % h) * KG;
        let gstride = rb * KG;
        let mut p = 0;
        while p < kp {
            let lanes = (kp - p).min(16);
            let valid = k.saturating_sub(p).min(lanes);
            let lmask: __mmask16 = (1u32 << valid).wrapping_sub(1) as __mmask16;
            // SAFETY: lanes below `valid` are inside row i of `x` (asserted above); masked-off lanes
            // are not read.
            let codes = unsafe {
                let v = _mm512_maskz_loadu_ps(lmask, x.as_ptr().add(i * k + p));
                let r = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                    _mm512_mul_ps(v, vinv),
                );
                let c = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(r, vzp), v0), v255);
                // Padding lanes (beyond k) are zero codes.
                _mm512_cvtepi32_epi8(_mm512_maskz_cvtps_epi32(lmask, c))
            };
            if h == 1 {
                let smask: __mmask16 = (1u32 << lanes).wrapping_sub(1) as __mmask16;
                // SAFETY: the `lanes` bytes at i·kp + p are inside row i of `out`.
                unsafe {
                    _mm_mask_storeu_epi8(out.as_mut_ptr().add(i * kp + p).cast(), smask, codes)
                };
            } else {
                let groups = lanes / KG;
                let last = base + (p / KG + groups - 1) * gstride + KG;
                assert!(last <= out.len());
                let dst = out.as_mut_ptr();
                // SAFETY: the `groups` 4-byte slots at base + (p/4 + t)·gstride end at `last`, inside
                // `out` (checked just above).
                unsafe {
                    let at = |t: usize| dst.add(base + (p / KG + t) * gstride).cast::<i32>();
                    at(0).write_unaligned(_mm_extract_epi32::<0>(codes));
                    if groups > 1 {
                        at(1).write_unaligned(_mm_extract_epi32::<1>(codes));
                    }
                    if groups > 2 {
                        at(2).write_unaligned(_mm_extract_epi32::<2>(codes));
                    }
                    if groups > 3 {
                        at(3).write_unaligned(_mm_extract_epi32::<3>(codes));
                    }
                }
            }
            p += lanes;
        }
    }
}

/// AVX-512 epilogue (the generic one, auto-vectorized for AVX-512).
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
    // SAFETY: only installed for kernels whose ISA the CPU has (AVX-512 F/BW/VL/DQ).
    unsafe { epilogue_avx512(tile, ldt, rows, row0, col0, cols, epi, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
#[allow(clippy::too_many_arguments)]
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/DQ (the function is compiled for them). The tile, per-column
/// arrays and output sizes are asserted.
unsafe fn epilogue_avx512(
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
    assert!(rows == 0 || tile.len() >= (rows - 1) * ldt + cols);
    assert!(col0 + cols <= n && epi.corr.len() >= n && epi.mult.len() >= n && epi.bias.len() >= n);
    let out_len = match out {
        Out::F32(o) => o.len(),
        Out::U8(o) => o.len(),
        Out::I32(o) => o.len(),
    };
    assert!(rows == 0 || (row0 + rows) * n <= out_len);
    let zero = _mm512_setzero_ps();
    let inv = _mm512_set1_ps(epi.out_inv);
    let zp = _mm512_set1_ps(epi.out_zp as f32);
    let lo = if epi.relu { zp } else { zero };
    let hi = _mm512_set1_ps(255.0);
    let mut c = 0;
    while c < cols {
        let mask: __mmask16 = if cols - c >= 16 {
            0xFFFF
        } else {
            ((1u32 << (cols - c)) - 1) as __mmask16
        };
        // SAFETY: lanes enabled by `mask` are columns col0 + c .. col0 + cols, inside the per-column
        // arrays, every tile row and every output row (asserted above).
        unsafe {
            let corr = _mm512_maskz_loadu_epi32(mask, epi.corr.as_ptr().add(col0 + c));
            let mult = _mm512_maskz_loadu_ps(mask, epi.mult.as_ptr().add(col0 + c));
            let bias = _mm512_maskz_loadu_ps(mask, epi.bias.as_ptr().add(col0 + c));
            for r in 0..rows {
                let acc = _mm512_maskz_loadu_epi32(mask, tile.as_ptr().add(r * ldt + c));
                let at = (row0 + r) * n + col0 + c;
                if let Out::I32(o) = out {
                    _mm512_mask_storeu_epi32(o.as_mut_ptr().add(at), mask, acc);
                    continue;
                }
                let v = _mm512_add_ps(
                    _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc, corr)), mult),
                    bias,
                );
                match out {
                    Out::F32(o) => {
                        let v = if epi.relu { _mm512_max_ps(v, zero) } else { v };
                        _mm512_mask_storeu_ps(o.as_mut_ptr().add(at), mask, v);
                    }
                    Out::U8(o) => {
                        let q = _mm512_roundscale_ps::<
                            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
                        >(_mm512_mul_ps(v, inv));
                        let q = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(q, zp), lo), hi);
                        _mm512_mask_cvtepi32_storeu_epi8(
                            o.as_mut_ptr().add(at).cast(),
                            mask,
                            _mm512_cvtps_epi32(q),
                        );
                    }
                    Out::I32(_) => {}
                }
            }
        }
        c += 16;
    }
}
