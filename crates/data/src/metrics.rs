//! Streaming accuracy metrics of a click model: normalized entropy, log loss, AUC, calibration.
//!
//! - **Log loss** is the mean binary cross-entropy `-(y ln p + (1 - y) ln(1 - p))` in nats. Each
//!   probability is first clipped to `[`[`PROB_CLIP`]`, 1 - `[`PROB_CLIP`]`]` (`1e-7`), so a confident
//!   miss costs at most `-ln(1e-7) ≈ 16.12` instead of infinity. This is the one place values are
//!   clipped, and only inside the logarithm: the calibration uses the prediction as given.
//! - **NE** (normalized entropy, He et al. 2014, "Practical Lessons from Predicting Clicks on Ads at
//!   Facebook") is the log loss divided by the entropy of the empirical CTR,
//!   `H(p) = -(p ln p + (1 - p) ln(1 - p))` with `p` the mean label. Lower is better; 1 is what
//!   always predicting the CTR achieves.
//! - **AUC** is exact: scores are sorted and tied scores share their average rank (the
//!   Mann–Whitney U statistic), so a constant predictor scores exactly 0.5. It needs every score in
//!   memory (8 bytes per sample), so it is opt-in: [`MetricsAccumulator::with_auc`].
//! - **Calibration** is mean prediction / CTR (1 is perfectly calibrated on average).
//!
//! Undefined metrics are `None`, never NaN: NE and calibration when there are no samples or the CTR
//! is 0 (NE also when the CTR is 1); AUC unless both labels are present.
//!
//! Labels must be exactly 0 or 1 and predictions finite probabilities in `[0, 1]`; anything else
//! is refused with [`DataError::MetricInput`].

use crate::error::DataError;

/// Probabilities are clipped to `[PROB_CLIP, 1 - PROB_CLIP]` inside the log loss.
pub const PROB_CLIP: f64 = 1e-7;

/// Binary cross-entropy of one prediction, with [`PROB_CLIP`] clipping.
pub fn log_loss_one(prob: f64, label: f64) -> f64 {
    let p = prob.clamp(PROB_CLIP, 1.0 - PROB_CLIP);
    -(label * p.ln() + (1.0 - label) * (1.0 - p).ln())
}

/// Entropy in nats of a Bernoulli variable with mean `p` (0 at `p` = 0 or 1).
pub fn bernoulli_entropy(p: f64) -> f64 {
    let term = |q: f64| if q > 0.0 { -q * q.ln() } else { 0.0 };
    term(p) + term(1.0 - p)
}

/// Relative NE change in percent: `100 · (ne_q − ne_ref) / ne_ref` (positive = the candidate is worse).
pub fn delta_ne_percent(ne_q: f64, ne_ref: f64) -> f64 {
    100.0 * (ne_q - ne_ref) / ne_ref
}

/// AUC change in absolute AUC units: `auc_q − auc_ref` (negative = the candidate is worse).
pub fn delta_auc(auc_q: f64, auc_ref: f64) -> f64 {
    auc_q - auc_ref
}

/// The O(1)-memory part: count, label sum, prediction sum and log-loss sum (all in f64).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LossAccumulator {
    count: u64,
    sum_labels: f64,
    sum_preds: f64,
    sum_log_loss: f64,
}

impl LossAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sample (checked: see the module docs).
    pub fn push(&mut self, prob: f32, label: f32) -> Result<(), DataError> {
        check(prob, label, self.count)?;
        self.push_unchecked(f64::from(prob), f64::from(label));
        Ok(())
    }

    fn push_unchecked(&mut self, prob: f64, label: f64) {
        self.count += 1;
        self.sum_labels += label;
        self.sum_preds += prob;
        self.sum_log_loss += log_loss_one(prob, label);
    }

    /// Adds a slice of predictions and their labels (same length).
    pub fn extend(&mut self, probs: &[f32], labels: &[f32]) -> Result<(), DataError> {
        each_pair(probs, labels, |p, y| self.push(p, y))
    }

    /// Adds one sample with an f64 probability (used by the synthetic teacher).
    pub fn push_f64(&mut self, prob: f64, label: f32) -> Result<(), DataError> {
        if !(prob.is_finite() && (0.0..=1.0).contains(&prob)) {
            return Err(DataError::MetricInput {
                what: "prediction",
                expected: "a finite probability in [0, 1]",
                found: prob,
                index: self.count,
            });
        }
        check(0.5, label, self.count)?;
        self.push_unchecked(prob, f64::from(label));
        Ok(())
    }

    /// Adds everything `other` has seen.
    pub fn merge(&mut self, other: &LossAccumulator) {
        self.count += other.count;
        self.sum_labels += other.sum_labels;
        self.sum_preds += other.sum_preds;
        self.sum_log_loss += other.sum_log_loss;
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Number of positive labels.
    pub fn positives(&self) -> u64 {
        self.sum_labels.round() as u64
    }

    /// Mean label (`None` without samples).
    pub fn ctr(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_labels / self.count as f64)
    }

    /// Mean prediction (`None` without samples).
    pub fn mean_prediction(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_preds / self.count as f64)
    }

    /// Mean clipped log loss in nats (`None` without samples).
    pub fn log_loss(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_log_loss / self.count as f64)
    }

    /// Normalized entropy (`None` without samples or when all labels are equal).
    pub fn ne(&self) -> Option<f64> {
        let ctr = self.ctr()?;
        let h = bernoulli_entropy(ctr);
        (h > 0.0).then(|| self.log_loss().unwrap_or(0.0) / h)
    }

    /// Mean prediction / CTR (`None` without samples or positives).
    pub fn calibration(&self) -> Option<f64> {
        let ctr = self.ctr()?;
        (ctr > 0.0).then(|| self.mean_prediction().unwrap_or(0.0) / ctr)
    }
}

