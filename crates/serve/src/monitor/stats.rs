//! Accuracy of one model version on labelled live traffic: since load, over a sliding window of
//! the latest labelled rows, and paired against a reference scored on the very same rows.
//!
//! Every figure comes from [`quantrec_data::metrics`], the accumulators `quantrec eval` uses, fed
//! in label-arrival order, so the NE of a set of rows is the NE `eval` gives on those rows.

use std::collections::VecDeque;

use quantrec_data::metrics::{
    AucAccumulator, LossAccumulator, Metrics, MetricsAccumulator, delta_ne_percent,
};

/// Metrics of a set of labelled rows, as reported.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Figures {
    /// Labelled rows counted.
    pub rows: u64,
    /// Normalized entropy.
    pub ne: Option<f64>,
    /// Mean clipped log loss (nats).
    pub log_loss: Option<f64>,
    /// Exact AUC (`None` with one label only, or past the AUC memory bound since load).
    pub auc: Option<f64>,
    /// Mean prediction / observed CTR.
    pub calibration: Option<f64>,
    /// Observed CTR.
    pub ctr: Option<f64>,
}

impl From<Metrics> for Figures {
    fn from(m: Metrics) -> Self {
        Figures {
            rows: m.count,
            ne: m.ne,
            log_loss: m.log_loss,
            auc: m.auc,
            calibration: m.calibration,
            ctr: m.ctr,
        }
    }
}

/// A model scored against a reference on the same labelled rows.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct PairedFigures {
    /// Rows both scored and labelled.
    pub rows: u64,
    /// The model's NE on those rows.
    pub ne: Option<f64>,
    /// The reference's NE on the same rows.
    pub reference_ne: Option<f64>,
    /// `100 · (ne − reference_ne) / reference_ne` (positive: the model is worse).
    pub delta_ne_percent: Option<f64>,
    /// The model's AUC on those rows.
    pub auc: Option<f64>,
    /// The reference's AUC on the same rows.
    pub reference_auc: Option<f64>,
    /// Mean |p − p_ref| over the rows.
    pub mean_abs_divergence: Option<f64>,
    /// Largest |p − p_ref|.
    pub max_abs_divergence: f64,
}

/// Accumulates a model and a reference on identical rows.
#[derive(Clone, Debug, Default)]
pub(crate) struct Paired {
    model: LossAccumulator,
    reference: LossAccumulator,
    model_auc: AucAccumulator,
    reference_auc: AucAccumulator,
    divergence_sum: f64,
    divergence_max: f64,
    auc_cap: usize,
}

impl Paired {
    pub(crate) fn new(auc_cap: usize) -> Self {
        Paired {
            auc_cap,
            ..Paired::default()
        }
    }

    /// Adds rows (labels already checked to be 0/1; probabilities come from the models).
    pub(crate) fn push(&mut self, model: &[f32], reference: &[f32], labels: &[f32]) {
        for ((&p, &r), &y) in model.iter().zip(reference).zip(labels) {
            if self.model.push(p, y).is_err() || self.reference.push(r, y).is_err() {
                continue;
            }
            if (self.model_auc.count() as usize) < self.auc_cap {
                let _ = self.model_auc.push(p, y);
                let _ = self.reference_auc.push(r, y);
            }
            let d = (f64::from(p) - f64::from(r)).abs();
            self.divergence_sum += d;
            self.divergence_max = self.divergence_max.max(d);
        }
    }

    pub(crate) fn rows(&self) -> u64 {
        self.model.count()
    }

    pub(crate) fn figures(&self) -> PairedFigures {
        let rows = self.model.count();
        let (ne, reference_ne) = (self.model.ne(), self.reference.ne());
        let complete = self.model_auc.count() == rows;
        PairedFigures {
            rows,
            ne,
            reference_ne,
            delta_ne_percent: ne.zip(reference_ne).map(|(q, r)| delta_ne_percent(q, r)),
            auc: complete.then(|| self.model_auc.auc()).flatten(),
            reference_auc: complete.then(|| self.reference_auc.auc()).flatten(),
            mean_abs_divergence: (rows > 0).then(|| self.divergence_sum / rows as f64),
            max_abs_divergence: self.divergence_max,
        }
    }
}

