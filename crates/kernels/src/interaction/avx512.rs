//! AVX-512 interaction kernels: 16 pair dot products per step, folded by a transpose-and-add tree.

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
    // SAFETY: this table entry is only installed when the CPU has AVX-512 F/BW/VL/DQ.
    unsafe { dot_avx512(features, batch, f, d, pairs, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/DQ (the function is compiled for them). Memory safety does not
/// depend on the caller: the lengths are asserted.
unsafe fn dot_avx512(
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
    let full = d / 16;
    let tail: __mmask16 = ((1u32 << (d % 16)) - 1) as __mmask16;
    let tail16: __mmask16 = ((1u32 << d.min(16)) - 1) as __mmask16;
    for b in 0..batch {
        let feats = &features[b * f * d..(b + 1) * f * d];
        let o = &mut out[b * width..(b + 1) * width];
        o[..d].copy_from_slice(&feats[..d]);
        let fp = feats.as_ptr();
        let dot = |i: usize, j: usize| {
            // SAFETY: i, j < f (asserted), so rows i and j each have d readable f32; the tail load
            // only touches the d % 16 lanes enabled by the mask.
            unsafe {
                let (x, y) = (fp.add(i * d), fp.add(j * d));
                let mut acc = _mm512_setzero_ps();
                for c in 0..full {
                    acc = _mm512_fmadd_ps(
                        _mm512_loadu_ps(x.add(c * 16)),
                        _mm512_loadu_ps(y.add(c * 16)),
                        acc,
                    );
                }
                if tail != 0 {
                    let xv = _mm512_maskz_loadu_ps(tail, x.add(full * 16));
                    let yv = _mm512_maskz_loadu_ps(tail, y.add(full * 16));
                    acc = _mm512_fmadd_ps(xv, yv, acc);
                }
                acc
            }
        };
        let dst = &mut o[d..];
        let mut chunks = pairs.chunks_exact(16);
        let mut p = 0;
        if d <= 16 {
            // One masked load per vector: the whole dot product is one multiply.
            let short = |i: usize, j: usize| {
                // SAFETY: i, j < f (asserted); the mask enables only the d lanes of each row.
                unsafe {
                    _mm512_mul_ps(
                        _mm512_maskz_loadu_ps(tail16, fp.add(i * d)),
                        _mm512_maskz_loadu_ps(tail16, fp.add(j * d)),
                    )
                }
            };
            for c in chunks.by_ref() {
                let mut v = [_mm512_setzero_ps(); 16];
                for t in 0..16 {
                    v[t] = short(c[t].0, c[t].1);
                }
                // SAFETY: `dst[p..p + 16]` is inside the output row.
                unsafe { _mm512_storeu_ps(dst[p..p + 16].as_mut_ptr(), reduce16(&v)) };
                p += 16;
            }
        }
        for c in chunks.by_ref() {
            let v: [__m512; 16] = std::array::from_fn(|t| dot(c[t].0, c[t].1));
            // SAFETY: `dst[p..p + 16]` is inside the output row.
            unsafe { _mm512_storeu_ps(dst[p..p + 16].as_mut_ptr(), reduce16(&v)) };
            p += 16;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let v: [__m512; 16] = std::array::from_fn(|t| {
                rest.get(t).map_or(_mm512_setzero_ps(), |&(i, j)| dot(i, j))
            });
            let mask = ((1u32 << rest.len()) - 1) as __mmask16;
            // SAFETY: the mask enables only the `rest.len()` slots left in the output row.
            unsafe { _mm512_mask_storeu_ps(dst[p..].as_mut_ptr(), mask, reduce16(&v)) };
        }
    }
}

/// Lane `t` of the result is the sum of the 16 lanes of `v[t]`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
#[inline]
fn reduce16(v: &[__m512; 16]) -> __m512 {
    // Within each 128-bit lane L: [a0+a2, b0+b2, a1+a3, b1+b3] for inputs a = v[2i], b = v[2i+1].
    let s: [__m512; 8] = std::array::from_fn(|i| {
        let (a, b) = (v[2 * i], v[2 * i + 1]);
        _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b))
    });
    // Within each 128-bit lane L: the lane-L partial sums of inputs 4i..4i+4.
    let t: [__m512; 4] = std::array::from_fn(|i| {
        let (x, y) = (_mm512_castps_pd(s[2 * i]), _mm512_castps_pd(s[2 * i + 1]));
        _mm512_add_ps(
            _mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
            _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)),
        )
    });
    // Fold the four 128-bit lanes: 4×4 transpose of lanes with adds.
    let y0 = _mm512_add_ps(
        _mm512_shuffle_f32x4::<0x44>(t[0], t[1]),
        _mm512_shuffle_f32x4::<0xEE>(t[0], t[1]),
    );
    let y1 = _mm512_add_ps(
        _mm512_shuffle_f32x4::<0x44>(t[2], t[3]),
        _mm512_shuffle_f32x4::<0xEE>(t[2], t[3]),
    );
    _mm512_add_ps(
        _mm512_shuffle_f32x4::<0x88>(y0, y1),
        _mm512_shuffle_f32x4::<0xDD>(y0, y1),
    )
}

/// `x_next = x0 ⊙ u + x` with fused multiply-adds (bit-identical to the oracle).
pub(crate) fn cross_combine(x0: &[f32], u: &[f32], x: &[f32], x_next: &mut [f32]) {
    // SAFETY: only installed when the CPU has AVX-512 F/BW/VL/DQ.
    unsafe { cross_avx512(x0, u, x, x_next) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/DQ (the function is compiled for them). The lengths are
/// asserted.
unsafe fn cross_avx512(x0: &[f32], u: &[f32], x: &[f32], x_next: &mut [f32]) {
    let n = x0.len();
    assert!(u.len() == n && x.len() == n && x_next.len() == n);
    let mut i = 0;
    while i < n {
        let mask = if n - i >= 16 {
            0xFFFF
        } else {
            ((1u32 << (n - i)) - 1) as __mmask16
        };
        // SAFETY: the mask enables only lanes below n - i, all inside the four slices.
        unsafe {
            let r = _mm512_fmadd_ps(
                _mm512_maskz_loadu_ps(mask, x0.as_ptr().add(i)),
                _mm512_maskz_loadu_ps(mask, u.as_ptr().add(i)),
                _mm512_maskz_loadu_ps(mask, x.as_ptr().add(i)),
            );
            _mm512_mask_storeu_ps(x_next.as_mut_ptr().add(i), mask, r);
        }
        i += 16;
    }
}
