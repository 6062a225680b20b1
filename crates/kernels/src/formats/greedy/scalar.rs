//! The scalar oracle of the greedy range search (PyTorch's `choose_qparams_optimized` with its
//! `calculate_quant_loss`), evaluated in exactly PyTorch's order: one sequential f32 sum per candidate.

use super::{MIN_BINS, N_BINS};
use crate::formats::round::{cpp_max, cpp_min, min_max_first, round_even, round_f16};

/// Where the search of one row starts: `(min, max, step, thr)`.
#[inline]
pub(crate) fn start(x: &[f32]) -> (f32, f32, f32, f32) {
    let (mn, mx) = min_max_first(x);
    let step = (mx - mn) / N_BINS;
    (mn, mx, step, MIN_BINS * step)
}

/// The L2 error of fake-quantizing `x` to `bits` with clipping range `[lo, hi]` (PyTorch's
/// `calculate_quant_loss`: the f16 scale is not replaced when it underflows to 0).
#[inline]
pub(crate) fn loss(x: &[f32], lo: f32, hi: f32, qmax: f32) -> f32 {
    let bias = round_f16(lo);
    let range = hi - bias;
    let scale = if range == 0.0 {
        1.0
    } else {
        round_f16(range / qmax)
    };
    let inverse = if scale == 0.0 { 1.0 } else { 1.0 / scale };
    let mut norm = 0.0f32;
    for &v in x {
        let c = cpp_max(0.0, cpp_min(round_even((v - bias) * inverse), qmax));
        let q = c * scale + bias;
        norm += (v - q) * (v - q);
    }
    norm.sqrt()
}

/// The clipping range `(lo, hi)` the greedy search picks for one row.
///
/// PyTorch's loop `while (cur_min + thr < cur_max)` never ends when a step no longer moves the chosen
/// bound (a range below the float resolution of its magnitude, e.g. `1 + 1e-6·u`); here an iteration
/// that changes neither bound nor the current loss is a fixed point of that loop and ends it, with the
/// best range found so far — what PyTorch would hold forever. Every other iteration moves a bound
/// inward by at least half a step (a float sum that moves at all moves by at least half its addend),
/// so the search ends after at most about `2 · N_BINS` iterations on any finite row.
pub fn search_row(x: &[f32], bits: u32) -> (f32, f32) {
    if x.is_empty() {
        return (0.0, 0.0);
    }
    let qmax = ((1u32 << bits) - 1) as f32;
    let (mut xmin, mut xmax, step, thr) = start(x);
    let mut best = loss(x, xmin, xmax, qmax);
    let (mut cur_min, mut cur_max, mut cur_loss) = (xmin, xmax, best);
    while cur_min + thr < cur_max {
        let loss1 = loss(x, cur_min + step, cur_max, qmax);
        let loss2 = loss(x, cur_min, cur_max - step, qmax);
        if cur_loss < loss1 && cur_loss < loss2 && cur_loss < best {
            best = cur_loss;
            xmin = cur_min;
            xmax = cur_max;
        }
        let (next_min, next_max, next_loss) = if loss1 < loss2 {
            (cur_min + step, cur_max, loss1)
        } else {
            (cur_min, cur_max - step, loss2)
        };
        if next_min.to_bits() == cur_min.to_bits()
            && next_max.to_bits() == cur_max.to_bits()
            && next_loss.to_bits() == cur_loss.to_bits()
        {
            break;
        }
        (cur_min, cur_max, cur_loss) = (next_min, next_max, next_loss);
    }
    (xmin, xmax)
}

/// Ops-table entry: one search per row of `src` (`out.len()` rows of `dim`).
pub(crate) fn search(src: &[f32], dim: usize, bits: u32, out: &mut [(f32, f32)]) {
    for (r, o) in out.iter_mut().enumerate() {
        *o = search_row(&src[r * dim..(r + 1) * dim], bits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outlier_is_clipped_and_the_loss_does_not_grow() {
        let mut x: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 64) as f32 - 32.0) / 320.0)
            .collect();
        x[5] = 2.0;
        let (mn, mx) = min_max_first(&x);
        let (lo, hi) = search_row(&x, 4);
        assert!(mn <= lo && hi < mx, "[{lo}, {hi}] within [{mn}, {mx}]");
        assert!(loss(&x, lo, hi, 15.0) <= loss(&x, mn, mx, 15.0));
    }

    #[test]
    fn constant_rows_keep_their_range() {
        assert_eq!(search_row(&[0.37; 8], 4), (0.37, 0.37));
        assert_eq!(search_row(&[], 2), (0.0, 0.0));
    }
}