/// Exact AUC over every (score, label) seen; O(n) memory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AucAccumulator {
    samples: Vec<(f32, bool)>,
}

impl AucAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sample (checked: see the module docs).
    pub fn push(&mut self, prob: f32, label: f32) -> Result<(), DataError> {
        check(prob, label, self.samples.len() as u64)?;
        self.samples.push((prob, label == 1.0));
        Ok(())
    }

    /// Adds everything `other` has seen.
    pub fn merge(&mut self, other: &AucAccumulator) {
        self.samples.extend_from_slice(&other.samples);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.samples.len() as u64
    }

    /// The AUC with average ranks for ties (`None` unless both labels are present).
    pub fn auc(&self) -> Option<f64> {
        let pos = self.samples.iter().filter(|s| s.1).count();
        let neg = self.samples.len() - pos;
        if pos == 0 || neg == 0 {
            return None;
        }
        let mut sorted = self.samples.clone();
        sorted.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        // Sum of the (1-based) ranks of the positives; a run of equal scores at ranks i+1..=j
        // all get the average rank (i + 1 + j) / 2.
        let mut rank_sum = 0.0f64;
        let mut i = 0;
        while i < sorted.len() {
            let mut j = i + 1;
            while j < sorted.len() && sorted[j].0 == sorted[i].0 {
                j += 1;
            }
            let positives_in_run = sorted[i..j].iter().filter(|s| s.1).count();
            rank_sum += positives_in_run as f64 * (i + 1 + j) as f64 / 2.0;
            i = j;
        }
        let (p, n) = (pos as f64, neg as f64);
        Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
    }
}

/// Every metric of one evaluation (serialized with these field names; `None` as `null`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// Number of samples.
    pub count: u64,
    /// Mean label.
    pub ctr: Option<f64>,
    /// Mean clipped log loss (nats).
    pub log_loss: Option<f64>,
    /// Normalized entropy.
    pub ne: Option<f64>,
    /// Exact AUC (`None` when not tracked or only one label present).
    pub auc: Option<f64>,
    /// Mean prediction / CTR.
    pub calibration: Option<f64>,
}

/// Log loss, NE and calibration always; AUC when built [`with_auc`](Self::with_auc).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsAccumulator {
    loss: LossAccumulator,
    auc: Option<AucAccumulator>,
}

impl MetricsAccumulator {
    /// Tracks log loss, NE and calibration (O(1) memory).
    pub fn new() -> Self {
        Self::default()
    }

    /// Also tracks the exact AUC (keeps every score: O(n) memory).
    pub fn with_auc() -> Self {
        MetricsAccumulator {
            loss: LossAccumulator::new(),
            auc: Some(AucAccumulator::new()),
        }
    }

    /// Adds one sample.
    pub fn push(&mut self, prob: f32, label: f32) -> Result<(), DataError> {
        self.loss.push(prob, label)?;
        if let Some(auc) = &mut self.auc {
            auc.push(prob, label)?;
        }
        Ok(())
    }

    /// Adds a batch of predictions and their labels (same length).
    pub fn extend(&mut self, probs: &[f32], labels: &[f32]) -> Result<(), DataError> {
        each_pair(probs, labels, |p, y| self.push(p, y))
    }

