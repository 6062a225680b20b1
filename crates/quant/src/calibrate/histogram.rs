//! A fixed-bin-count histogram over a closed range, with exact re-binning into another range.
//!
//! Bin `i` of a histogram over `[lo, hi]` with `n` bins covers `[lo + i·w, lo + (i+1)·w)` with
//! `w = (hi - lo) / n`; the last bin also holds `hi` (the convention of `torch.histc`). Counts are
//! `f64` because re-binning splits a bin's mass across several new bins.
//!
//! A degenerate histogram (`lo == hi`, e.g. after a batch of identical values) holds all of its
//! mass as a point mass at `lo`, stored in bin 0.

use crate::{QuantError, Result};

/// Counts of values in equal-width bins over `[lo, hi]`. Deserializing validates like
/// [`Histogram::from_counts`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "HistogramRepr")]
pub struct Histogram {
    lo: f32,
    hi: f32,
    counts: Vec<f64>,
}

/// The serialized form of a [`Histogram`], checked on the way in.
#[derive(serde::Deserialize)]
struct HistogramRepr {
    lo: f32,
    hi: f32,
    counts: Vec<f64>,
}

impl TryFrom<HistogramRepr> for Histogram {
    type Error = QuantError;

    fn try_from(r: HistogramRepr) -> Result<Histogram> {
        Histogram::from_counts(r.lo, r.hi, r.counts)
    }
}

