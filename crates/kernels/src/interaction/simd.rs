//! SIMD interaction kernels (8 lanes with AVX2, 16 with AVX-512): `LANES` pair dot products per
//! step, folded by a transpose-and-add tree, and the fused cross step.

use super::DotInput;
use crate::simd::{SimdF32, simd_entries};

simd_entries! {
    dot(input: &DotInput<'_>, out: &mut [f32]);
    avx2 => dot_avx2,
    avx512 => dot_avx512,
}

simd_entries! {
    cross(x0: &[f32], u: &[f32], x: &[f32], x_next: &mut [f32]);
    avx2 => cross_avx2,
    avx512 => cross_avx512,
}

/// Dot interaction (arguments validated by the caller).
///
/// # Safety
/// The CPU has `V`'s level. Memory safety does not depend on the caller: the lengths are asserted.
#[inline(always)]
unsafe fn dot<V: SimdF32>(input: &DotInput<'_>, out: &mut [f32]) {
    let (features, pairs) = (input.features, input.pairs);
    let (batch, f, d) = (input.batch, input.f, input.d);
    let width = d + pairs.len();
    assert!(features.len() >= batch * f * d && out.len() >= batch * width);
    assert!(pairs.iter().all(|&(i, j)| i < f && j < f));
    let lanes = V::LANES;
    let (tail, short) = (d % lanes, d.min(lanes));
    // SAFETY: the CPU has `V`'s level (forwarded from the caller); i, j < f
    // (asserted), so rows i and j each have d readable f32 ([`pair_dot`]); the stores stay inside
    // the output row (`p + LANES <= pairs.len()`, the last one masked to the slots left).
    unsafe {
        let masks = (V::first(tail), V::first(short));
        for b in 0..batch {
            let feats = &features[b * f * d..(b + 1) * f * d];
            let o = &mut out[b * width..(b + 1) * width];
            o[..d].copy_from_slice(&feats[..d]);
            let fp = feats.as_ptr();
            let dst = &mut o[d..];
            let mut chunks = pairs.chunks_exact(lanes);
            let mut p = 0;
            for c in chunks.by_ref() {
                // A constant trip count (LANES), so the block stays in registers (an iterator
                // over `c` is not unrolled).
                let mut v = V::zero_block();
                #[allow(clippy::needless_range_loop)]
                for t in 0..lanes {
                    let (i, j) = c[t];
                    v.as_mut()[t] = pair_dot::<V>(fp.add(i * d), fp.add(j * d), d, masks);
                }
                V::sum_each(&v).store(dst[p..p + lanes].as_mut_ptr());
                p += lanes;
            }
            let rest = chunks.remainder();
            if !rest.is_empty() {
                let mut v = V::zero_block();
                for (slot, &(i, j)) in v.as_mut().iter_mut().zip(rest) {
                    *slot = pair_dot::<V>(fp.add(i * d), fp.add(j * d), d, masks);
                }
                V::sum_each(&v).store_masked(dst[p..].as_mut_ptr(), V::first(rest.len()));
            }
        }
    }
}

/// The per-lane partial products of rows `x` and `y` of `d` values (their lanes summed give the dot
/// product); `masks` are `(first(d % LANES), first(min(d, LANES)))`.
///
/// # Safety
/// The CPU has `V`'s level; `x` and `y` are valid for reading `d` f32 (the masked loads touch only
/// the lanes below `d`).
#[inline(always)]
unsafe fn pair_dot<V: SimdF32>(
    x: *const f32,
    y: *const f32,
    d: usize,
    masks: (V::Mask, V::Mask),
) -> V {
    let lanes = V::LANES;
    // SAFETY: forwarded from the caller.
    unsafe {
        if d <= lanes {
            // One masked load per vector: the whole dot product is one multiply.
            return V::load_masked(x, masks.1).mul(V::load_masked(y, masks.1));
        }
        let full = d / lanes;
        let mut acc = V::zero();
        for c in 0..full {
            acc = V::load(x.add(c * lanes)).mul_add(V::load(y.add(c * lanes)), acc);
        }
        if !d.is_multiple_of(lanes) {
            let xv = V::load_masked(x.add(full * lanes), masks.0);
            acc = xv.mul_add(V::load_masked(y.add(full * lanes), masks.0), acc);
        }
        acc
    }
}

/// `x_next = x0 ⊙ u + x` with fused multiply-adds (bit-identical to the oracle).
///
/// # Safety
/// The CPU has `V`'s level. The lengths are asserted.
#[inline(always)]
unsafe fn cross<V: SimdF32>(x0: &[f32], u: &[f32], x: &[f32], x_next: &mut [f32]) {
    let n = x0.len();
    assert!(u.len() == n && x.len() == n && x_next.len() == n);
    let lanes = V::LANES;
    let mut i = 0;
    // SAFETY: the CPU has `V`'s level (forwarded); full vectors at `i` have `i + LANES <= n`, and
    // the tail's mask enables only the lanes below `n - i`, inside all four slices.
    unsafe {
        while i + lanes <= n {
            let r = V::load(x0.as_ptr().add(i))
                .mul_add(V::load(u.as_ptr().add(i)), V::load(x.as_ptr().add(i)));
            r.store(x_next.as_mut_ptr().add(i));
            i += lanes;
        }
        if i < n {
            let m = V::first(n - i);
            let r = V::load_masked(x0.as_ptr().add(i), m).mul_add(
                V::load_masked(u.as_ptr().add(i), m),
                V::load_masked(x.as_ptr().add(i), m),
            );
            r.store_masked(x_next.as_mut_ptr().add(i), m);
        }
    }
}
