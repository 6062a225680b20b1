//! SIMD greedy search, one row per lane (8 with AVX2, 16 with AVX-512), each lane following the
//! exact operation order of [`super::scalar::search_row`] (see the module docs of `greedy`).

use super::block_start;
use crate::simd::{MAX_LANES, SimdF32, simd_entries};

simd_entries! {
    search(src: &[f32], dim: usize, bits: u32, out: &mut [(f32, f32)]);
    avx2 => search_avx2,
    avx512 => search_avx512,
}

/// Searches every row of `src` (`out.len()` rows of `dim` values), `V::LANES` rows at a time.
///
/// # Safety
/// The CPU has `V`'s level.
#[inline(always)]
unsafe fn search<V: SimdF32>(src: &[f32], dim: usize, bits: u32, out: &mut [(f32, f32)]) {
    let lanes = V::LANES;
    let mut transposed = vec![0.0f32; dim * lanes];
    for (b, o) in out.chunks_mut(lanes).enumerate() {
        let rows = o.len();
        let block = &src[b * lanes * dim..(b * lanes + rows) * dim];
        let st = block_start(block, dim, rows, lanes, &mut transposed);
        // SAFETY: forwarded from the caller; `transposed` holds `dim · LANES` values.
        let (lo, hi) = unsafe { search_block::<V>(&transposed, dim, bits, &st) };
        for (l, r) in o.iter_mut().enumerate() {
            *r = (lo[l], hi[l]);
        }
    }
}

/// Bias, scale and inverse scale of a candidate range, as `calculate_quant_loss` derives them.
///
/// # Safety
/// The CPU has `V`'s level.
#[inline(always)]
unsafe fn params<V: SimdF32>(lo: V, hi: V, qmax: V) -> (V, V, V) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let (zero, one) = (V::zero(), V::splat(1.0));
        let bias = lo.round_f16();
        let range = hi.sub(bias);
        let scale = V::select(range.eq(zero), range.div(qmax).round_f16(), one);
        let inverse = V::select(scale.eq(zero), one.div(scale), one);
        (bias, scale, inverse)
    }
}

/// One element's squared error added to `norm` (no FMA: the oracle rounds the product and the sum).
///
/// # Safety
/// The CPU has `V`'s level.
#[inline(always)]
unsafe fn accumulate<V: SimdF32>(norm: V, x: V, (bias, scale, inverse): (V, V, V), qmax: V) -> V {
    // SAFETY: forwarded from the caller.
    unsafe {
        let t = x.sub(bias).mul(inverse).round_even();
        // std::max(0, std::min(t, qmax)): vminps(a, b) = a < b ? a : b, vmaxps(a, b) = a > b ? a : b.
        let c = qmax.min(t).max(V::zero());
        let e = x.sub(c.mul(scale).add(bias));
        norm.add(e.mul(e))
    }
}

/// The losses of two candidate ranges for all lanes.
///
/// # Safety
/// The CPU has `V`'s level and `x` holds `dim · LANES` values.
#[inline(always)]
unsafe fn loss_pair<V: SimdF32>(x: &[f32], dim: usize, c1: (V, V), c2: (V, V), qmax: V) -> (V, V) {
    // SAFETY: forwarded from the caller; `i < dim`, so the LANES values at `i · LANES` are inside
    // `x`.
    unsafe {
        let p1 = params(c1.0, c1.1, qmax);
        let p2 = params(c2.0, c2.1, qmax);
        let (mut n1, mut n2) = (V::zero(), V::zero());
        for i in 0..dim {
            let v = V::load(x.as_ptr().add(i * V::LANES));
            n1 = accumulate(n1, v, p1, qmax);
            n2 = accumulate(n2, v, p2, qmax);
        }
        (n1.sqrt(), n2.sqrt())
    }
}

/// Runs the search for one block of `LANES` rows stored transposed (`x[i · LANES + lane]`), from
/// the per-lane start `st` (`[min, max, step, thr]`); returns the per-lane `(lo, hi)`.
///
/// # Safety
/// The CPU has `V`'s level and `x` holds `dim · LANES` values.
#[inline(always)]
unsafe fn search_block<V: SimdF32>(
    x: &[f32],
    dim: usize,
    bits: u32,
    st: &[[f32; MAX_LANES]; 4],
) -> ([f32; MAX_LANES], [f32; MAX_LANES]) {
    // SAFETY: forwarded from the caller; each array of `st` holds at least LANES f32.
    unsafe {
        let (and, lt) = (V::mask_and, V::lt);
        let qmax = V::splat(((1u32 << bits) - 1) as f32);
        let (mut xmin, mut xmax) = (V::load(st[0].as_ptr()), V::load(st[1].as_ptr()));
        let (step, thr) = (V::load(st[2].as_ptr()), V::load(st[3].as_ptr()));
        let (mut best, _) = loss_pair(x, dim, (xmin, xmax), (xmin, xmax), qmax);
        let (mut cur_min, mut cur_max, mut cur_loss) = (xmin, xmax, best);
        // Set lanes are finished.
        let mut done = V::mask_none();
        loop {
            let active = V::mask_andnot(done, lt(cur_min.add(thr), cur_max));
            if !V::mask_any(active) {
                break;
            }
            let up = cur_min.add(step);
            let down = cur_max.sub(step);
            let (loss1, loss2) = loss_pair(x, dim, (up, cur_max), (cur_min, down), qmax);
            let optimum = and(
                and(active, lt(cur_loss, loss1)),
                and(lt(cur_loss, loss2), lt(cur_loss, best)),
            );
            best = V::select(optimum, best, cur_loss);
            xmin = V::select(optimum, xmin, cur_min);
            xmax = V::select(optimum, xmax, cur_max);
            let left = lt(loss1, loss2);
            let next_min = V::select(and(active, left), cur_min, up);
            let next_max = V::select(V::mask_andnot(left, active), cur_max, down);
            let next_loss = V::select(active, cur_loss, V::select(left, loss2, loss1));
            let fixed = and(
                and(next_min.same_bits(cur_min), next_max.same_bits(cur_max)),
                next_loss.same_bits(cur_loss),
            );
            done = V::mask_or(done, V::mask_or(V::mask_not(active), fixed));
            (cur_min, cur_max, cur_loss) = (next_min, next_max, next_loss);
        }
        let (mut lo, mut hi) = ([0.0f32; MAX_LANES], [0.0f32; MAX_LANES]);
        xmin.store(lo.as_mut_ptr());
        xmax.store(hi.as_mut_ptr());
        (lo, hi)
    }
}
