//! Streaming calibration observers: per-tensor min/max plus a histogram whose range grows with the
//! data, and per-channel weight ranges.
//!
//! # Histogram growth
//!
//! The histogram always spans exactly the running `[min, max]` of everything observed, with a fixed
//! number of bins ([`DEFAULT_BINS`] = 2048, as PyTorch's `HistogramObserver`). When a batch widens
//! the range, the old histogram is re-binned onto the new range by [`Histogram::rebinned`]: each
//! old bin's mass is taken as uniform over the bin and split across new bins by length of overlap;
//! then the new batch is counted directly into the new bins.
//!
//! New values are binned exactly as `torch.histc` bins them ([`Histogram::bin_of`]), so a
//! single batch gives PyTorch's histogram bin for bin.
//!
//! PyTorch (`torch/ao/quantization/observer.py`, `HistogramObserver.forward` and
//! `_combine_histograms`) approximates the same re-binning: in 2.x (checked against 2.15) the range
//! is also the exact union, and `_upscale_histogram` splits every old bin into `upsample_rate = 16`
//! equal sub-bins and drops each sub-bin's mass into the new bin holding the sub-bin's midpoint.
//! Older releases (`_adjust_min_max`) first stretched the new range so its width was an integer
//! multiple of `1/128` of the old width and summed aligned groups of 128× sub-bins. Our overlap
//! split is the exact limit of both schemes as the upsample rate grows. Other points worth
//! knowing:
//! - PyTorch drops ±inf with a warning (and NaN propagates); we refuse NaN and ±inf with
//!   [`QuantError::NonFinite`] naming the tensor and the index.
//! - Old PyTorch releases threw the old histogram away when its range was a single point; like
//!   PyTorch 2.x we keep it as a point mass and re-bin it into the bin that holds that point.
//!
//! # Merging
//!
//! [`TensorObserver::merge`] combines two observers of the same tensor (e.g. from parallel
//! calibration shards): the range becomes the union, both histograms are re-binned onto it and
//! added. Min, max and count merge exactly; the histogram merge is associative up to the
//! re-binning approximation (each re-binning can move mass by less than one bin).

use super::histogram::Histogram;
use super::range::{Range, RangeMethod, select_range};
use crate::{QuantError, Result};

/// Bins of an observer's histogram unless the caller asks for another count.
pub const DEFAULT_BINS: usize = 2048;

/// Streaming statistics of one tensor: exact min, max and count, and a histogram over `[min, max]`.
/// Deserializing checks that the histogram has the observer's bin count and that an observer
/// with a histogram has a count.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "ObserverRepr")]
pub struct TensorObserver {
    name: String,
    bins: usize,
    count: u64,
    hist: Option<Histogram>,
}

/// The serialized form of a [`TensorObserver`], checked on the way in.
#[derive(serde::Deserialize)]
struct ObserverRepr {
    name: String,
    bins: usize,
    count: u64,
    hist: Option<Histogram>,
}

impl TryFrom<ObserverRepr> for TensorObserver {
    type Error = QuantError;

    fn try_from(r: ObserverRepr) -> Result<TensorObserver> {
        let mut obs = TensorObserver::with_bins(r.name, r.bins)?;
        match (&r.hist, r.count) {
            (None, 0) => {}
            (Some(h), c) if h.bins() == r.bins && c > 0 => {}
            _ => {
                return Err(QuantError::SavedObserver {
                    tensor: obs.name,
                    count: r.count,
                    hist_bins: r.hist.as_ref().map(Histogram::bins),
                    bins: r.bins,
                });
            }
        }
        obs.count = r.count;
        obs.hist = r.hist;
        Ok(obs)
    }
}

impl TensorObserver {
    /// An observer of the tensor `name` with [`DEFAULT_BINS`] bins.
    pub fn new(name: impl Into<String>) -> TensorObserver {
        TensorObserver {
            name: name.into(),
            bins: DEFAULT_BINS,
            count: 0,
            hist: None,
        }
    }

    /// An observer with `bins` bins (at least 1).
    pub fn with_bins(name: impl Into<String>, bins: usize) -> Result<TensorObserver> {
        if bins == 0 {
            return Err(QuantError::ZeroBins { what: "observer" });
        }
        Ok(TensorObserver {
            bins,
            ..TensorObserver::new(name)
        })
    }

    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bins of the histogram.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// Number of values observed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Smallest value observed (`None` before any data).
    pub fn min(&self) -> Option<f32> {
        self.hist.as_ref().map(Histogram::lo)
    }

