use super::*;
use crate::calibrate::TensorObserver;
use quantrec_kernels::rng::Rng;

/// 100k standard normal values plus 10 outliers at ±50.
fn gaussian_with_outliers() -> Histogram {
    let mut rng = Rng::new(7);
    let mut v = rng.normal_vec(100_000, 1.0);
    v.extend_from_slice(&[
        50.0, -50.0, 48.0, -47.0, 45.0, 50.0, -50.0, 44.0, -41.0, 49.0,
    ]);
    let mut obs = TensorObserver::new("g");
    obs.observe(&v).unwrap();
    obs.require_histogram().unwrap().clone()
}

fn uniform(lo: f32, hi: f32, seed: u64) -> Histogram {
    let mut rng = Rng::new(seed);
    let v: Vec<f32> = (0..200_000).map(|_| rng.uniform_f32(lo, hi)).collect();
    let mut obs = TensorObserver::new("u");
    obs.observe(&v).unwrap();
    obs.require_histogram().unwrap().clone()
}

#[test]
fn minmax_keeps_outliers() {
    let h = gaussian_with_outliers();
    assert_eq!(
        minmax(&h),
        Range {
            lo: -50.0,
            hi: 50.0
        }
    );
    let r = select_range(&h, RangeMethod::MinMax).unwrap();
    assert_eq!(
        r,
        Range {
            lo: -50.0,
            hi: 50.0
        }
    );
}

#[test]
fn percentile_hand_cases() {
    let pos = Histogram::from_counts(0.0, 4.0, vec![1.0; 4]).unwrap();
    assert_eq!(percentile(&pos, 75.0).unwrap(), Range { lo: 0.0, hi: 3.0 });
    let signed = Histogram::from_counts(-2.0, 2.0, vec![1.0; 4]).unwrap();
    assert_eq!(
        percentile(&signed, 75.0).unwrap(),
        Range { lo: -1.0, hi: 1.0 }
    );
    let neg = Histogram::from_counts(-4.0, 0.0, vec![1.0; 4]).unwrap();
    assert_eq!(percentile(&neg, 75.0).unwrap(), Range { lo: -3.0, hi: 0.0 });
    assert_eq!(
        percentile(&signed, 100.0).unwrap(),
        Range { lo: -2.0, hi: 2.0 }
    );
    for bad in [0.0, -1.0, 100.5, f64::NAN] {
        assert!(percentile(&signed, bad).is_err());
    }
}

#[test]
fn percentile_clips_outliers() {
    let h = gaussian_with_outliers();
    let r = percentile(&h, 99.99).unwrap();
    // The 0.01% tails of N(0,1) lie at ±3.72; 10 outliers in 100k shift that a little.
    assert!(r.hi > 3.0 && r.hi < 5.0, "{r:?}");
    assert!(r.lo < -3.0 && r.lo > -5.0, "{r:?}");
}

/// The L2 error by brute force: sample every bin finely and quantize each sample.
fn l2_error_sampled(h: &Histogram, start: usize, end: usize, dst: usize) -> f64 {
    let wlo = h.edge(start);
    let dst_w = (h.edge(end + 1) - wlo) / dst as f64;
    let m = 20_000;
    let mut err = 0.0;
    for (i, &c) in h.counts().iter().enumerate() {
        for s in 0..m {
            let x = h.edge(i) + (s as f64 + 0.5) / m as f64 * h.bin_width();
            let idx = ((x - wlo) / dst_w).floor().clamp(0.0, (dst - 1) as f64);
            let centre = wlo + (idx + 0.5) * dst_w;
            err += c / m as f64 * (x - centre).powi(2);
        }
    }
    err
}