/// Everything the monitor knows about one version.
#[derive(Clone, Debug)]
pub(crate) struct VersionStats {
    since_load: LossAccumulator,
    since_load_auc: AucAccumulator,
    auc_cap: usize,
    window: VecDeque<(f32, f32)>,
    window_rows: usize,
    /// Against the fp32 reference model (shadowed requests only).
    pub(crate) shadow: Paired,
    /// Against the serving version (a canary's requests only).
    pub(crate) incumbent: Paired,
}

impl VersionStats {
    pub(crate) fn new(window_rows: usize, auc_cap: usize) -> Self {
        VersionStats {
            since_load: LossAccumulator::new(),
            since_load_auc: AucAccumulator::new(),
            auc_cap,
            window: VecDeque::with_capacity(window_rows.min(1 << 16)),
            window_rows: window_rows.max(1),
            shadow: Paired::new(auc_cap),
            incumbent: Paired::new(auc_cap),
        }
    }

    /// Adds labelled rows this version scored.
    pub(crate) fn push(&mut self, probs: &[f32], labels: &[f32]) {
        for (&p, &y) in probs.iter().zip(labels) {
            if self.since_load.push(p, y).is_err() {
                continue;
            }
            if (self.since_load_auc.count() as usize) < self.auc_cap {
                let _ = self.since_load_auc.push(p, y);
            }
            if self.window.len() == self.window_rows {
                self.window.pop_front();
            }
            self.window.push_back((p, y));
        }
    }

    pub(crate) fn labelled_rows(&self) -> u64 {
        self.since_load.count()
    }

    pub(crate) fn since_load(&self) -> Figures {
        let complete = self.since_load_auc.count() == self.since_load.count();
        Figures {
            rows: self.since_load.count(),
            ne: self.since_load.ne(),
            log_loss: self.since_load.log_loss(),
            auc: complete.then(|| self.since_load_auc.auc()).flatten(),
            calibration: self.since_load.calibration(),
            ctr: self.since_load.ctr(),
        }
    }

    pub(crate) fn window(&self) -> Figures {
        let mut acc = MetricsAccumulator::with_auc();
        for &(p, y) in &self.window {
            // Values were checked on the way in.
            let _ = acc.push(p, y);
        }
        acc.metrics().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_load_equals_the_eval_accumulator() {
        let probs: Vec<f32> = (0..1000)
            .map(|i| ((i * 37) % 997) as f32 / 1000.0 + 1e-4)
            .collect();
        let labels: Vec<f32> = (0..1000)
            .map(|i| ((i * 13) % 7 == 0) as u8 as f32)
            .collect();
        let mut s = VersionStats::new(100, usize::MAX);
        for (p, y) in probs.chunks(17).zip(labels.chunks(17)) {
            s.push(p, y);
        }
        let mut eval = MetricsAccumulator::with_auc();
        eval.extend(&probs, &labels).unwrap();
        let m = eval.metrics();
        let f = s.since_load();
        assert_eq!(f.rows, 1000);
        assert!((f.ne.unwrap() - m.ne.unwrap()).abs() < 1e-12);
        assert_eq!(f.auc, m.auc);
        // The window holds the last 100 rows only.
        let mut last = MetricsAccumulator::with_auc();
        last.extend(&probs[900..], &labels[900..]).unwrap();
        let w = s.window();
        assert_eq!(w.rows, 100);
        assert_eq!(w.ne, last.metrics().ne);
    }

    #[test]
    fn auc_since_load_stops_at_its_memory_bound() {
        let mut s = VersionStats::new(10, 4);
        s.push(&[0.1, 0.9, 0.2, 0.8], &[0.0, 1.0, 0.0, 1.0]);
        assert_eq!(s.since_load().auc, Some(1.0));
        s.push(&[0.3], &[1.0]);
        assert_eq!(s.since_load().auc, None);
        assert!(s.window().auc.is_some());
    }

    #[test]
    fn paired_reports_delta_and_divergence() {
        let mut p = Paired::new(usize::MAX);
        let labels = [1.0, 0.0, 1.0, 0.0];
        p.push(&[0.6, 0.4, 0.7, 0.2], &[0.7, 0.3, 0.8, 0.1], &labels);
        let f = p.figures();
        assert_eq!(f.rows, 4);
        assert!(
            f.delta_ne_percent.unwrap() > 0.0,
            "the model is less confident"
        );
        assert!((f.max_abs_divergence - 0.1).abs() < 1e-6);
        assert!((f.mean_abs_divergence.unwrap() - 0.1).abs() < 1e-6);
    }
}