    /// Adds one sample with an f64 probability (the log loss uses it in f64, the AUC as f32).
    pub fn push_f64(&mut self, prob: f64, label: f32) -> Result<(), DataError> {
        self.loss.push_f64(prob, label)?;
        if let Some(auc) = &mut self.auc {
            auc.push(prob as f32, label)?;
        }
        Ok(())
    }

    /// Adds everything `other` has seen. AUC stays tracked only if both track it.
    pub fn merge(&mut self, other: &MetricsAccumulator) {
        self.loss.merge(&other.loss);
        match (&mut self.auc, &other.auc) {
            (Some(a), Some(b)) => a.merge(b),
            (Some(_), None) => self.auc = None,
            _ => {}
        }
    }

    /// The O(1) part.
    pub fn loss(&self) -> &LossAccumulator {
        &self.loss
    }

    /// Every metric so far.
    pub fn metrics(&self) -> Metrics {
        Metrics {
            count: self.loss.count(),
            ctr: self.loss.ctr(),
            log_loss: self.loss.log_loss(),
            ne: self.loss.ne(),
            auc: self.auc.as_ref().and_then(AucAccumulator::auc),
            calibration: self.loss.calibration(),
        }
    }
}

fn check(prob: f32, label: f32, index: u64) -> Result<(), DataError> {
    if !(prob.is_finite() && (0.0..=1.0).contains(&prob)) {
        return Err(DataError::MetricInput {
            what: "prediction",
            expected: "a finite probability in [0, 1]",
            found: f64::from(prob),
            index,
        });
    }
    if label != 0.0 && label != 1.0 {
        return Err(DataError::MetricInput {
            what: "label",
            expected: "0 or 1",
            found: f64::from(label),
            index,
        });
    }
    Ok(())
}

/// Calls `push` on every (prediction, label) pair after checking the lengths agree.
fn each_pair(
    probs: &[f32],
    labels: &[f32],
    mut push: impl FnMut(f32, f32) -> Result<(), DataError>,
) -> Result<(), DataError> {
    check_lengths(probs, labels)?;
    probs.iter().zip(labels).try_for_each(|(&p, &y)| push(p, y))
}

