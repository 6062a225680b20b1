//! AVX-512 greedy search: 16 rows at once, one per lane, each lane following the exact operation
//! order of [`super::scalar::search_row`] (see the module docs of `greedy`).

use std::arch::x86_64::*;

use super::block_start;

/// Rows per vector.
pub(crate) const LANES: usize = 16;

/// Round to nearest even, exceptions suppressed.
const RNE: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

/// Ops-table entry (installed only in tables built for [`crate::Isa::Avx512`] or richer, which
/// [`super::GreedyOps::for_isa`] checks against the CPU).
pub(crate) fn search(src: &[f32], dim: usize, bits: u32, out: &mut [(f32, f32)]) {
    let mut transposed = vec![0.0f32; dim * LANES];
    for (b, o) in out.chunks_mut(LANES).enumerate() {
        let rows = o.len();
        let block = &src[b * LANES * dim..(b * LANES + rows) * dim];
        let st = block_start::<LANES>(block, dim, rows, &mut transposed);
        let mut lo = [0.0f32; LANES];
        let mut hi = [0.0f32; LANES];
        // SAFETY: this entry is only reachable through an ops table built for an AVX-512 level,
        // which `GreedyOps::for_isa` refuses unless the CPU has AVX-512 F/BW/VL/DQ; `transposed`
        // holds `dim · LANES` values.
        unsafe { search_block(&transposed, dim, bits, &st, &mut lo, &mut hi) };
        for (l, r) in o.iter_mut().enumerate() {
            *r = (lo[l], hi[l]);
        }
    }
}

/// `f32 → f16 → f32` with round to nearest even.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn round_f16(v: __m512) -> __m512 {
    _mm512_cvtph_ps(_mm512_cvtps_ph::<RNE>(v))
}

/// Bias, scale and inverse scale of a candidate range, as `calculate_quant_loss` derives them.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn params(lo: __m512, hi: __m512, qmax: __m512) -> (__m512, __m512, __m512) {
    let zero = _mm512_setzero_ps();
    let one = _mm512_set1_ps(1.0);
    let bias = round_f16(lo);
    let range = _mm512_sub_ps(hi, bias);
    let range_zero = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(range, zero);
    let scale = _mm512_mask_blend_ps(range_zero, round_f16(_mm512_div_ps(range, qmax)), one);
    let scale_zero = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(scale, zero);
    let inverse = _mm512_mask_blend_ps(scale_zero, _mm512_div_ps(one, scale), one);
    (bias, scale, inverse)
}

/// One element's squared error added to `norm` (no FMA: the oracle rounds the product and the sum).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn accumulate(
    norm: __m512,
    x: __m512,
    (bias, scale, inverse): (__m512, __m512, __m512),
    qmax: __m512,
) -> __m512 {
    let t = _mm512_roundscale_ps::<RNE>(_mm512_mul_ps(_mm512_sub_ps(x, bias), inverse));
    // std::max(0, std::min(t, qmax)): vminps(a, b) = a < b ? a : b, vmaxps(a, b) = a > b ? a : b.
    let c = _mm512_max_ps(_mm512_min_ps(qmax, t), _mm512_setzero_ps());
    let e = _mm512_sub_ps(x, _mm512_add_ps(_mm512_mul_ps(c, scale), bias));
    _mm512_add_ps(norm, _mm512_mul_ps(e, e))
}

/// The losses of two candidate ranges for all lanes.
///
/// # Safety
/// The CPU has AVX-512 F/BW/VL/DQ and `x` holds `dim · LANES` values.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn loss_pair(
    x: &[f32],
    dim: usize,
    c1: (__m512, __m512),
    c2: (__m512, __m512),
    qmax: __m512,
) -> (__m512, __m512) {
    let p1 = params(c1.0, c1.1, qmax);
    let p2 = params(c2.0, c2.1, qmax);
    let mut n1 = _mm512_setzero_ps();
    let mut n2 = _mm512_setzero_ps();
    for i in 0..dim {
        // SAFETY: `i < dim`, so the 16 values at `i · LANES` are inside `x`.
        let v = unsafe { _mm512_loadu_ps(x.as_ptr().add(i * LANES)) };
        n1 = accumulate(n1, v, p1, qmax);
        n2 = accumulate(n2, v, p2, qmax);
    }
    (_mm512_sqrt_ps(n1), _mm512_sqrt_ps(n2))
}

/// Bitwise equality per lane.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn same(a: __m512, b: __m512) -> __mmask16 {
    _mm512_cmpeq_epi32_mask(_mm512_castps_si512(a), _mm512_castps_si512(b))
}

/// Runs the search for one block of 16 rows stored transposed (`x[i · 16 + lane]`).
///
/// # Safety
/// The CPU has AVX-512 F/BW/VL/DQ and `x` holds `dim · LANES` values.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn search_block(
    x: &[f32],
    dim: usize,
    bits: u32,
    st: &[[f32; LANES]; 4],
    lo: &mut [f32; LANES],
    hi: &mut [f32; LANES],
) {
    let lt = |a: __m512, b: __m512| _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b);
    let qmax = _mm512_set1_ps(((1u32 << bits) - 1) as f32);
    // SAFETY: each array holds LANES f32.
    let (mut xmin, mut xmax, step, thr) = unsafe {
        (
            _mm512_loadu_ps(st[0].as_ptr()),
            _mm512_loadu_ps(st[1].as_ptr()),
            _mm512_loadu_ps(st[2].as_ptr()),
            _mm512_loadu_ps(st[3].as_ptr()),
        )
    };
    // SAFETY: forwarded from the caller.
    let (mut best, _) = unsafe { loss_pair(x, dim, (xmin, xmax), (xmin, xmax), qmax) };
    let (mut cur_min, mut cur_max, mut cur_loss) = (xmin, xmax, best);
    let mut done: __mmask16 = 0;
    loop {
        let active = !done & lt(_mm512_add_ps(cur_min, thr), cur_max);
        if active == 0 {
            break;
        }
        let up = _mm512_add_ps(cur_min, step);
        let down = _mm512_sub_ps(cur_max, step);
        // SAFETY: forwarded from the caller.
        let (loss1, loss2) = unsafe { loss_pair(x, dim, (up, cur_max), (cur_min, down), qmax) };
        let optimum = active & lt(cur_loss, loss1) & lt(cur_loss, loss2) & lt(cur_loss, best);
        best = _mm512_mask_blend_ps(optimum, best, cur_loss);
        xmin = _mm512_mask_blend_ps(optimum, xmin, cur_min);
        xmax = _mm512_mask_blend_ps(optimum, xmax, cur_max);
        let left = lt(loss1, loss2);
        let next_min = _mm512_mask_blend_ps(active & left, cur_min, up);
        let next_max = _mm512_mask_blend_ps(active & !left, cur_max, down);
        let next_loss =
            _mm512_mask_blend_ps(active, cur_loss, _mm512_mask_blend_ps(left, loss2, loss1));
        let fixed = same(next_min, cur_min) & same(next_max, cur_max) & same(next_loss, cur_loss);
        done |= !active | fixed;
        (cur_min, cur_max, cur_loss) = (next_min, next_max, next_loss);
    }
    // SAFETY: each array holds LANES f32.
    unsafe {
        _mm512_storeu_ps(lo.as_mut_ptr(), xmin);
        _mm512_storeu_ps(hi.as_mut_ptr(), xmax);
    }
}
