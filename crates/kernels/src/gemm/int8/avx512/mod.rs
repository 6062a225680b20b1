//! AVX-512 int8 ops: activation min/max and quantization, and the epilogue (the range scan and the
//! epilogue are the width-generic ones of [`super::simd`] at `__m512`); the GEMM is in [`vnni`].

pub(crate) mod vnni;

use std::arch::x86_64::*;

super::simd::level_entries!(
    std::arch::x86_64::__m512,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq"
);

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
