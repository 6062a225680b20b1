//! Range selectors: from an observer's histogram to a clipping range `(lo, hi)`, then to u8
//! asymmetric [`QParams`] or an s8 symmetric scale.
//!
//! - [`minmax`]: the observed `[min, max]`, no clipping (PyTorch `MinMaxObserver`).
//! - [`percentile`]: from the `(100 - p)`-th to the `p`-th percentile for signed data (so
//!   `100 - p` percent is cut on each side), interpolated inside the histogram bin. ONNX
//!   Runtime's asymmetric percentile calibrator cuts `(100 - p) / 2` percent per side and snaps to
//!   bin edges; pass `p' = (100 + p) / 2` to cut as much as it does.
//! - [`l2`]: the L2-error-minimizing window found by PyTorch's greedy search,
//!   `HistogramObserver._non_linear_param_search` in `torch/ao/quantization/observer.py`, itself
//!   Caffe2's `NormMinimization::NonlinearQuantizationParamsSearch`
//!   (`caffe2/quantization/server/norm_minimization.cc`). Given the same histogram it picks the
//!   same window as PyTorch (tested against golden values from PyTorch 2.15).
//! - [`kl`]: TensorRT entropy calibration (Migacz, "8-bit Inference with TensorRT", GTC 2017) in
//!   the formulation of MXNet's `_get_optimal_threshold` (`python/mxnet/contrib/quantization.py`):
//!   KL divergence between the clipped reference distribution and its quantized version, over
//!   candidate thresholds, with MXNet's smoothing. There is no PyTorch counterpart; ONNX Runtime's
//!   entropy calibrator follows the same idea on a signed histogram (with integer truncation of the
//!   quantized distribution), so its thresholds are close to, not equal to, ours.
//!
//! Net-aware narrowing: a tensor that only feeds a ReLU needs no negative codes; use
//! [`Range::relu_narrowed`] on a selected range, or select on [`Histogram::after_relu`] so that the
//! search itself sees the post-ReLU distribution (negative mass becomes a point mass at 0).

use super::histogram::Histogram;
use crate::{QuantError, Result};
use quantrec_kernels::gemm::QParams;

/// A clipping range `[lo, hi]` (`lo <= hi`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Range {
    /// Lower clipping bound.
    pub lo: f32,
    /// Upper clipping bound.
    pub hi: f32,
}

impl Range {
    /// u8 asymmetric parameters covering `[min(lo, 0), max(hi, 0)]` with 0.0 exactly
    /// representable (its code is the zero point), via [`QParams::for_u8_range`].
    pub fn u8_qparams(&self) -> QParams {
        QParams::for_u8_range(self.lo, self.hi)
    }

    /// s8 symmetric scale `max(|lo|, |hi|) / 127` (codes in `[-127, 127]`, as the kernels'
    /// symmetric weights); 1.0 for an all-zero range so that the scale stays valid.
    pub fn s8_symmetric_scale(&self) -> f32 {
        let amax = self.lo.abs().max(self.hi.abs());
        if amax > 0.0 { amax / 127.0 } else { 1.0 }
    }

    /// The range of `relu(x)` for `x` in this range: `[0, max(hi, 0)]`.
    pub fn relu_narrowed(self) -> Range {
        Range {
            lo: 0.0,
            hi: self.hi.max(0.0),
        }
    }
}

/// How to choose a range from a histogram.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum RangeMethod {
    /// The observed min and max.
    MinMax,
    /// Percentile in `(0, 100]`, e.g. 99.99.
    Percentile(f64),
    /// L2-error minimization for a quantizer with `2^bits` levels.
    L2 {
        /// Bit width of the quantizer (1..=16).
        bits: u32,
    },
    /// KL-divergence (entropy) calibration for `bits`-bit codes.
    Kl {
        /// Bit width of the codes (2..=16).
        bits: u32,
    },
}

/// Applies `method` to `h`.
pub fn select_range(h: &Histogram, method: RangeMethod) -> Result<Range> {
    match method {
        RangeMethod::MinMax => Ok(minmax(h)),
        RangeMethod::Percentile(p) => percentile(h, p),
        RangeMethod::L2 { bits } => l2(h, bits),
        RangeMethod::Kl { bits } => kl(h, bits),
    }
}

/// The histogram's range, which observers keep equal to the exact observed min and max.
pub fn minmax(h: &Histogram) -> Range {
    Range {
        lo: h.lo(),
        hi: h.hi(),
    }
}

/// The range between the `(100 - p)`-th and `p`-th percentiles for signed data (two-sided); for
/// data that is all `>= 0` only the top is clipped (`[min, p-th]`), for data all `<= 0` only the
/// bottom. Percentiles interpolate linearly inside a bin ([`Histogram::quantile`]).
pub fn percentile(h: &Histogram, p: f64) -> Result<Range> {
    if !(p > 0.0 && p <= 100.0) {
        return Err(QuantError::PercentileOutOfRange { value: p });
    }
    if h.total() <= 0.0 || h.lo() == h.hi() {
        return Ok(minmax(h));
    }
    let q = p / 100.0;
    let lo = if h.lo() >= 0.0 {
        h.lo()
    } else {
        h.quantile(1.0 - q) as f32
    };
    let hi = if h.hi() <= 0.0 {
        h.hi()
    } else {
        h.quantile(q) as f32
    };
    Ok(clamped(h, lo, hi))
}

