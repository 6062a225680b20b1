//! AVX2 interaction kernels: 8 pair dot products per step, folded by a transpose-and-add tree.

use std::arch::x86_64::*;

/// Dot interaction (arguments validated by the caller).
pub(crate) fn dot_interaction(
    features: &[f32],
    batch: usize,
    f: usize,
    d: usize,
    pairs: &[(usize, usize)],
    out: &mut [f32],
) {
    // SAFETY: this table entry is only installed when the CPU has AVX2 and FMA.
    unsafe { dot_avx2(features, batch, f, d, pairs, out) }
}

#[target_feature(enable = "avx2,fma")]
/// # Safety
/// The CPU must have AVX2 and FMA (the function is compiled for them). Memory safety does not
/// depend on the caller: the lengths are asserted.
unsafe fn dot_avx2(
    features: &[f32],
    batch: usize,
    f: usize,
    d: usize,
    pairs: &[(usize, usize)],
    out: &mut [f32],
) {
    let width = d + pairs.len();
    assert!(features.len() >= batch * f * d && out.len() >= batch * width);
    assert!(pairs.iter().all(|&(i, j)| i < f && j < f));
    let full = d / 8;
    let rem = d % 8;
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem as i32), lanes);
    for b in 0..batch {
        let feats = &features[b * f * d..(b + 1) * f * d];
        let o = &mut out[b * width..(b + 1) * width];
        o[..d].copy_from_slice(&feats[..d]);
        let fp = feats.as_ptr();
        let dot = |i: usize, j: usize| {
            // SAFETY: i, j < f (asserted), so rows i and j each have d readable f32; the tail load
            // only touches the d % 8 lanes enabled by the mask.
            unsafe {
                let (x, y) = (fp.add(i * d), fp.add(j * d));
                let mut acc = _mm256_setzero_ps();
                for c in 0..full {
                    acc = _mm256_fmadd_ps(
                        _mm256_loadu_ps(x.add(c * 8)),
                        _mm256_loadu_ps(y.add(c * 8)),
                        acc,
                    );
                }
                if rem != 0 {
                    let xv = _mm256_maskload_ps(x.add(full * 8), tail);
                    let yv = _mm256_maskload_ps(y.add(full * 8), tail);
                    acc = _mm256_fmadd_ps(xv, yv, acc);
                }
                acc
            }
        };
        let dst = &mut o[d..];
        let mut chunks = pairs.chunks_exact(8);
        let mut p = 0;
        for c in chunks.by_ref() {
            let v: [__m256; 8] = std::array::from_fn(|t| dot(c[t].0, c[t].1));
            // SAFETY: `dst[p..p + 8]` is inside the output row.
            unsafe { _mm256_storeu_ps(dst[p..p + 8].as_mut_ptr(), reduce8(&v)) };
            p += 8;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let v: [__m256; 8] = std::array::from_fn(|t| {
                rest.get(t).map_or(_mm256_setzero_ps(), |&(i, j)| dot(i, j))
            });
            let mut sums = [0f32; 8];
            // SAFETY: `sums` has room for 8 f32.
            unsafe { _mm256_storeu_ps(sums.as_mut_ptr(), reduce8(&v)) };
            dst[p..].copy_from_slice(&sums[..rest.len()]);
        }
    }
}

/// Lane `t` of the result is the sum of the 8 lanes of `v[t]`.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn reduce8(v: &[__m256; 8]) -> __m256 {
    let s: [__m256; 4] = std::array::from_fn(|i| _mm256_hadd_ps(v[2 * i], v[2 * i + 1]));
    // Per 128-bit lane: the lane's partial sums of inputs 4i..4i+4.
    let t0 = _mm256_hadd_ps(s[0], s[1]);
    let t1 = _mm256_hadd_ps(s[2], s[3]);
    _mm256_add_ps(
        _mm256_permute2f128_ps::<0x20>(t0, t1),
        _mm256_permute2f128_ps::<0x31>(t0, t1),
    )
}

/// `x_next = x0 ⊙ u + x` with fused multiply-adds (bit-identical to the oracle).
pub(crate) fn cross_combine(x0: &[f32], u: &[f32], x: &[f32], x_next: &mut [f32]) {
    // SAFETY: only installed when the CPU has AVX2 and FMA.
    unsafe { cross_avx2(x0, u, x, x_next) }
}

#[target_feature(enable = "avx2,fma")]
/// # Safety
/// The CPU must have AVX2 and FMA (the function is compiled for them). The lengths are asserted.
unsafe fn cross_avx2(x0: &[f32], u: &[f32], x: &[f32], x_next: &mut [f32]) {
    let n = x0.len();
    assert!(u.len() == n && x.len() == n && x_next.len() == n);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, inside all four slices.
        unsafe {
            let r = _mm256_fmadd_ps(
                _mm256_loadu_ps(x0.as_ptr().add(i)),
                _mm256_loadu_ps(u.as_ptr().add(i)),
                _mm256_loadu_ps(x.as_ptr().add(i)),
            );
            _mm256_storeu_ps(x_next.as_mut_ptr().add(i), r);
        }
        i += 8;
    }
    for t in i..n {
        x_next[t] = x0[t].mul_add(u[t], x[t]);
    }
}
