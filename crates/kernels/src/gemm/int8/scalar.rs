//! Scalar oracle of the int8 path: the reference arithmetic every SIMD kernel must reproduce exactly
//! (i32 accumulators bit-for-bit, f32/u8 epilogues bit-for-bit), plus the scalar-level ops.

use super::driver::{Epi, Out, TILE_MAX, epilogue_generic};
use super::{Int8Weights, KG, NR};
use crate::gemm::QParams;

/// `(min, max, all finite)` of `x`; `(0, 0, true)` when empty.
pub fn min_max(x: &[f32]) -> (f32, f32, bool) {
    let mut lo = f32::INFINITY;
    let mut hi = f32::NEG_INFINITY;
    let mut finite = true;
    for &v in x {
        finite &= v.is_finite();
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if x.is_empty() {
        (0.0, 0.0, true)
    } else {
        (lo, hi, finite)
    }
}

/// One activation code: `clamp(round_ties_even(v · inv_scale) + zero_point, 0, 255)` (FBGEMM's
/// non-legacy `Quantize`, which multiplies by the reciprocal scale).
#[inline]
pub fn quantize_u8(v: f32, inv_scale: f32, zero_point: i32) -> u8 {
    ((v * inv_scale).round_ties_even() + zero_point as f32).clamp(0.0, 255.0) as u8
}

/// Where activation code (row `i`, column `p`) of an `m`-row batch with rows padded to `kp` lives in
/// the blocked layout of height `h`: rows form blocks of `h` (the last may be shorter, `rb` rows);
/// block `b` starts at `b·h·kp` and stores, for each group of 4 columns, the 4 codes of each of its
/// `rb` rows in turn. `h = 1` is plain row-major.
#[inline]
pub fn a_offset(i: usize, p: usize, m: usize, kp: usize, h: usize) -> usize {
    let b = i / h;
    let rb = h.min(m - b * h);
    b * h * kp + (p / KG) * rb * KG + (i % h) * KG + p % KG
}

/// Row `i`'s entry of per-row parameters: `v[0]` for every row when `v` holds one value (one
/// parameter for the whole tensor), else `v[i]`.
#[inline(always)]
pub fn row_param<T: Copy>(v: &[T], i: usize) -> T {
    if v.len() == 1 { v[0] } else { v[i] }
}

/// Quantizes `m` rows of `k` values into the blocked layout (see [`a_offset`]), zero codes in `k..kp`.
/// `inv` (reciprocal scales) and `zp` (zero points) hold one value for every row or one per row
/// (see [`row_param`]).
#[allow(clippy::too_many_arguments)]
pub fn quantize_rows(
    x: &[f32],
    m: usize,
    k: usize,
    kp: usize,
    h: usize,
    inv: &[f32],
    zp: &[i32],
    out: &mut [u8],
) {
    for i in 0..m {
        let (inv, zp) = (row_param(inv, i), row_param(zp, i));
        for p in 0..kp {
            out[a_offset(i, p, m, kp, h)] = if p < k {
                quantize_u8(x[i * k + p], inv, zp)
            } else {
                0
            };
        }
    }
}

/// Copies row-major u8 codes (`m×k`) into the blocked layout (see [`a_offset`]), zero codes in `k..kp`.
pub fn block_codes(x: &[u8], m: usize, k: usize, kp: usize, h: usize, out: &mut [u8]) {
    let (groups, full) = (kp / KG, k / KG);
    assert!(h >= 1 && kp >= k && kp.is_multiple_of(KG) && x.len() >= m * k && out.len() >= m * kp);
    let mut b0 = 0;
    while b0 < m {
        let rb = h.min(m - b0);
        for r in 0..rb {
            let src = x[(b0 + r) * k..].as_ptr();
            let dst = out[b0 * kp + r * KG..].as_mut_ptr();
            for g in 0..full {
                // SAFETY: group g < k/4 of row b0 + r is inside `x`; its slot at
                // b0·kp + (g·rb + r)·4 is inside the block's rb·kp bytes of `out` (asserted above).
                unsafe {
                    let v = src.add(g * KG).cast::<u32>().read_unaligned();
                    dst.add(g * rb * KG).cast::<u32>().write_unaligned(v);
                }
            }
            for g in full..groups {
                let mut four = [0u8; KG];
                for (t, c) in four.iter_mut().enumerate() {
                    *c = x[(b0 + r) * k..(b0 + r + 1) * k]
                        .get(g * KG + t)
                        .copied()
                        .unwrap_or(0);
                }
                let at = b0 * kp + (g * rb + r) * KG;
                out[at..at + KG].copy_from_slice(&four);
            }
        }
        b0 += rb;
    }
}

/// The f32 epilogue of one output: `(acc − x_zp·colsum) as f32 · (x_scale·w_scale) + bias`, then ReLU.
#[inline]
pub fn dequantize(
    acc: i32,
    x_q: QParams,
    col_sum: i32,
    w_scale: f32,
    bias: f32,
    relu: bool,
) -> f32 {
    let v = acc.wrapping_sub(x_q.zero_point * col_sum) as f32 * (x_q.scale * w_scale) + bias;
    if relu { v.max(0.0) } else { v }
}

/// The u8 epilogue of one output from its f32 value before ReLU:
/// `clamp(round_ties_even(y / out_scale) + out_zp, relu ? out_zp : 0, 255)`.
#[inline]
pub fn requantize(y: f32, out_q: QParams, relu: bool) -> u8 {
    let lo = if relu { out_q.zero_point as f32 } else { 0.0 };
    ((y * (1.0 / out_q.scale)).round_ties_even() + out_q.zero_point as f32).clamp(lo, 255.0) as u8
}

/// Plain triple loop over row-major codes: `out[i][j] = Σ_p a[i][p] · w[j][p]`.
pub fn reference_accumulate(a: &[u8], m: usize, k: usize, codes: &[i8], n: usize, out: &mut [i32]) {
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k)
                .map(|p| i32::from(a[i * k + p]) * i32::from(codes[j * k + p]))
                .sum();
        }
    }
}

/// Scalar-level GEMM on the packed layout: one row × one 16-column panel per tile.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    a: &[u8],
    lda: usize,
    m: usize,
    h: usize,
    w: &Int8Weights,
    epi: &Epi<'_>,
    epi_fn: super::driver::EpiFn,
    out: &mut Out<'_>,
) {
    assert_eq!(h, 1, "the scalar kernel reads row-major activations");
    let groups = w.kp / KG;
    let mut tile = [0i32; TILE_MAX];
    for p in 0..w.n.div_ceil(NR) {
        let panel = &w.packed()[p * w.pstride..p * w.pstride + groups * NR * KG];
        let cols = NR.min(w.n - p * NR);
        for i in 0..m {
            let row = &a[i * lda..i * lda + w.kp];
            let acc = &mut tile[..NR];
            acc.fill(0);
            for (g, wg) in panel.chunks_exact(NR * KG).enumerate() {
                let ag = &row[g * KG..g * KG + KG];
                for (c, wc) in wg.chunks_exact(KG).enumerate() {
                    acc[c] += (0..KG)
                        .map(|t| i32::from(ag[t]) * i32::from(wc[t]))
                        .sum::<i32>();
                }
            }
            epi_fn(&tile, NR, 1, i, p * NR, cols, epi, out);
        }
    }
}

/// Scalar-level epilogue.
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
    epilogue_generic(tile, ldt, rows, row0, col0, cols, epi, out);
}