#[test]
fn l2_error_matches_brute_force() {
    let h =
        Histogram::from_counts(-1.0, 3.0, vec![3.0, 0.0, 5.0, 2.0, 7.0, 1.0, 0.5, 4.0]).unwrap();
    for (start, end, dst) in [(0, 7, 4), (2, 5, 4), (1, 6, 3), (3, 3, 2), (0, 7, 256)] {
        let exact = l2_error(&h, start, end, dst);
        let sampled = l2_error_sampled(&h, start, end, dst);
        assert!(
            (exact - sampled).abs() <= 1e-4 * sampled.max(1e-12),
            "window {start}..={end} / {dst}: {exact} vs {sampled}"
        );
    }
}

#[test]
fn l2_error_of_uniform_grid_is_width_squared_over_twelve() {
    let h = Histogram::from_counts(0.0, 256.0, vec![1.0; 256]).unwrap();
    let e = l2_error(&h, 0, 255, 256);
    assert!((e - 256.0 / 12.0).abs() < 1e-9, "{e}");
}

/// 2M values of N(0,1) and one at 1000.
fn isolated_outlier() -> Histogram {
    let mut rng = Rng::new(9);
    let mut v = rng.normal_vec(2_000_000, 1.0);
    v.push(1000.0);
    let mut obs = TensorObserver::new("t");
    obs.observe(&v).unwrap();
    obs.require_histogram().unwrap().clone()
}

#[test]
fn l2_clips_outliers_but_not_uniform_data() {
    // One far outlier among 2M values: clipping it costs ~1000² but shrinks the step of every
    // other value ~100-fold, so the L2 window drops it.
    let h = isolated_outlier();
    let r = l2(&h, 8).unwrap();
    assert!(r.hi < 10.0 && r.hi > 3.0 && r.lo < -3.0, "{r:?}");
    // Ten isolated outliers at ±41..50 weigh a lot in the squared error: the greedy search (as
    // PyTorch's) clips only the first few of them before the error rises.
    let g = gaussian_with_outliers();
    let r = l2(&g, 8).unwrap();
    assert!(r.hi - r.lo < 100.0 && r.hi - r.lo > 80.0, "{r:?}");
    for h in [&h, &g] {
        let r = l2(h, 8).unwrap();
        let (s, e) = (h.bin_of(r.lo), h.bin_of(r.hi) - 1);
        assert!(l2_error(h, s, e, 256) < l2_error(h, 0, h.bins() - 1, 256));
    }
    let u = uniform(-1.0, 3.0, 11);
    let r = l2(&u, 8).unwrap();
    assert!(r.lo <= -0.98 && r.hi >= 2.98, "{r:?}");
    assert!(l2(&u, 0).is_err() && l2(&u, 17).is_err());
}

#[test]
fn kl_keeps_uniform_range() {
    // A uniform histogram quantizes without loss at the full range (KL = 0 there, > 0 below).
    let pos = Histogram::from_counts(0.0, 2.0, vec![3.0; 2048]).unwrap();
    assert_eq!(kl(&pos, 8).unwrap(), Range { lo: 0.0, hi: 2.0 });
    let sym = Histogram::from_counts(-2.0, 2.0, vec![3.0; 2048]).unwrap();
    assert_eq!(kl(&sym, 8).unwrap(), Range { lo: -2.0, hi: 2.0 });
}

#[test]
fn kl_clips_outliers() {
    let h = gaussian_with_outliers();
    let r = kl(&h, 8).unwrap();
    assert_eq!(r.lo, -r.hi, "signed data is calibrated symmetrically");
    assert!(r.hi > 2.0 && r.hi < 20.0, "{r:?}");
    // Post-ReLU (unsigned) search: 256 levels over [0, max].
    let relu = kl(&h.after_relu(), 8).unwrap();
    assert_eq!(relu.lo, 0.0);
    assert!(relu.hi > 2.0 && relu.hi < 20.0, "{relu:?}");
    assert!(kl(&h, 1).is_err());
    let small = Histogram::from_counts(-1.0, 1.0, vec![1.0; 64]).unwrap();
    assert!(kl(&small, 8).is_err(), "64 bins cannot hold 128 levels");
}

