//! Holdout quality (log loss, normalized entropy, ROC AUC) and the running figures reported while
//! training.

/// Quality of the model on a holdout set (serialized with these field names).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct EvalReport {
    /// Samples evaluated.
    pub samples: usize,
    /// Mean binary cross-entropy.
    pub log_loss: f64,
    /// Normalized entropy: log loss divided by the entropy of the holdout's click rate.
    pub ne: f64,
    /// ROC AUC (ties count one half).
    pub auc: f64,
}

/// Entropy (nats) of a Bernoulli with mean `p`; 0 at the ends.
pub(crate) fn bernoulli_entropy(p: f64) -> f64 {
    if p <= 0.0 || p >= 1.0 {
        0.0
    } else {
        -(p * p.ln() + (1.0 - p) * (1.0 - p).ln())
    }
}

/// Log loss, NE and AUC of `logits` against `labels`.
pub(crate) fn report(logits: &[f32], labels: &[f32], loss_sum: f64) -> EvalReport {
    let n = labels.len();
    let log_loss = if n == 0 { 0.0 } else { loss_sum / n as f64 };
    let ctr = labels.iter().map(|&y| f64::from(y)).sum::<f64>() / n.max(1) as f64;
    let h = bernoulli_entropy(ctr);
    EvalReport {
        samples: n,
        log_loss,
        ne: if h > 0.0 { log_loss / h } else { f64::NAN },
        auc: auc(logits, labels),
    }
}

/// ROC AUC by the rank-sum statistic with average ranks for ties; NaN when one class is absent.
/// Labels are read as positive when ≥ 0.5.
pub(crate) fn auc(scores: &[f32], labels: &[f32]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut pos) = (0f64, 0usize);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && scores[idx[j]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j + 1) as f64 / 2.0; // ranks i+1..=j
        for &k in &idx[i..j] {
            if labels[k] >= 0.5 {
                rank_sum += avg_rank;
                pos += 1;
            }
        }
        i = j;
    }
    let neg = scores.len() - pos;
    if pos == 0 || neg == 0 {
        return f64::NAN;
    }
    (rank_sum - (pos * (pos + 1)) as f64 / 2.0) / (pos as f64 * neg as f64)
}

/// What a progress callback sees after each step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Epoch (from 0).
    pub epoch: usize,
    /// Step within the epoch (from 0).
    pub step: usize,
    /// Steps per epoch (0 when unknown, as in [`Trainer::fit_stream`](super::Trainer::fit_stream)).
    pub steps_per_epoch: usize,
    /// Samples trained on so far, over all epochs.
    pub samples: u64,
    /// Mean loss of this step's batch (before its update).
    pub loss: f64,
    /// Exponential moving average of the loss (about the last 100 steps).
    pub running_loss: f64,
    /// Running normalized entropy: the running loss over the entropy of the running click rate.
    pub running_ne: f64,
}

/// Exponential moving averages of loss and click rate.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Running {
    loss: f64,
    ctr: f64,
    weight: f64,
}

impl Running {
    /// Folds in one step; returns (running loss, running NE).
    pub fn push(&mut self, loss: f64, ctr: f64) -> (f64, f64) {
        const DECAY: f64 = 0.99;
        self.loss = DECAY * self.loss + (1.0 - DECAY) * loss;
        self.ctr = DECAY * self.ctr + (1.0 - DECAY) * ctr;
        self.weight = DECAY * self.weight + (1.0 - DECAY);
        let (l, c) = (self.loss / self.weight, self.ctr / self.weight);
        let h = bernoulli_entropy(c);
        (l, if h > 0.0 { l / h } else { f64::NAN })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_pairs_and_ties() {
        assert_eq!(auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]), 0.75);
        assert_eq!(auc(&[1.0, 1.0], &[0.0, 1.0]), 0.5);
        assert!(auc(&[1.0, 2.0], &[1.0, 1.0]).is_nan());
        let r = report(&[0.0, 0.0], &[0.0, 1.0], 2.0 * std::f64::consts::LN_2);
        assert!((r.ne - 1.0).abs() < 1e-12);
    }
}
