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
unsafe fn min_max_avx512(x: &[f32]) -> (f32, f32, bool) {
    if x.is_empty() {
        return (0.0, 0.0, true);
    }
    let mut lo = _mm512_set1_ps(f32::INFINITY);
    let mut hi = _mm512_set1_ps(f32::NEG_INFINITY);
    let mut nan = _mm512_setzero_ps();
    let zero = _mm512_setzero_ps();
    let chunks = x.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        // SAFETY: `c` holds exactly 16 f32.
        let v = unsafe { _mm512_loadu_ps(c.as_ptr()) };
        lo = _mm512_min_ps(lo, v);
        hi = _mm512_max_ps(hi, v);
        // inf·0 and NaN·0 are NaN; finite·0 is ±0, so `nan` stays finite iff every value is.
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

/// Quantizes rows; see [`super::scalar::quantize_rows`].
pub(crate) fn quantize_rows(
    x: &[f32],
    m: usize,
    k: usize,
    kp: usize,
    inv: f32,
    zp: i32,
    out: &mut [u8],
) {
    // SAFETY: only installed for kernels whose ISA the CPU has (AVX-512 F/BW/VL/DQ).
    unsafe { quantize_rows_avx512(x, m, k, kp, inv, zp, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn quantize_rows_avx512(
    x: &[f32],
    m: usize,
    k: usize,
    kp: usize,
    inv: f32,
    zp: i32,
    out: &mut [u8],
) {
    let vinv = _mm512_set1_ps(inv);
    let vzp = _mm512_set1_ps(zp as f32);
    let v0 = _mm512_setzero_ps();
    let v255 = _mm512_set1_ps(255.0);
    assert!(x.len() >= m * k && out.len() >= m * kp && kp >= k);
    for i in 0..m {
        let mut p = 0;
        while p < kp {
            let lanes = (kp - p).min(16);
            let valid = k.saturating_sub(p).min(lanes);
            let lmask: __mmask16 = (1u32 << valid).wrapping_sub(1) as __mmask16;
            let smask: __mmask16 = (1u32 << lanes).wrapping_sub(1) as __mmask16;
            // SAFETY: lanes below `valid` are inside row i of `x`, lanes below `lanes` inside row i
            // of `out` (asserted above); masked-off lanes are not accessed.
            unsafe {
                let v = _mm512_maskz_loadu_ps(lmask, x.as_ptr().add(i * k + p));
                let r = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                    _mm512_mul_ps(v, vinv),
                );
                let c = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(r, vzp), v0), v255);
                // Padding lanes (beyond k) are zero codes.
                let q = _mm512_maskz_cvtps_epi32(lmask, c);
                _mm512_mask_cvtepi32_storeu_epi8(out.as_mut_ptr().add(i * kp + p).cast(), smask, q);
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
    epilogue_generic(tile, ldt, rows, row0, col0, cols, epi, out);
}