#[test]
fn kl_threshold_hand_case() {
    // Bins 0..4 with 4 levels: candidates i = 4 only; with 8 bins, candidates 4..=8.
    // Mass only in the first 4 bins: clipping at 4 loses nothing, and wider windows merge
    // non-empty and empty bins into coarser levels, so the best threshold is i = 4.
    let counts = [4.0, 1.0, 3.0, 2.0, 0.0, 0.0, 0.0, 0.0];
    assert_eq!(kl_threshold_bins(&counts, 4), Some(4));
    // A decreasing bulk of 16 bins and a thin tail of 48 bins: merging the bulk into groups of
    // 4 costs more than clipping the tail into the last kept bin, so the threshold stays low.
    let mut counts: Vec<f64> = (0..16).map(|k| 16.0 - k as f64).collect();
    counts.extend(vec![0.01; 48]);
    let i = kl_threshold_bins(&counts, 16).unwrap();
    assert!(i < 32, "threshold {i}");
    assert_eq!(kl_threshold_bins(&counts[..3], 4), None);
}

#[test]
fn degenerate_and_empty_histograms_return_their_range() {
    let point = Histogram::from_counts(1.5, 1.5, vec![5.0, 0.0]).unwrap();
    let empty = Histogram::new(16, -1.0, 1.0).unwrap();
    for m in [
        RangeMethod::MinMax,
        RangeMethod::Percentile(99.0),
        RangeMethod::L2 { bits: 8 },
        RangeMethod::Kl { bits: 8 },
    ] {
        assert_eq!(select_range(&point, m).unwrap(), Range { lo: 1.5, hi: 1.5 });
        assert_eq!(
            select_range(&empty, m).unwrap(),
            Range { lo: -1.0, hi: 1.0 }
        );
    }
}

#[test]
fn u8_qparams_represent_zero_exactly() {
    let mut rng = Rng::new(5);
    let mut ranges = vec![
        Range { lo: 2.0, hi: 5.0 },
        Range { lo: -5.0, hi: -2.0 },
        Range { lo: 0.0, hi: 0.0 },
        Range { lo: -1.0, hi: 1.0 },
    ];
    for _ in 0..1000 {
        let a = rng.uniform_f32(-10.0, 10.0);
        let b = rng.uniform_f32(-10.0, 10.0);
        ranges.push(Range {
            lo: a.min(b),
            hi: a.max(b),
        });
    }
    for r in ranges {
        let qp = r.u8_qparams();
        assert!(qp.scale.is_finite() && qp.scale > 0.0);
        assert!((0..=255).contains(&qp.zero_point), "{r:?} {qp:?}");
        let code = (0.0f32 / qp.scale).round() as i32 + qp.zero_point;
        assert_eq!(code, qp.zero_point);
        assert_eq!((code - qp.zero_point) as f32 * qp.scale, 0.0);
        // Both ends (widened to include 0) stay within half a step of the code range.
        for x in [r.lo.min(0.0), r.hi.max(0.0)] {
            let c = (x / qp.scale).round() as i32 + qp.zero_point;
            assert!((-1..=256).contains(&c), "{r:?} {qp:?} {x}");
            let back = (c.clamp(0, 255) - qp.zero_point) as f32 * qp.scale;
            assert!((back - x).abs() <= qp.scale * 1.0001, "{r:?} {x} -> {back}");
        }
    }
}

#[test]
fn s8_scale_and_relu_narrowing() {
    assert_eq!(
        Range { lo: -2.54, hi: 1.0 }.s8_symmetric_scale(),
        2.54 / 127.0
    );
    assert_eq!(Range { lo: 0.0, hi: 0.0 }.s8_symmetric_scale(), 1.0);
    assert_eq!(
        Range { lo: -3.0, hi: 5.0 }.relu_narrowed(),
        Range { lo: 0.0, hi: 5.0 }
    );
    assert_eq!(
        Range { lo: -3.0, hi: -1.0 }.relu_narrowed(),
        Range { lo: 0.0, hi: 0.0 }
    );
    // Narrowing the histogram: half of N(0,1) mass becomes a point mass at 0.
    let h = gaussian_with_outliers().after_relu();
    assert_eq!(h.lo(), 0.0);
    let frac0 = h.counts()[0] / h.total();
    assert!((frac0 - 0.5).abs() < 0.01, "{frac0}");
    let r = percentile(&h, 99.99).unwrap();
    assert_eq!(r.lo, 0.0);
}