fn clamped(h: &Histogram, lo: f32, hi: f32) -> Range {
    let lo = lo.clamp(h.lo(), h.hi());
    let hi = hi.clamp(lo, h.hi());
    Range { lo, hi }
}

fn check_bits(what: &'static str, bits: u32, min: u32) -> Result<()> {
    if !(min..=16).contains(&bits) {
        return Err(QuantError::BitWidthOutOfRange {
            what,
            bits,
            min,
            max: 16,
        });
    }
    Ok(())
}

/// The L2 quantization error (sum over the histogram mass of squared distance to the nearest
/// level centre) of quantizing with `dst_bins` uniform levels spanning source bins
/// `start..=end`; values outside are clipped to the end levels. Each source bin's mass is taken
/// as uniform over the bin. Same formula as PyTorch `_compute_quantization_error`.
pub fn l2_error(h: &Histogram, start: usize, end: usize, dst_bins: usize) -> f64 {
    let bin_width = h.bin_width();
    let dst_width = bin_width * (end + 1 - start) as f64 / dst_bins as f64;
    if dst_width == 0.0 {
        return 0.0;
    }
    let last = (dst_bins - 1) as f64;
    // integral of x^2 over [b, e], times the density.
    let norm = |b: f64, e: f64, density: f64| density * (e * e * e - b * b * b) / 3.0;
    let half = dst_width / 2.0;
    let mut total = 0.0;
    for (i, &c) in h.counts().iter().enumerate() {
        if c == 0.0 {
            continue;
        }
        let density = c / bin_width;
        let src_begin = (i as f64 - start as f64) * bin_width;
        let src_end = src_begin + bin_width;
        let dst_of_begin = (src_begin / dst_width).floor().clamp(0.0, last);
        let dst_of_end = (src_end / dst_width).floor().clamp(0.0, last);
        let begin_center = (dst_of_begin + 0.5) * dst_width;
        let end_center = dst_of_end * dst_width + half;
        total += norm(src_begin - begin_center, half, density);
        total += (dst_of_end - dst_of_begin - 1.0) * norm(-half, half, density);
        total += norm(-half, src_end - end_center, density);
    }
    total
}

/// L2-error-minimizing clipping window for a quantizer with `2^bits` levels.
///
/// Reproduces PyTorch `HistogramObserver._non_linear_param_search` step by step: starting from
/// the full range it moves whichever end (start or end bin) crosses more bins when the clipped
/// mass quantile is advanced by 1e-5, evaluates [`l2_error`] of the new window, and stops at the
/// first step where the error grows. The window `[start, end]` in bins becomes
/// `[lo + start·w, lo + (end + 1)·w]`. The cumulative-mass comparisons are done in f32 exactly as
/// PyTorch does them; the error itself is computed in f64 (PyTorch: f32 tensors), so the chosen
/// window can differ by a step only when two windows' errors tie to f32 precision.
pub fn l2(h: &Histogram, bits: u32) -> Result<Range> {
    check_bits("L2", bits, 1)?;
    let dst_bins = 1usize << bits;
    let total = h.total();
    if total <= 0.0 || h.lo() == h.hi() {
        return Ok(minmax(h));
    }
    let n = h.bins();
    // PyTorch keeps the cumulative histogram as an f32 tensor (accumulated in f64, stored as
    // f32) and compares it with the Python-float bound, which rounds the bound to f32. Doing the
    // same matters: with integer counts the bound often lands exactly on a cumulative count.
    let mut acc = 0.0f64;
    let csum: Vec<f32> = h
        .counts()
        .iter()
        .map(|&c| {
            acc += c;
            acc as f32
        })
        .collect();
    let total = f64::from(total as f32);
    let step = 1e-5;
    let (mut alpha, mut beta) = (0.0f64, 1.0f64);
    let (mut start, mut end) = (0usize, n - 1);
    let mut norm_min = f64::INFINITY;
    while alpha < beta {
        let next_alpha = alpha + step;
        let next_beta = beta - step;
        let mut l = start;
        let mut r = end;
        while l < end && csum[l] < (next_alpha * total) as f32 {
            l += 1;
        }
        while r > start && csum[r] > (next_beta * total) as f32 {
            r -= 1;
        }
        let (mut next_start, mut next_end) = (start, end);
        if l - start > end - r {
            next_start = l;
            alpha = next_alpha;
        } else {
            next_end = r;
            beta = next_beta;
        }
        if next_start == start && next_end == end {
            continue;
        }
        let norm = l2_error(h, next_start, next_end, dst_bins);
        if norm > norm_min {
            break;
        }
        norm_min = norm;
        start = next_start;
        end = next_end;
    }
    let lo = h.edge(start) as f32;
    let hi = h.edge(end + 1) as f32;
    Ok(clamped(h, lo, hi))
}

