//! AVX2 row-code kernels: FBGEMM's own AVX2 min/max order, and eight codes per step.

use std::arch::x86_64::*;

use crate::formats::round::{cpp_max, cpp_min};

/// Ops-table entry (installed only for AVX2 levels or richer, which `CodeOps::for_isa` checks).
pub(crate) fn min_max(x: &[f32]) -> (f32, f32) {
    // SAFETY: the table holding this entry was built for a level whose features the CPU has.
    unsafe { min_max_avx2(x) }
}

/// Ops-table entry (installed only for AVX2 levels or richer, which `CodeOps::for_isa` checks).
pub(crate) fn codes(x: &[f32], bias: f32, inverse: f32, qmax: i32, out: &mut [u8]) {
    // SAFETY: as above; every caller (`CodeOps::codes`, `CodeOps::codes_into`) checked
    // `out.len() == x.len()`.
    unsafe { codes_avx2(x, bias, inverse, qmax, out) }
}

/// # Safety
/// The CPU has AVX2.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn min_max_avx2(x: &[f32]) -> (f32, f32) {
    let mut lo = _mm256_set1_ps(f32::MAX);
    let mut hi = _mm256_set1_ps(-f32::MAX);
    let body = x.len() / 8 * 8;
    for i in (0..body).step_by(8) {
        // SAFETY: `i + 8 <= body <= x.len()`.
        let v = unsafe { _mm256_loadu_ps(x.as_ptr().add(i)) };
        lo = _mm256_min_ps(lo, v);
        hi = _mm256_max_ps(hi, v);
    }
    let (mut l, mut h) = ([0f32; 8], [0f32; 8]);
    // SAFETY: the arrays hold 8 f32.
    unsafe {
        _mm256_storeu_ps(l.as_mut_ptr(), lo);
        _mm256_storeu_ps(h.as_mut_ptr(), hi);
    }
    let (mut mn, mut mx) = (f32::MAX, -f32::MAX);
    for k in 0..8 {
        mn = cpp_min(mn, l[k]);
        mx = cpp_max(mx, h[k]);
    }
    for &v in &x[body..] {
        mn = cpp_min(mn, v);
        mx = cpp_max(mx, v);
    }
    (mn, mx)
}

/// # Safety
/// The CPU has AVX2 and `out.len() == x.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn codes_avx2(x: &[f32], bias: f32, inverse: f32, qmax: i32, out: &mut [u8]) {
    let b = _mm256_set1_ps(bias);
    let inv = _mm256_set1_ps(inverse);
    let zero = _mm256_setzero_si256();
    let top = _mm256_set1_epi32(qmax);
    // Byte 0 of each i32 to the low 4 bytes of each 128-bit half, then the two halves together.
    let gather = _mm256_setr_epi8(
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1,
    );
    let join = _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0);
    let body = x.len() / 8 * 8;
    for i in (0..body).step_by(8) {
        // SAFETY: `i + 8 <= body <= x.len() == out.len()`.
        unsafe {
            let v = _mm256_loadu_ps(x.as_ptr().add(i));
            // vcvtps2dq rounds half to even (MXCSR default) and gives i32::MIN for NaN.
            let c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_sub_ps(v, b), inv));
            let c = _mm256_min_epi32(_mm256_max_epi32(c, zero), top);
            let bytes = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(c, gather), join);
            _mm_storel_epi64(
                out.as_mut_ptr().add(i).cast(),
                _mm256_castsi256_si128(bytes),
            );
        }
    }
    super::scalar::codes(&x[body..], bias, inverse, qmax, &mut out[body..]);
}