    /// Largest value observed (`None` before any data).
    pub fn max(&self) -> Option<f32> {
        self.hist.as_ref().map(Histogram::hi)
    }

    /// The histogram over `[min, max]` (`None` before any data).
    pub fn histogram(&self) -> Option<&Histogram> {
        self.hist.as_ref()
    }

    /// The histogram, or [`QuantError::Empty`] naming the tensor if nothing was observed.
    pub fn require_histogram(&self) -> Result<&Histogram> {
        self.hist.as_ref().ok_or_else(|| QuantError::Empty {
            what: format!("observer of tensor {}", self.name),
        })
    }

    /// The range `method` selects from the histogram; [`QuantError::Empty`] if nothing was observed.
    pub fn select(&self, method: RangeMethod) -> Result<Range> {
        select_range(self.require_histogram()?, method)
    }

    /// Adds a batch of values. Refuses NaN and ±inf (nothing is recorded then); an empty batch
    /// changes nothing.
    pub fn observe(&mut self, values: &[f32]) -> Result<()> {
        let (lo, hi) = finite_min_max(&self.name, values)?;
        if values.is_empty() {
            return Ok(());
        }
        let next = match self.hist.take() {
            None => {
                let mut h = Histogram::new(self.bins, lo, hi)?;
                h.add_values(values);
                h
            }
            Some(old) => {
                let new_lo = lo.min(old.lo());
                let new_hi = hi.max(old.hi());
                let mut h = if new_lo == old.lo() && new_hi == old.hi() {
                    old
                } else {
                    let mut h = Histogram::new(self.bins, new_lo, new_hi)?;
                    old.add_rebinned_into(&mut h);
                    h
                };
                h.add_values(values);
                h
            }
        };
        self.hist = Some(next);
        self.count += values.len() as u64;
        Ok(())
    }

    /// Merges another observer of the same tensor into this one (see the module docs). Refuses an
    /// observer of another tensor or with a different bin count.
    pub fn merge(&mut self, other: &TensorObserver) -> Result<()> {
        if other.name != self.name {
            return Err(QuantError::TensorMismatch {
                ours: self.name.clone(),
                theirs: other.name.clone(),
            });
        }
        if other.bins != self.bins {
            return Err(QuantError::BinsMismatch {
                what: format!("tensor {}", self.name),
                ours: self.bins,
                theirs: other.bins,
            });
        }
        let Some(theirs) = &other.hist else {
            return Ok(());
        };
        let merged = match self.hist.take() {
            None => theirs.clone(),
            Some(mine) => {
                let lo = mine.lo().min(theirs.lo());
                let hi = mine.hi().max(theirs.hi());
                if mine.lo() == lo && mine.hi() == hi && theirs.lo() == lo && theirs.hi() == hi {
                    let mut h = mine;
                    h.add_same_grid(theirs);
                    h
                } else {
                    let mut h = Histogram::new(self.bins, lo, hi)?;
                    mine.add_rebinned_into(&mut h);
                    theirs.add_rebinned_into(&mut h);
                    h
                }
            }
        };
        self.hist = Some(merged);
        self.count += other.count;
        Ok(())
    }
}

/// Min and max of `values`, refusing NaN and ±inf with an error naming `tensor` and the index.
/// Returns `(+inf, -inf)` for an empty slice.
pub fn finite_min_max(tensor: &str, values: &[f32]) -> Result<(f32, f32)> {
    let mut lo = f32::INFINITY;
    let mut hi = f32::NEG_INFINITY;
    for (i, &x) in values.iter().enumerate() {
        if !x.is_finite() {
            return Err(QuantError::NonFinite {
                tensor: tensor.to_string(),
                index: i,
                value: x,
            });
        }
        lo = lo.min(x);
        hi = hi.max(x);
    }
    Ok((lo, hi))
}