fn check_lengths(probs: &[f32], labels: &[f32]) -> Result<(), DataError> {
    if probs.len() != labels.len() {
        return Err(DataError::MetricInput {
            what: "label count",
            expected: "as many labels as predictions",
            found: labels.len() as f64,
            index: probs.len() as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_computed_log_loss_ne_calibration() {
        // probs [0.9, 0.2, 0.6, 0.3], labels [1, 0, 0, 1]
        // losses: -ln 0.9 = 0.1053605157, -ln 0.8 = 0.2231435513, -ln 0.4 = 0.9162907319,
        //         -ln 0.3 = 1.2039728043; mean = 2.4487676032 / 4 = 0.6121919008
        // CTR = 0.5, H = ln 2 = 0.6931471806, NE = 0.6121919008 / 0.6931471806 = 0.8832059...
        // mean prediction = 2.0 / 4 = 0.5, calibration = 1.0
        let mut acc = MetricsAccumulator::with_auc();
        acc.extend(&[0.9, 0.2, 0.6, 0.3], &[1.0, 0.0, 0.0, 1.0])
            .unwrap();
        let m = acc.metrics();
        let expect_ll = -((0.9f32 as f64).ln()
            + (1.0 - 0.2f32 as f64).ln()
            + (1.0 - 0.6f32 as f64).ln()
            + (0.3f32 as f64).ln())
            / 4.0;
        assert!((expect_ll - 0.6121919008).abs() < 1e-7);
        assert!(close(m.log_loss.unwrap(), expect_ll));
        assert!((m.ne.unwrap() - 0.6121919008 / std::f64::consts::LN_2).abs() < 1e-7);
        assert!((m.ne.unwrap() - 0.88320).abs() < 1e-4);
        assert!((m.calibration.unwrap() - 1.0).abs() < 1e-7);
        assert_eq!(m.count, 4);
        assert_eq!(m.ctr, Some(0.5));
        // AUC: positives score 0.9 and 0.3, negatives 0.6 and 0.2. Pairs (pos > neg):
        // 0.9>0.6, 0.9>0.2, 0.3>0.2 → 3 of 4 = 0.75.
        assert_eq!(m.auc, Some(0.75));
    }

    #[test]
    fn auc_ties_take_average_rank() {
        // scores [0.5, 0.5, 0.5, 0.8], labels [1, 0, 0, 1]
        // pairs: pos 0.5 vs neg 0.5 (x2) → 0.5 each = 1.0; pos 0.8 vs both negs → 2.
        // AUC = 3 / 4 = 0.75.
        let mut acc = AucAccumulator::new();
        for (p, y) in [(0.5, 1.0), (0.5, 0.0), (0.5, 0.0), (0.8, 1.0)] {
            acc.push(p, y).unwrap();
        }
        assert_eq!(acc.auc(), Some(0.75));
        // A constant predictor is exactly 0.5.
        let mut c = AucAccumulator::new();
        for i in 0..10 {
            c.push(0.3, (i % 3 == 0) as u8 as f32).unwrap();
        }
        assert_eq!(c.auc(), Some(0.5));
        // Perfectly wrong ranking is 0.
        let mut w = AucAccumulator::new();
        w.push(0.1, 1.0).unwrap();
        w.push(0.9, 0.0).unwrap();
        assert_eq!(w.auc(), Some(0.0));
    }

    #[test]
    fn clipping_bounds_the_loss() {
        // p = 0 with label 1: clipped to 1e-7, loss = -ln(1e-7) = 16.118095651.
        let mut acc = LossAccumulator::new();
        acc.push(0.0, 1.0).unwrap();
        assert!((acc.log_loss().unwrap() - 16.118095651).abs() < 1e-6);
        // p = 1 with label 1: clipped to 1 - 1e-7, loss ≈ 1e-7.
        let mut acc = LossAccumulator::new();
        acc.push(1.0, 1.0).unwrap();
        assert!((acc.log_loss().unwrap() - 1.00000005e-7).abs() < 1e-12);
    }

    #[test]
    fn degenerate_cases_are_none() {
        let empty = MetricsAccumulator::with_auc().metrics();
        assert_eq!(
            (empty.ne, empty.log_loss, empty.auc, empty.calibration),
            (None, None, None, None)
        );
        let mut all_neg = MetricsAccumulator::with_auc();
        all_neg.extend(&[0.1, 0.2], &[0.0, 0.0]).unwrap();
        let m = all_neg.metrics();
        assert_eq!((m.ne, m.auc, m.calibration), (None, None, None));
        assert!(m.log_loss.is_some());
        let mut all_pos = MetricsAccumulator::with_auc();
        all_pos.extend(&[0.7, 0.8], &[1.0, 1.0]).unwrap();
        let m = all_pos.metrics();
        assert_eq!((m.ne, m.auc), (None, None));
        assert!((m.calibration.unwrap() - 0.75).abs() < 1e-7);
    }

    #[test]
    fn bad_inputs_are_refused() {
        let mut acc = MetricsAccumulator::with_auc();
        assert!(matches!(
            acc.push(f32::NAN, 1.0),
            Err(DataError::MetricInput {
                what: "prediction",
                ..
            })
        ));
        assert!(acc.push(1.5, 1.0).is_err());
        assert!(matches!(
            acc.push(0.5, 0.5),
            Err(DataError::MetricInput { what: "label", .. })
        ));
        assert!(acc.extend(&[0.5], &[]).is_err());
        assert_eq!(acc.metrics().count, 0);
    }

    #[test]
    fn merge_equals_single_pass() {
        let probs = [0.1f32, 0.7, 0.4, 0.4, 0.95, 0.3];
        let labels = [0.0f32, 1.0, 0.0, 1.0, 1.0, 0.0];
        let mut whole = MetricsAccumulator::with_auc();
        whole.extend(&probs, &labels).unwrap();
        let mut a = MetricsAccumulator::with_auc();
        let mut b = MetricsAccumulator::with_auc();
        a.extend(&probs[..2], &labels[..2]).unwrap();
        b.extend(&probs[2..], &labels[2..]).unwrap();
        a.merge(&b);
        let (m1, m2) = (whole.metrics(), a.metrics());
        assert_eq!(m1.count, m2.count);
        assert_eq!(m1.auc, m2.auc);
        assert!(close(m1.ne.unwrap(), m2.ne.unwrap()));
        // Merging with an accumulator that did not track AUC drops it.
        let mut c = MetricsAccumulator::new();
        c.extend(&probs, &labels).unwrap();
        a.merge(&c);
        assert_eq!(a.metrics().auc, None);
        assert_eq!(a.metrics().count, 12);
    }

    #[test]
    fn delta_helpers() {
        // ne_q = 0.81, ne_ref = 0.80 → +1.25 %
        assert!((delta_ne_percent(0.81, 0.80) - 1.25).abs() < 1e-12);
        assert!((delta_auc(0.79, 0.80) + 0.01).abs() < 1e-12);
        assert!(close(bernoulli_entropy(0.5), std::f64::consts::LN_2));
        assert_eq!(bernoulli_entropy(0.0), 0.0);
    }
}
