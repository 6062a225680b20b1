//! AVX2 greedy search: 8 rows at once, one per lane, each lane following the exact operation order
//! of [`super::scalar::search_row`] (see the module docs of `greedy`).

use std::arch::x86_64::*;

use super::block_start;

/// Rows per vector.
pub(crate) const LANES: usize = 8;

/// Round to nearest even, exceptions suppressed.
const RNE: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

/// Ops-table entry (installed only in tables built for [`crate::Isa::Avx2`] or richer, which
/// [`super::GreedyOps::for_isa`] checks against the CPU).
pub(crate) fn search(src: &[f32], dim: usize, bits: u32, out: &mut [(f32, f32)]) {
    let mut transposed = vec![0.0f32; dim * LANES];
    for (b, o) in out.chunks_mut(LANES).enumerate() {
        let rows = o.len();
        let block = &src[b * LANES * dim..(b * LANES + rows) * dim];
        let st = block_start::<LANES>(block, dim, rows, &mut transposed);
        let mut lo = [0.0f32; LANES];
        let mut hi = [0.0f32; LANES];
        // SAFETY: this entry is only reachable through an ops table built for an AVX2 level or
        // richer, which `GreedyOps::for_isa` refuses unless the CPU has AVX2, FMA and F16C;
        // `transposed` holds `dim · LANES` values.
        unsafe { search_block(&transposed, dim, bits, &st, &mut lo, &mut hi) };
        for (l, r) in o.iter_mut().enumerate() {
            *r = (lo[l], hi[l]);
        }
    }
}

/// `f32 → f16 → f32` with round to nearest even.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn round_f16(v: __m256) -> __m256 {
    _mm256_cvtph_ps(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v))
}

/// `mask ? b : a` per lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn select(mask: __m256, a: __m256, b: __m256) -> __m256 {
    _mm256_blendv_ps(a, b, mask)
}

/// Bias, scale and inverse scale of a candidate range, as `calculate_quant_loss` derives them.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn params(lo: __m256, hi: __m256, qmax: __m256) -> (__m256, __m256, __m256) {
    let zero = _mm256_setzero_ps();
    let one = _mm256_set1_ps(1.0);
    let bias = round_f16(lo);
    let range = _mm256_sub_ps(hi, bias);
    let range_zero = _mm256_cmp_ps::<_CMP_EQ_OQ>(range, zero);
    let scale = select(range_zero, round_f16(_mm256_div_ps(range, qmax)), one);
    let scale_zero = _mm256_cmp_ps::<_CMP_EQ_OQ>(scale, zero);
    let inverse = select(scale_zero, _mm256_div_ps(one, scale), one);
    (bias, scale, inverse)
}

/// One element's squared error added to `norm` (no FMA: the oracle rounds the product and the sum).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn accumulate(
    norm: __m256,
    x: __m256,
    (bias, scale, inverse): (__m256, __m256, __m256),
    qmax: __m256,
) -> __m256 {
    let t = _mm256_round_ps::<RNE>(_mm256_mul_ps(_mm256_sub_ps(x, bias), inverse));
    // std::max(0, std::min(t, qmax)): vminps(a, b) = a < b ? a : b, vmaxps(a, b) = a > b ? a : b.
    let c = _mm256_max_ps(_mm256_min_ps(qmax, t), _mm256_setzero_ps());
    let e = _mm256_sub_ps(x, _mm256_add_ps(_mm256_mul_ps(c, scale), bias));
    _mm256_add_ps(norm, _mm256_mul_ps(e, e))
}

