//! Canary launch: route a fraction of traffic to a new version, compare it with the serving version
//! on the same labelled rows, and promote it or roll it back.

use std::sync::atomic::{AtomicU64, Ordering};

use super::stats::PairedFigures;

/// When a canary is promoted or rolled back.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryPolicy {
    /// Fraction of requests the canary answers (0 < f ≤ 1).
    pub fraction: f64,
    /// Labelled canary rows needed before a decision.
    pub min_labels: u64,
    /// Largest relative NE increase (percent) over the serving version on the same rows that still
    /// promotes.
    pub max_delta_ne_percent: f64,
    /// Optionally also require canary AUC ≥ this ratio of the serving version's (MLPerf uses 0.999).
    #[serde(default)]
    pub min_auc_ratio: Option<f64>,
}

impl CanaryPolicy {
    /// Checks the policy's numbers; returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.fraction > 0.0 && self.fraction <= 1.0) {
            return Err(format!(
                "fraction must be in (0, 1], found {}",
                self.fraction
            ));
        }
        if self.min_labels == 0 {
            return Err("min_labels must be at least 1".into());
        }
        if !self.max_delta_ne_percent.is_finite() {
            return Err(format!(
                "max_delta_ne_percent must be finite, found {}",
                self.max_delta_ne_percent
            ));
        }
        if let Some(r) = self.min_auc_ratio
            && !(r > 0.0 && r <= 1.0)
        {
            return Err(format!("min_auc_ratio must be in (0, 1], found {r}"));
        }
        Ok(())
    }

    /// The decision once `paired` (canary vs serving on the canary's labelled rows) is known.
    pub fn decide(&self, paired: &PairedFigures) -> Option<Verdict> {
        if paired.rows < self.min_labels {
            return None;
        }
        let Some(delta) = paired.delta_ne_percent else {
            return Some(Verdict::Rollback {
                reason: format!(
                    "NE undefined on {} labelled rows (a single label value): cannot show the canary is within budget",
                    paired.rows
                ),
                delta_ne_percent: None,
                rows: paired.rows,
            });
        };
        if delta > self.max_delta_ne_percent {
            return Some(Verdict::Rollback {
                reason: format!(
                    "live NE {:+.4}% vs the serving version on the same {} rows exceeds the budget {:.4}%",
                    delta, paired.rows, self.max_delta_ne_percent
                ),
                delta_ne_percent: Some(delta),
                rows: paired.rows,
            });
        }
        if let Some(min_ratio) = self.min_auc_ratio {
            match paired.auc.zip(paired.reference_auc) {
                Some((auc, reference)) if auc >= min_ratio * reference => {}
                Some((auc, reference)) => {
                    return Some(Verdict::Rollback {
                        reason: format!(
                            "live AUC {auc:.5} is below {min_ratio} of the serving version's {reference:.5} on the same {} rows",
                            paired.rows
                        ),
                        delta_ne_percent: Some(delta),
                        rows: paired.rows,
                    });
                }
                None => {
                    return Some(Verdict::Rollback {
                        reason: format!("AUC undefined on {} labelled rows", paired.rows),
                        delta_ne_percent: Some(delta),
                        rows: paired.rows,
                    });
                }
            }
        }
        Some(Verdict::Promote {
            delta_ne_percent: delta,
            rows: paired.rows,
        })
    }
}

/// The monitor's decision about a canary.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Verdict {
    /// Within budget: the canary becomes the serving version.
    Promote {
        /// Its live ΔNE against the serving version (percent).
        delta_ne_percent: f64,
        /// Labelled rows the decision rests on.
        rows: u64,
    },
    /// Worse than budget: the canary is unloaded.
    Rollback {
        /// Why, in a sentence.
        reason: String,
        /// Its live ΔNE against the serving version (percent), when defined.
        delta_ne_percent: Option<f64>,
        /// Labelled rows the decision rests on.
        rows: u64,
    },
}

/// Picks exactly `⌊n · fraction⌋` of the first `n` requests, evenly spread (no randomness, so tests
/// and replays are reproducible).
#[derive(Debug)]
pub struct FractionRouter {
    fraction: f64,
    seen: AtomicU64,
}

impl FractionRouter {
    /// A router taking `fraction` of requests (clamped to [0, 1]; NaN takes none).
    pub fn new(fraction: f64) -> Self {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        FractionRouter {
            fraction,
            seen: AtomicU64::new(0),
        }
    }

    /// The fraction routed.
    pub fn fraction(&self) -> f64 {
        self.fraction
    }

    /// Whether the next request is routed.
    pub fn next(&self) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * self.fraction).floor() > (n * self.fraction).floor()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CanaryPolicy {
        CanaryPolicy {
            fraction: 0.25,
            min_labels: 100,
            max_delta_ne_percent: 0.5,
            min_auc_ratio: None,
        }
    }

    fn paired(rows: u64, delta: f64) -> PairedFigures {
        PairedFigures {
            rows,
            ne: Some(0.8 * (1.0 + delta / 100.0)),
            reference_ne: Some(0.8),
            delta_ne_percent: Some(delta),
            auc: Some(0.75),
            reference_auc: Some(0.76),
            mean_abs_divergence: Some(0.01),
            max_abs_divergence: 0.1,
        }
    }

    #[test]
    fn waits_then_promotes_or_rolls_back() {
        let p = policy();
        assert_eq!(p.decide(&paired(99, 0.0)), None);
        assert!(matches!(
            p.decide(&paired(100, 0.4)),
            Some(Verdict::Promote { rows: 100, .. })
        ));
        let Some(Verdict::Rollback { reason, .. }) = p.decide(&paired(100, 0.6)) else {
            panic!("a canary over budget must be rolled back");
        };
        assert!(reason.contains("exceeds the budget"), "{reason}");
    }

    #[test]
    fn auc_ratio_gate() {
        let p = CanaryPolicy {
            min_auc_ratio: Some(0.999),
            ..policy()
        };
        // 0.75 < 0.999 · 0.76
        assert!(matches!(
            p.decide(&paired(100, 0.0)),
            Some(Verdict::Rollback { .. })
        ));
    }

    #[test]
    fn policy_validation() {
        assert!(policy().validate().is_ok());
        for bad in [
            CanaryPolicy {
                fraction: 0.0,
                ..policy()
            },
            CanaryPolicy {
                fraction: 1.5,
                ..policy()
            },
            CanaryPolicy {
                min_labels: 0,
                ..policy()
            },
            CanaryPolicy {
                max_delta_ne_percent: f64::NAN,
                ..policy()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn router_takes_the_exact_fraction() {
        let r = FractionRouter::new(0.3);
        let taken = (0..1000).filter(|_| r.next()).count();
        assert_eq!(taken, 300);
        let none = FractionRouter::new(0.0);
        assert!(!(0..100).any(|_| none.next()));
        let all = FractionRouter::new(1.0);
        assert!((0..100).all(|_| all.next()));
    }
}