/// MXNet's `_smooth_distribution`: moves `eps` of mass onto every empty bin, taken evenly from the
/// non-empty ones. `None` if there is no mass or a bin would go non-positive.
fn smooth(p: &mut [f64]) -> Option<()> {
    const EPS: f64 = 1e-4;
    let zeros = p.iter().filter(|&&x| x == 0.0).count();
    let nonzeros = p.len() - zeros;
    if nonzeros == 0 {
        return None;
    }
    let eps1 = EPS * zeros as f64 / nonzeros as f64;
    for x in p.iter_mut() {
        *x = if *x == 0.0 { EPS } else { *x - eps1 };
        if *x <= 0.0 {
            return None;
        }
    }
    Some(())
}

/// KL(p ‖ q) of the two (unnormalized) distributions after normalizing each, natural log.
fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    let sp: f64 = p.iter().sum();
    let sq: f64 = q.iter().sum();
    p.iter()
        .zip(q)
        .filter(|(a, _)| **a > 0.0)
        .map(|(a, b)| {
            let (a, b) = (a / sp, b / sq);
            a * (a / b).ln()
        })
        .sum()
}

/// Entropy threshold over a histogram of magnitudes starting at 0 (`counts[k]` covers
/// `[k·w, (k+1)·w)`): the `i`, `levels <= i <= bins`, whose clipped reference distribution
/// (first `i` bins, outlier mass added to bin `i - 1`) is closest in KL divergence to its
/// quantization into `levels` groups. Returns the threshold bin count `i`.
pub fn kl_threshold_bins(counts: &[f64], levels: usize) -> Option<usize> {
    let n = counts.len();
    if levels == 0 || n < levels {
        return None;
    }
    let mut suffix = vec![0.0; n + 1];
    for k in (0..n).rev() {
        suffix[k] = suffix[k + 1] + counts[k];
    }
    let mut best: Option<(f64, usize)> = None;
    let mut p = vec![0.0; n];
    let mut q = vec![0.0; n];
    for i in levels..=n {
        let sliced = &counts[..i];
        let p = &mut p[..i];
        p.copy_from_slice(sliced);
        p[i - 1] += suffix[i];
        let merged = i / levels;
        let q = &mut q[..i];
        for j in 0..levels {
            let start = j * merged;
            let stop = if j == levels - 1 { i } else { start + merged };
            let group: f64 = sliced[start..stop].iter().sum();
            let nonzero = p[start..stop].iter().filter(|&&x| x != 0.0).count();
            for k in start..stop {
                q[k] = if p[k] != 0.0 && nonzero > 0 {
                    group / nonzero as f64
                } else {
                    0.0
                };
            }
        }
        if smooth(p).is_none() || smooth(q).is_none() {
            continue;
        }
        let d = kl_divergence(p, q);
        if d.is_finite() && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, i));
        }
    }
    best.map(|(_, i)| i)
}

/// TensorRT-style entropy calibration for `bits`-bit codes.
///
/// Signed data (`min < 0`) is calibrated symmetrically: the histogram of `|x|` (same bin count,
/// over `[0, max|x|]`, [`Histogram::folded_abs`]) is searched with `2^(bits-1)` levels (128 for
/// 8 bits) and the result is `(-T, T)`. Non-negative data is searched over `[0, max]` with `2^bits`
/// levels (256 for 8 bits) and the result is `(0, T)`. For every candidate `i` (levels..=bins) the
/// reference `P` is the first `i` bins with all mass beyond folded into bin `i - 1`; `Q` merges the
/// first `i` bins into `levels` groups (the last group takes the remainder) and spreads each
/// group's mass evenly over its bins where `P` is non-zero; both are smoothed as MXNet does
/// (`eps = 1e-4` onto empty bins) and `T = i · w` for the `i` of least `KL(P ‖ Q)`. If no
/// candidate has a finite divergence the full range is returned.
pub fn kl(h: &Histogram, bits: u32) -> Result<Range> {
    check_bits("KL", bits, 2)?;
    if h.total() <= 0.0 || h.lo() == h.hi() {
        return Ok(minmax(h));
    }
    let n = h.bins();
    let signed = h.lo() < 0.0;
    let levels = if signed {
        1usize << (bits - 1)
    } else {
        1usize << bits
    };
    if n < levels {
        return Err(QuantError::TooFewBins { bins: n, levels });
    }
    let mags = if signed {
        h.folded_abs(n)?
    } else {
        h.rebinned(n, 0.0, h.hi())?
    };
    let Some(i) = kl_threshold_bins(mags.counts(), levels) else {
        return Ok(minmax(h));
    };
    let t = mags.edge(i) as f32;
    Ok(if signed {
        clamped(h, -t, t)
    } else {
        Range { lo: 0.0, hi: t }
    })
}

#[cfg(test)]
mod tests;