/// Min and max of every output row of an `n × k` row-major weight (row `j` holds the weights of
/// output channel `j`); [`Range::s8_symmetric_scale`] turns each into a per-channel scale.
/// Refuses a slice of the wrong length, `k == 0` with `n > 0`, and non-finite values (the error
/// names `tensor` and the flat index).
pub fn per_channel_min_max(tensor: &str, w: &[f32], n: usize, k: usize) -> Result<Vec<Range>> {
    let expected = n.checked_mul(k).ok_or_else(|| QuantError::WeightShape {
        tensor: tensor.to_string(),
        n,
        k,
    })?;
    if w.len() != expected {
        return Err(QuantError::Shape {
            what: format!("weight {tensor} ({n} x {k})"),
            expected,
            found: w.len(),
        });
    }
    if n > 0 && k == 0 {
        return Err(QuantError::WeightShape {
            tensor: tensor.to_string(),
            n,
            k,
        });
    }
    let mut out = Vec::with_capacity(n);
    for j in 0..n {
        let row = &w[j * k..(j + 1) * k];
        let (lo, hi) = finite_min_max(tensor, row).map_err(|e| match e {
            QuantError::NonFinite {
                tensor,
                index,
                value,
            } => QuantError::NonFinite {
                tensor,
                index: j * k + index,
                value,
            },
            other => other,
        })?;
        out.push(Range { lo, hi });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quantrec_kernels::rng::Rng;

    /// Largest absolute difference of the two cumulative distributions, as a fraction of the mass.
    fn cdf_distance(a: &Histogram, b: &Histogram) -> f64 {
        assert_eq!((a.lo(), a.hi(), a.bins()), (b.lo(), b.hi(), b.bins()));
        let (ta, tb) = (a.total(), b.total());
        let (mut ca, mut cb, mut worst) = (0.0, 0.0, 0.0f64);
        for (x, y) in a.counts().iter().zip(b.counts()) {
            ca += x / ta;
            cb += y / tb;
            worst = worst.max((ca - cb).abs());
        }
        worst
    }

    fn direct(values: &[f32], bins: usize) -> Histogram {
        let (lo, hi) = finite_min_max("t", values).unwrap();
        let mut h = Histogram::new(bins, lo, hi).unwrap();
        h.add_values(values);
        h
    }

    #[test]
    fn one_batch_equals_direct_histogram() {
        let mut rng = Rng::new(1);
        let v = rng.normal_vec(10_000, 1.0);
        let mut obs = TensorObserver::new("x");
        obs.observe(&v).unwrap();
        let h = obs.histogram().unwrap();
        assert_eq!(h, &direct(&v, DEFAULT_BINS));
        assert_eq!(obs.count(), 10_000);
        assert_eq!(h.total(), 10_000.0);
        let exact_min = v.iter().copied().fold(f32::INFINITY, f32::min);
        assert_eq!(obs.min(), Some(exact_min));
    }

    #[test]
    fn growing_range_stays_close_to_direct_histogram() {
        let mut rng = Rng::new(2);
        let mut all = Vec::new();
        let mut obs = TensorObserver::new("x");
        // Each batch is wider than the last, so the range grows every time.
        for b in 0..8 {
            let v = rng.normal_vec(4000, 0.5 + b as f32);
            obs.observe(&v).unwrap();
            all.extend_from_slice(&v);
        }
        let h = obs.histogram().unwrap();
        let d = direct(&all, DEFAULT_BINS);
        assert_eq!((h.lo(), h.hi()), (d.lo(), d.hi()));
        assert!((h.total() - all.len() as f64).abs() < 1e-6);
        // Re-binning moves mass by less than a bin per growth step; the CDFs stay within ~0.5%.
        let dist = cdf_distance(h, &d);
        assert!(dist < 5e-3, "cdf distance {dist}");
        assert!(dist > 0.0, "re-binning is expected to be approximate");
    }

    #[test]
    fn constant_first_batch_is_kept_as_point_mass() {
        let mut obs = TensorObserver::with_bins("x", 4).unwrap();
        obs.observe(&[1.0; 10]).unwrap();
        assert_eq!(obs.histogram().unwrap().counts(), &[10.0, 0.0, 0.0, 0.0]);
        obs.observe(&[0.0, 4.0]).unwrap();
        let h = obs.histogram().unwrap();
        assert_eq!((h.lo(), h.hi()), (0.0, 4.0));
        assert_eq!(h.counts(), &[1.0, 10.0, 0.0, 1.0]);
    }

    #[test]
    fn merge_is_exact_on_stats_and_close_to_associative() {
        let mut rng = Rng::new(3);
        let shards: Vec<Vec<f32>> = (0..3)
            .map(|s| {
                let mut v = rng.normal_vec(5000, 1.0 + s as f32);
                v.iter_mut().for_each(|x| *x += s as f32);
                v
            })
            .collect();
        let obs: Vec<TensorObserver> = shards
            .iter()
            .map(|v| {
                let mut o = TensorObserver::new("x");
                o.observe(v).unwrap();
                o
            })
            .collect();
        let mut left = obs[0].clone();
        left.merge(&obs[1]).unwrap();
        left.merge(&obs[2]).unwrap();
        let mut bc = obs[1].clone();
        bc.merge(&obs[2]).unwrap();
        let mut right = obs[0].clone();
        right.merge(&bc).unwrap();
        assert_eq!(left.count(), 15_000);
        assert_eq!(left.count(), right.count());
        assert_eq!((left.min(), left.max()), (right.min(), right.max()));
        let (hl, hr) = (left.histogram().unwrap(), right.histogram().unwrap());
        assert!((hl.total() - hr.total()).abs() < 1e-6);
        assert!(cdf_distance(hl, hr) < 2e-3);
        let all: Vec<f32> = shards.concat();
        assert!(cdf_distance(hl, &direct(&all, DEFAULT_BINS)) < 2e-3);
        // Merging with an empty observer changes nothing, in either order.
        let mut e = TensorObserver::new("x");
        e.merge(&left).unwrap();
        assert_eq!(e, left);
        let mut l2 = left.clone();
        l2.merge(&TensorObserver::new("x")).unwrap();
        assert_eq!(l2, left);
    }

    #[test]
    fn merge_refuses_other_bin_counts() {
        let mut a = TensorObserver::with_bins("x", 8).unwrap();
        let mut b = TensorObserver::with_bins("x", 16).unwrap();
        b.observe(&[1.0]).unwrap();
        assert!(matches!(
            a.merge(&b),
            Err(QuantError::BinsMismatch {
                ours: 8,
                theirs: 16,
                ..
            })
        ));
        let mut c = TensorObserver::with_bins("y", 8).unwrap();
        c.observe(&[1.0]).unwrap();
        assert!(matches!(
            a.merge(&c),
            Err(QuantError::TensorMismatch { .. })
        ));
        assert!(TensorObserver::with_bins("x", 0).is_err());
    }

    #[test]
    fn non_finite_input_names_tensor_and_index() {
        let mut obs = TensorObserver::new("dense.0.out");
        obs.observe(&[1.0, 2.0]).unwrap();
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let err = obs.observe(&[0.5, bad]).unwrap_err();
            match &err {
                QuantError::NonFinite { tensor, index, .. } => {
                    assert_eq!(tensor, "dense.0.out");
                    assert_eq!(*index, 1);
                }
                other => panic!("unexpected {other:?}"),
            }
            assert!(err.to_string().contains("dense.0.out"));
        }
        // Nothing was recorded from the refused batches.
        assert_eq!(obs.count(), 2);
        assert!(obs.require_histogram().is_ok());
        assert!(TensorObserver::new("e").require_histogram().is_err());
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let mut obs = TensorObserver::with_bins("x", 4).unwrap();
        obs.observe(&[1.0, 2.0, 5.0]).unwrap();
        let json = serde_json::to_string(&obs).unwrap();
        assert_eq!(serde_json::from_str::<TensorObserver>(&json).unwrap(), obs);
        let empty = serde_json::to_string(&TensorObserver::new("e")).unwrap();
        assert!(serde_json::from_str::<TensorObserver>(&empty).is_ok());
        let wrong_bins = json.replace("\"bins\":4", "\"bins\":8");
        assert!(serde_json::from_str::<TensorObserver>(&wrong_bins).is_err());
        let no_count = json.replace("\"count\":3", "\"count\":0");
        assert!(serde_json::from_str::<TensorObserver>(&no_count).is_err());
    }

    #[test]
    fn per_channel_ranges() {
        let w = [1.0, -2.0, 3.0, 0.5, 0.25, -0.125];
        assert_eq!(
            per_channel_min_max("w", &w, 2, 3).unwrap(),
            vec![
                Range { lo: -2.0, hi: 3.0 },
                Range {
                    lo: -0.125,
                    hi: 0.5
                }
            ]
        );
        assert!(matches!(
            per_channel_min_max("w", &w, 2, 2),
            Err(QuantError::Shape { .. })
        ));
        let mut bad = w;
        bad[4] = f32::NAN;
        match per_channel_min_max("w", &bad, 2, 3) {
            Err(QuantError::NonFinite { index, .. }) => assert_eq!(index, 4),
            other => panic!("unexpected {other:?}"),
        }
        assert!(per_channel_min_max("w", &[], 0, 0).unwrap().is_empty());
        assert!(per_channel_min_max("w", &[], 3, 0).is_err());
    }
}