impl Histogram {
    /// An empty histogram with `bins` bins over `[lo, hi]`. Refuses zero bins and a range that is
    /// not finite or has `lo > hi`.
    pub fn new(bins: usize, lo: f32, hi: f32) -> Result<Histogram> {
        if bins == 0 {
            return Err(QuantError::ZeroBins { what: "histogram" });
        }
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(QuantError::HistogramRange { lo, hi });
        }
        Ok(Histogram {
            lo,
            hi,
            counts: vec![0.0; bins],
        })
    }

    /// A histogram with the given counts over `[lo, hi]` (for tests and for callers that build
    /// their own). Refuses negative or non-finite counts, and mass outside bin 0 of a degenerate
    /// range.
    pub fn from_counts(lo: f32, hi: f32, counts: Vec<f64>) -> Result<Histogram> {
        let mut h = Histogram::new(counts.len(), lo, hi)?;
        if let Some(i) = counts.iter().position(|c| !(c.is_finite() && *c >= 0.0)) {
            return Err(QuantError::HistogramCount {
                bin: i,
                count: counts[i],
            });
        }
        if lo == hi && counts.iter().skip(1).any(|&c| c > 0.0) {
            return Err(QuantError::PointMassOutsideBin0 { lo });
        }
        h.counts = counts;
        Ok(h)
    }

    /// Lower end of the range.
    pub fn lo(&self) -> f32 {
        self.lo
    }

    /// Upper end of the range.
    pub fn hi(&self) -> f32 {
        self.hi
    }

    /// Number of bins.
    pub fn bins(&self) -> usize {
        self.counts.len()
    }

    /// The counts, one per bin.
    pub fn counts(&self) -> &[f64] {
        &self.counts
    }

    /// Width of one bin (0 for a degenerate range).
    pub fn bin_width(&self) -> f64 {
        (f64::from(self.hi) - f64::from(self.lo)) / self.counts.len() as f64
    }

    /// Lower edge of bin `i` (`i == bins()` gives `hi`).
    pub fn edge(&self, i: usize) -> f64 {
        f64::from(self.lo) + self.bin_width() * i as f64
    }

    /// Total mass.
    pub fn total(&self) -> f64 {
        self.counts.iter().sum()
    }

    /// The bin that holds `x` (values outside the range go to the nearest end bin).
    ///
    /// Computed as `torch.histc` does on CPU (ATen's `LINEAR_INTERPOLATION` bin selection):
    /// `floor((x - lo) * bins / (hi - lo))` in f32 arithmetic, with `x == hi` in the last bin, so
    /// that a batch is binned exactly as PyTorch bins it. When `hi - lo` overflows f32 the same
    /// formula is evaluated in f64.
    pub fn bin_of(&self, x: f32) -> usize {
        let n = self.counts.len();
        if self.hi <= self.lo {
            return 0;
        }
        let width = self.hi - self.lo;
        let pos = if width.is_finite() {
            f64::from((x - self.lo) * n as f32 / width)
        } else {
            (f64::from(x) - f64::from(self.lo)) * n as f64
                / (f64::from(self.hi) - f64::from(self.lo))
        };
        if pos > 0.0 {
            (pos as usize).min(n - 1)
        } else {
            0
        }
    }

    /// Adds finite `values` that lie within `[lo, hi]`. The caller (the observer) has checked
    /// finiteness and range; values outside the range would land in the end bins.
    pub(crate) fn add_values(&mut self, values: &[f32]) {
        for &x in values {
            let b = self.bin_of(x);
            self.counts[b] += 1.0;
        }
    }

    /// Adds another histogram over the same range and bin count, bin by bin.
    pub(crate) fn add_same_grid(&mut self, other: &Histogram) {
        debug_assert!(self.lo == other.lo && self.hi == other.hi && self.bins() == other.bins());
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// This histogram's mass re-binned onto `bins` bins over `[lo, hi]`.
    ///
    /// Method (the limit of PyTorch `HistogramObserver._combine_histograms` as its upsample rate
    /// grows): the mass of each source bin is taken as uniformly spread over the bin and split
    /// across the target bins in proportion to the length of overlap. A degenerate source is a
    /// point mass that goes whole into the target bin holding it. Mass that falls outside
    /// `[lo, hi]` is clipped into the nearest end bin, so the total is preserved.
    pub fn rebinned(&self, bins: usize, lo: f32, hi: f32) -> Result<Histogram> {
        let mut out = Histogram::new(bins, lo, hi)?;
        self.add_rebinned_into(&mut out);
        Ok(out)
    }

    /// Adds this histogram's mass into `out`, re-binned as in [`Histogram::rebinned`].
    pub(crate) fn add_rebinned_into(&self, out: &mut Histogram) {
        if self.lo == self.hi {
            out.deposit(f64::from(self.lo), f64::from(self.lo), self.counts[0]);
            return;
        }
        for (i, &c) in self.counts.iter().enumerate() {
            if c > 0.0 {
                out.deposit(self.edge(i), self.edge(i + 1), c);
            }
        }
    }

    /// Adds `mass` spread uniformly over the values `[a, b)` (a point mass if `a == b`), split
    /// across bins by length of overlap; mass outside the range goes to the nearest end bin.
    pub(crate) fn deposit(&mut self, a: f64, b: f64, mass: f64) {
        let n = self.counts.len();
        let n_f = n as f64;
        let lo = f64::from(self.lo);
        let w = self.bin_width();
        if w <= 0.0 {
            self.counts[0] += mass;
            return;
        }
        // The segment in units of bins.
        let (a, b) = ((a - lo) / w, (b - lo) / w);
        if b <= a {
            let bin = if a <= 0.0 {
                0
            } else {
                (a.floor() as usize).min(n - 1)
            };
            self.counts[bin] += mass;
            return;
        }
        let len = b - a;
        if b <= 0.0 {
            self.counts[0] += mass;
            return;
        }
        if a >= n_f {
            self.counts[n - 1] += mass;
            return;
        }
        if a < 0.0 {
            self.counts[0] += mass * (-a) / len;
        }
        if b > n_f {
            self.counts[n - 1] += mass * (b - n_f) / len;
        }
        let first = a.max(0.0).floor() as usize;
        let last = (b.min(n_f).ceil() as usize).min(n);
        for j in first..last {
            let overlap = (b.min(j as f64 + 1.0) - a.max(j as f64)).max(0.0);
            self.counts[j] += mass * overlap / len;
        }
    }

    /// The histogram of `|x|` with `bins` bins over `[0, max(|lo|, |hi|)]`: negative bins are
    /// mirrored (a bin straddling 0 is split in proportion) and re-binned by overlap.
    pub fn folded_abs(&self, bins: usize) -> Result<Histogram> {
        let amax = self.lo.abs().max(self.hi.abs());
        let mut out = Histogram::new(bins, 0.0, amax)?;
        if self.lo == self.hi {
            let x = f64::from(self.lo).abs();
            out.deposit(x, x, self.counts[0]);
            return Ok(out);
        }
        for (i, &c) in self.counts.iter().enumerate() {
            if c <= 0.0 {
                continue;
            }
            let (a, b) = (self.edge(i), self.edge(i + 1));
            if a >= 0.0 {
                out.deposit(a, b, c);
            } else if b <= 0.0 {
                out.deposit(-b, -a, c);
            } else {
                let len = b - a;
                out.deposit(0.0, b, c * b / len);
                out.deposit(0.0, -a, c * (-a) / len);
            }
        }
        Ok(out)
    }

    /// The histogram of `max(x, 0)`: the range becomes `[0, max(hi, 0)]` (same bin count) and all
    /// mass below 0 becomes a point mass at 0 (bin 0). Used for tensors that only feed a ReLU.
    pub fn after_relu(&self) -> Histogram {
        let hi = self.hi.max(0.0);
        let mut out = Histogram {
            lo: 0.0,
            hi,
            counts: vec![0.0; self.bins()],
        };
        self.add_rebinned_into(&mut out);
        out
    }

    /// The value below which a fraction `q` (in `[0, 1]`) of the mass lies, interpolating linearly
    /// inside the bin where the cumulative mass crosses `q · total`.
    pub fn quantile(&self, q: f64) -> f64 {
        let total = self.total();
        if total <= 0.0 || self.lo == self.hi {
            return f64::from(self.lo);
        }
        let target = q.clamp(0.0, 1.0) * total;
        let w = self.bin_width();
        let mut cum = 0.0;
        for (i, &c) in self.counts.iter().enumerate() {
            if c > 0.0 && cum + c >= target {
                let frac = ((target - cum) / c).clamp(0.0, 1.0);
                return self.edge(i) + frac * w;
            }
            cum += c;
        }
        f64::from(self.hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binning_follows_histc_convention() {
        let mut h = Histogram::new(4, 0.0, 4.0).unwrap();
        h.add_values(&[0.0, 0.99, 1.0, 3.5, 4.0]);
        assert_eq!(h.counts(), &[2.0, 1.0, 0.0, 2.0]);
    }

    #[test]
    fn rebin_splits_mass_by_overlap() {
        // Bins [0,1),[1,2) with 2 and 4; into [0,4] with 2 bins of width 2: all in bin 0.
        let h = Histogram::from_counts(0.0, 2.0, vec![2.0, 4.0]).unwrap();
        let r = h.rebinned(2, 0.0, 4.0).unwrap();
        assert_eq!(r.counts(), &[6.0, 0.0]);
        // Into [-1, 2] with 3 bins of width 1: shifted by one bin.
        let r = h.rebinned(3, -1.0, 2.0).unwrap();
        assert_eq!(r.counts(), &[0.0, 2.0, 4.0]);
        // Into [0.5, 2] with 3 bins of width 0.5: bin [0,1) is half clipped into bin 0.
        let r = h.rebinned(3, 0.5, 2.0).unwrap();
        assert_eq!(r.counts(), &[2.0, 2.0, 2.0]);
    }

    #[test]
    fn point_mass_rebins_whole() {
        let h = Histogram::from_counts(1.5, 1.5, vec![7.0, 0.0, 0.0]).unwrap();
        let r = h.rebinned(3, 0.0, 3.0).unwrap();
        assert_eq!(r.counts(), &[0.0, 7.0, 0.0]);
        assert!(Histogram::from_counts(1.0, 1.0, vec![1.0, 1.0]).is_err());
    }

    #[test]
    fn relu_moves_negative_mass_to_zero() {
        let h = Histogram::from_counts(-2.0, 2.0, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let r = h.after_relu();
        assert_eq!((r.lo(), r.hi()), (0.0, 2.0));
        // Bins of width 0.5: [0,1) holds 3 spread over two bins, [1,2) holds 4.
        assert_eq!(r.counts(), &[1.0 + 2.0 + 1.5, 1.5, 2.0, 2.0]);
        assert_eq!(r.total(), h.total());
    }

    #[test]
    fn fold_mirrors_negative_mass() {
        // [-2,-1):1, [-1,0):2, [0,1):3, [1,2]:4  ->  |x| in [0,1): 2+3, [1,2]: 1+4.
        let h = Histogram::from_counts(-2.0, 2.0, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(h.folded_abs(2).unwrap().counts(), &[5.0, 5.0]);
        // A bin straddling 0 is split: [-1, 3) in one bin of 4, folded onto [0, 3] in 3 bins.
        let h = Histogram::from_counts(-1.0, 3.0, vec![4.0]).unwrap();
        assert_eq!(h.folded_abs(3).unwrap().counts(), &[2.0, 1.0, 1.0]);
    }

    #[test]
    fn quantile_interpolates_inside_a_bin() {
        let h = Histogram::from_counts(0.0, 4.0, vec![1.0, 1.0, 1.0, 1.0]).unwrap();
        assert_eq!(h.quantile(0.5), 2.0);
        assert_eq!(h.quantile(0.125), 0.5);
        assert_eq!(h.quantile(1.0), 4.0);
        assert_eq!(h.quantile(0.0), 0.0);
    }

    #[test]
    fn deserializing_validates() {
        let h = Histogram::from_counts(-1.0, 1.0, vec![1.0, 2.5]).unwrap();
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Histogram>(&json).unwrap(), h);
        for bad in [
            r#"{"lo":0.0,"hi":1.0,"counts":[]}"#,
            r#"{"lo":2.0,"hi":1.0,"counts":[1.0]}"#,
            r#"{"lo":0.0,"hi":1.0,"counts":[-1.0]}"#,
        ] {
            assert!(serde_json::from_str::<Histogram>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(Histogram::new(0, 0.0, 1.0).is_err());
        assert!(Histogram::new(4, 1.0, 0.0).is_err());
        assert!(Histogram::new(4, 0.0, f32::INFINITY).is_err());
        assert!(Histogram::from_counts(0.0, 1.0, vec![1.0, -1.0]).is_err());
    }
}
