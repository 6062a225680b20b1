//! Day-to-day drift of the synthetic data, as a model retrained daily sees it.
//!
//! A [`DriftConfig`] in [`SynthConfig::drift`](super::SynthConfig::drift) turns the generator
//! into "day 2" of the same world:
//!
//! - **Fresh rows**: every split's stream is re-seeded with the drift seed, so day-2 rows are new
//!   samples of the (shifted) distribution, not day-1 rows relabelled.
//! - **Popularity shift** ([`DriftConfig::trending`]): in every table a fraction of the ids is
//!   chosen and their popularity ranks are permuted among them, so some formerly rare ids become
//!   trending and some head ids fade. Equivalent to re-drawing part of the Zipf rank → id
//!   mapping. Missing values (id 0 of a missing one-hot field) are left alone.
//! - **Concept drift** ([`DriftConfig::drift`], weight `w` in `[0, 1]`): labels come from a blend
//!   of the day-1 teacher and a second teacher drawn from the drift seed,
//!   `logit = c + √(1−w)·z₁ + √w·z₂` (the square roots keep the logit's spread; when `w > 0`,
//!   `c` is refitted so the mean click probability stays at the target CTR). `w = 0` keeps the
//!   day-1 teacher exactly,
//!   `w = 1` replaces it.
//!
//! Everything is a function of the generator seed and the drift seed.

use std::collections::{BTreeSet, HashMap};

use quantrec_kernels::rng::Rng;

use super::features::{FeatureModel, N_DENSE, SynthRow};
use super::teacher::{Teacher, fit_offset, sigmoid, splitmix};
use super::{FIT_ROWS, SynthConfig};
use crate::{DataError, Result};

const TAG_DRIFT: u64 = 0x6472_6966_7400_0020;
const TAG_DRIFT_FIT: u64 = 0x6472_6669_7400_0021;

/// How day-2 data differs from day 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DriftConfig {
    /// Seed of the drift (second teacher, popularity shift, fresh rows).
    pub seed: u64,
    /// Concept drift: weight of the second teacher, in `[0, 1]`.
    pub drift: f64,
    /// Popularity shift: fraction of every table's ids whose popularity is permuted, in `[0, 1]`.
    pub trending: f64,
}

