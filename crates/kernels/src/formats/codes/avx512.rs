//! AVX-512 row codes: sixteen per step, the tail under a mask.

use std::arch::x86_64::*;

/// Ops-table entry (installed only for AVX-512 levels, which `CodeOps::for_isa` checks).
pub(crate) fn codes(x: &[f32], bias: f32, inverse: f32, qmax: i32, out: &mut [u8]) {
    // SAFETY: the table holding this entry was built for a level whose features the CPU has;
    // every caller (`CodeOps::codes`, `CodeOps::codes_into`) checked `out.len() == x.len()`.
    unsafe { codes_avx512(x, bias, inverse, qmax, out) }
}

/// # Safety
/// The CPU has AVX-512 F/BW/VL/DQ and `out.len() == x.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn codes_avx512(x: &[f32], bias: f32, inverse: f32, qmax: i32, out: &mut [u8]) {
    let b = _mm512_set1_ps(bias);
    let inv = _mm512_set1_ps(inverse);
    let zero = _mm512_setzero_si512();
    let top = _mm512_set1_epi32(qmax);
    let mut i = 0;
    while i < x.len() {
        let n = (x.len() - i).min(16);
        let mask: __mmask16 = if n == 16 { !0 } else { (1u16 << n) - 1 };
        // SAFETY: the mask covers the `n` values left at `i` in both `x` and `out`.
        unsafe {
            let v = _mm512_maskz_loadu_ps(mask, x.as_ptr().add(i));
            // vcvtps2dq rounds half to even (MXCSR default) and gives i32::MIN for NaN.
            let c = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(v, b), inv));
            let c = _mm512_min_epi32(_mm512_max_epi32(c, zero), top);
            _mm512_mask_cvtepi32_storeu_epi8(out.as_mut_ptr().add(i).cast(), mask, c);
        }
        i += n;
    }
}