/// Deterministic data that PyTorch and this test generate bit-identically: the sum of three
/// 22-bit LCG draws, centred and scaled by 2^-20 (exact in f32), plus the given outliers.
fn lcg_data(n: usize, seed: u64, outliers: &[f32]) -> Vec<f32> {
    let mut st = seed;
    let mut out: Vec<f32> = (0..n)
        .map(|_| {
            let mut s: i64 = -3 * (1 << 21);
            for _ in 0..3 {
                st = (1_664_525 * st + 1_013_904_223) % (1 << 32);
                s += (st >> 10) as i64;
            }
            (s as f64 / (1u64 << 20) as f64) as f32
        })
        .collect();
    out.extend_from_slice(outliers);
    out
}

/// Golden values from PyTorch 2.15 `HistogramObserver(bins=2048)` fed the same data (one
/// `forward` per batch), then `_non_linear_param_search()`:
/// ```text
/// obs = HistogramObserver(bins=2048)
/// for batch in batches: obs(torch.from_numpy(batch))
/// print(obs.min_val, obs.max_val, obs._non_linear_param_search())
/// ```
/// Single-batch histograms also match PyTorch's bin for bin (same `histc` binning); the grown
/// one differs slightly (PyTorch re-bins by 16× sub-bin midpoints, we by exact overlap) yet the
/// L2 window is the same.
#[test]
fn l2_matches_pytorch_histogram_observer() {
    let relu = |v: Vec<f32>| v.into_iter().map(|x| x.max(0.0)).collect::<Vec<f32>>();
    let grow: Vec<Vec<f32>> = (0..4u64)
        .map(|b| {
            lcg_data(5000, 10 + b, &[])
                .into_iter()
                .map(|x| x * (1 + b) as f32)
                .collect()
        })
        .collect();
    /// Name, batches, and PyTorch's [min, max, L2 lo, L2 hi].
    type Case<'a> = (&'a str, Vec<Vec<f32>>, [f64; 4]);
    let cases: Vec<Case<'_>> = vec![
        (
            "tri",
            vec![lcg_data(20_000, 1, &[])],
            [
                -5.776776313781738,
                5.864534378051758,
                -5.776776313781738,
                5.733797073364258,
            ],
        ),
        (
            "tri_out",
            vec![lcg_data(20_000, 2, &[40.0, -35.5, 22.25])],
            [-35.5, 40.0, -35.5, 39.963134765625],
        ),
        (
            "relu",
            vec![relu(lcg_data(20_000, 3, &[60.0]))],
            [0.0, 60.0, 0.0, 59.970703125],
        ),
        (
            "far_outlier",
            vec![lcg_data(1_000_000, 5, &[1000.0, -3.0])],
            [
                -5.952827453613281,
                1000.0,
                -5.952827453613281,
                5.835681915283203,
            ],
        ),
        (
            "grow",
            grow,
            [
                -23.156658172607422,
                21.98320770263672,
                -23.156658172607422,
                21.917083740234375,
            ],
        ),
    ];
    for (name, batches, [min, max, lo, hi]) in cases {
        let mut obs = TensorObserver::new(name);
        for b in &batches {
            obs.observe(b).unwrap();
        }
        let h = obs.require_histogram().unwrap();
        assert_eq!((h.lo() as f64, h.hi() as f64), (min, max), "{name}");
        let r = l2(h, 8).unwrap();
        let close = |a: f32, b: f64| (f64::from(a) - b).abs() <= 1e-6 * b.abs().max(1.0);
        assert!(
            close(r.lo, lo) && close(r.hi, hi),
            "{name}: {r:?} vs [{lo}, {hi}]"
        );
    }
}