/// The losses of two candidate ranges for all lanes.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C and `x` holds `dim · LANES` values.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn loss_pair(
    x: &[f32],
    dim: usize,
    c1: (__m256, __m256),
    c2: (__m256, __m256),
    qmax: __m256,
) -> (__m256, __m256) {
    let p1 = params(c1.0, c1.1, qmax);
    let p2 = params(c2.0, c2.1, qmax);
    let mut n1 = _mm256_setzero_ps();
    let mut n2 = _mm256_setzero_ps();
    for i in 0..dim {
        // SAFETY: `i < dim`, so the 8 values at `i · LANES` are inside `x`.
        let v = unsafe { _mm256_loadu_ps(x.as_ptr().add(i * LANES)) };
        n1 = accumulate(n1, v, p1, qmax);
        n2 = accumulate(n2, v, p2, qmax);
    }
    (_mm256_sqrt_ps(n1), _mm256_sqrt_ps(n2))
}

/// Bitwise equality per lane, as an all-ones/all-zeros mask.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn same(a: __m256, b: __m256) -> __m256 {
    _mm256_castsi256_ps(_mm256_cmpeq_epi32(
        _mm256_castps_si256(a),
        _mm256_castps_si256(b),
    ))
}

/// Runs the search for one block of 8 rows stored transposed (`x[i · 8 + lane]`).
///
/// # Safety
/// The CPU has AVX2, FMA and F16C and `x` holds `dim · LANES` values.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn search_block(
    x: &[f32],
    dim: usize,
    bits: u32,
    st: &[[f32; LANES]; 4],
    lo: &mut [f32; LANES],
    hi: &mut [f32; LANES],
) {
    let lt = |a: __m256, b: __m256| _mm256_cmp_ps::<_CMP_LT_OQ>(a, b);
    let and = |a: __m256, b: __m256| _mm256_and_ps(a, b);
    let qmax = _mm256_set1_ps(((1u32 << bits) - 1) as f32);
    // SAFETY: each array holds LANES f32.
    let (mut xmin, mut xmax, step, thr) = unsafe {
        (
            _mm256_loadu_ps(st[0].as_ptr()),
            _mm256_loadu_ps(st[1].as_ptr()),
            _mm256_loadu_ps(st[2].as_ptr()),
            _mm256_loadu_ps(st[3].as_ptr()),
        )
    };
    // SAFETY: forwarded from the caller.
    let (mut best, _) = unsafe { loss_pair(x, dim, (xmin, xmax), (xmin, xmax), qmax) };
    let (mut cur_min, mut cur_max, mut cur_loss) = (xmin, xmax, best);
    let all = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    // All-ones lanes are finished.
    let mut done = _mm256_setzero_ps();
    loop {
        let active = _mm256_andnot_ps(done, lt(_mm256_add_ps(cur_min, thr), cur_max));
        if _mm256_movemask_ps(active) == 0 {
            break;
        }
        let up = _mm256_add_ps(cur_min, step);
        let down = _mm256_sub_ps(cur_max, step);
        // SAFETY: forwarded from the caller.
        let (loss1, loss2) = unsafe { loss_pair(x, dim, (up, cur_max), (cur_min, down), qmax) };
        let optimum = and(
            and(active, lt(cur_loss, loss1)),
            and(lt(cur_loss, loss2), lt(cur_loss, best)),
        );
        best = select(optimum, best, cur_loss);
        xmin = select(optimum, xmin, cur_min);
        xmax = select(optimum, xmax, cur_max);
        let left = lt(loss1, loss2);
        let next_min = select(and(active, left), cur_min, up);
        let next_max = select(_mm256_andnot_ps(left, active), cur_max, down);
        let next_loss = select(active, cur_loss, select(left, loss2, loss1));
        let fixed = and(
            and(same(next_min, cur_min), same(next_max, cur_max)),
            same(next_loss, cur_loss),
        );
        done = _mm256_or_ps(done, _mm256_or_ps(_mm256_andnot_ps(active, all), fixed));
        (cur_min, cur_max, cur_loss) = (next_min, next_max, next_loss);
    }
    // SAFETY: each array holds LANES f32.
    unsafe {
        _mm256_storeu_ps(lo.as_mut_ptr(), xmin);
        _mm256_storeu_ps(hi.as_mut_ptr(), xmax);
    }
}