impl DriftConfig {
    /// Concept drift `drift` with the same fraction of ids trending.
    pub fn new(seed: u64, drift: f64) -> DriftConfig {
        DriftConfig {
            seed,
            drift,
            trending: drift,
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
        for (what, v) in [("drift", self.drift), ("trending fraction", self.trending)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(DataError::Config {
                    what,
                    expected: "in [0, 1]".into(),
                    found: v.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Salt mixed into every stream's seed so day-2 rows are fresh.
    pub(super) fn stream_salt(&self) -> u64 {
        splitmix(self.seed ^ TAG_DRIFT)
    }
}

/// The drift's state: the id remapping of every table and the second teacher.
#[derive(Clone, Debug)]
pub(super) struct Drift {
    weight: f64,
    /// Per table: trending id → the id whose popularity rank it now has.
    remap: Vec<HashMap<i64, i64>>,
    second: Teacher,
    offset: f64,
}

/// `k` distinct values of `0..n` (Floyd's algorithm), in increasing order.
fn distinct(rng: &mut Rng, n: u64, k: u64) -> Vec<u64> {
    let mut set = BTreeSet::new();
    for j in n - k..n {
        let t = rng.below(j + 1);
        if !set.insert(t) {
            set.insert(j);
        }
    }
    set.into_iter().collect()
}

impl Drift {
    /// Builds the drift of the generator `cfg` (its base teacher already fitted).
    pub(super) fn new(
        cfg: &SynthConfig,
        d: &DriftConfig,
        features: &FeatureModel,
        base: &Teacher,
    ) -> Drift {
        let mut rng = Rng::new(splitmix(cfg.seed ^ splitmix(d.seed ^ TAG_DRIFT)));
        let remap = cfg
            .table_rows
            .iter()
            .map(|&rows| {
                let n = rows as u64;
                let k = ((d.trending * rows as f64).round() as u64).min(n);
                let ids = distinct(&mut rng, n, k);
                let mut to = ids.clone();
                for i in (1..to.len()).rev() {
                    to.swap(i, rng.below(i as u64 + 1) as usize);
                }
                ids.into_iter()
                    .zip(to)
                    .filter(|(a, b)| a != b)
                    .map(|(a, b)| (a as i64, b as i64))
                    .collect()
            })
            .collect();
        let second = Teacher::new(
            N_DENSE,
            cfg.table_rows.len(),
            cfg.latent_dim,
            cfg.signal,
            &mut rng,
        );
        let mut drift = Drift {
            weight: d.drift,
            remap,
            second,
            offset: 0.0,
        };
        let mut fit = Rng::new(splitmix(cfg.seed ^ splitmix(d.seed ^ TAG_DRIFT_FIT)));
        let mut row = SynthRow::default();
        let mut dense = Vec::with_capacity(FIT_ROWS * N_DENSE);
        let mut bags = Vec::with_capacity(FIT_ROWS);
        for _ in 0..FIT_ROWS {
            features.sample(&mut fit, &mut row);
            drift.shift(&mut row);
            dense.extend_from_slice(&row.dense);
            bags.push(row.bags.clone());
        }
        drift.second.fit_dense(&dense);
        let logits: Vec<f64> = dense
            .chunks_exact(N_DENSE)
            .zip(&bags)
            .map(|(x, b)| drift.raw_logit(base, x, b))
            .collect();
        if drift.weight > 0.0 {
            drift.offset = fit_offset(&logits, cfg.target_ctr);
        }
        drift
    }

    /// Applies the popularity shift to a freshly sampled row's ids.
    pub(super) fn shift(&self, row: &mut SynthRow) {
        for (t, bag) in row.bags.iter_mut().enumerate() {
            if row.missing.get(t).copied().unwrap_or(false) {
                continue;
            }
            let m = &self.remap[t];
            if m.is_empty() {
                continue;
            }
            for id in bag.iter_mut() {
                if let Some(&to) = m.get(id) {
                    *id = to;
                }
            }
        }
    }

    fn raw_logit<B: AsRef<[i64]>>(&self, base: &Teacher, dense: &[f32], bags: &[B]) -> f64 {
        let w = self.weight;
        let mut z = (1.0 - w).sqrt() * base.logit(dense, bags);
        if w > 0.0 {
            z += w.sqrt() * self.second.logit(dense, bags);
        }
        z
    }

    /// The day-2 click probability of a sample (ids already shifted).
    pub(super) fn probability<B: AsRef<[i64]>>(
        &self,
        base: &Teacher,
        dense: &[f32],
        bags: &[B],
    ) -> f64 {
        sigmoid(self.offset + self.raw_logit(base, dense, bags))
    }

    /// Number of ids whose popularity moved, per table.
    pub(super) fn moved(&self) -> Vec<usize> {
        self.remap.iter().map(HashMap::len).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_draws_are_distinct_and_in_range() {
        let mut rng = Rng::new(4);
        for (n, k) in [(1, 0), (1, 1), (10, 3), (10, 10), (1000, 300)] {
            let v = distinct(&mut rng, n, k);
            assert_eq!(v.len() as u64, k);
            assert!(v.windows(2).all(|w| w[0] < w[1]));
            assert!(v.iter().all(|&x| x < n));
        }
    }

    #[test]
    fn offset_hits_the_target() {
        let logits: Vec<f64> = (0..1000).map(|i| (i as f64 / 100.0).sin() * 2.0).collect();
        let c = fit_offset(&logits, 0.25);
        let mean = logits.iter().map(|&z| sigmoid(z + c)).sum::<f64>() / 1000.0;
        assert!((mean - 0.25).abs() < 1e-9);
    }
}
