//! The observable features of a synthetic sample: Criteo-like dense counts and Zipf-distributed ids.

use quantrec_kernels::rng::Rng;

use super::zipf::Zipf;

/// One dense count feature: missing with probability `missing`, else `floor(exp(mu + sigma·z))`
/// with `z` standard normal and correlated (`rho`) across features through a shared factor.
#[derive(Clone, Copy, Debug)]
struct DenseProfile {
    missing: f64,
    mu: f64,
    sigma: f64,
    /// Probability of the value -1 (Criteo's I2 has small negative values).
    negative: f64,
}

/// Rough shapes of Criteo's I1..I13 (missing rates and log-scale location/spread).
const DENSE_PROFILES: [DenseProfile; 13] = [
    DenseProfile {
        missing: 0.45,
        mu: 0.5,
        sigma: 1.2,
        negative: 0.0,
    },
    DenseProfile {
        missing: 0.0,
        mu: 1.2,
        sigma: 1.8,
        negative: 0.05,
    },
    DenseProfile {
        missing: 0.21,
        mu: 1.5,
        sigma: 1.5,
        negative: 0.0,
    },
    DenseProfile {
        missing: 0.22,
        mu: 1.6,
        sigma: 1.0,
        negative: 0.0,
    },
    DenseProfile {
        missing: 0.03,
        mu: 7.5,
        sigma: 2.2,
        negative: 0.0,
    },
    DenseProfile {
        missing: 0.22,
        mu: 3.5,
        sigma: 1.8,
        negative: 0.0,
    },
    DenseProfile {
        missing: 0.04,
        mu: 1.3,
        sigma: 1.7,
        negative: 0.0,
    },
    DenseProfile {
        missing: 0.0005,
        mu: 2.3,
        sigma: 1.1,
        negative: 0.0,
    },
    DenseProfile {
        missing: 0.04,
        mu: 3.5,
        sigma: 1.6,
        negative: 0.0,
    },
    DenseProfile {
        missing: 0.45,
        mu: 0.2,
        sigma: 0.7,
        negative: 0.0,
    },
    DenseProfile {
        missing: 0.04,
        mu: 0.8,
        sigma: 1.0,
        negative: 0.0,
    },
    DenseProfile {
        missing: 0.77,
        mu: 0.1,
        sigma: 1.0,
        negative: 0.0,
    },
    DenseProfile {
        missing: 0.22,
        mu: 1.5,
        sigma: 1.2,
        negative: 0.0,
    },
];

/// Number of dense features the generator makes.
pub const N_DENSE: usize = DENSE_PROFILES.len();

/// Correlation of every dense feature with the shared activity factor.
const RHO: f64 = 0.5;

/// Criteo's categorical missing rates (C1..C26), reused cyclically for other table counts.
const SPARSE_MISSING: [f64; 26] = [
    0.0, 0.0, 0.03, 0.03, 0.0, 0.12, 0.0, 0.0, 0.0, 0.0, 0.0, 0.03, 0.0, 0.0, 0.0, 0.03, 0.0, 0.0,
    0.44, 0.44, 0.03, 0.76, 0.0, 0.03, 0.44, 0.44,
];

/// One sample's observable features (and, once labelled, its label and teacher probability).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SynthRow {
    /// Click label (0 or 1).
    pub label: f32,
    /// The teacher's probability of a click for this sample.
    pub prob: f64,
    /// Raw dense counts as written to TSV (`None` = missing).
    pub counts: Vec<Option<i64>>,
    /// Dense features as the model sees them: `ln(1 + max(count, 0))`, missing = 0.
    pub dense: Vec<f32>,
    /// Row ids per table as the model sees them (a missing one-hot value is id 0, a missing
    /// multi-hot value an empty bag).
    pub bags: Vec<Vec<i64>>,
    /// Whether each table's value is missing (written as an empty TSV field).
    pub missing: Vec<bool>,
}

/// Samples the features of one row.
#[derive(Clone, Debug)]
pub struct FeatureModel {
    zipf: Vec<Zipf>,
    rows: Vec<u64>,
    /// Rank → id bijection per table: `id = (rank·mult + shift) mod rows`, `gcd(mult, rows) = 1`.
    perm: Vec<(u64, u64)>,
    pooling_factor: f64,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl FeatureModel {
    /// Tables of `table_rows` rows, Zipf exponent `zipf_s`, mean bag size `pooling_factor`
    /// (1 = one-hot); the rank → id shuffles come from `rng`.
    pub fn new(table_rows: &[usize], zipf_s: f64, pooling_factor: f64, rng: &mut Rng) -> Self {
        let rows: Vec<u64> = table_rows.iter().map(|&r| r as u64).collect();
        let perm = rows
            .iter()
            .map(|&r| {
                let mut mult = rng.below(r).max(1) | 1;
                while gcd(mult, r) != 1 {
                    mult += 1;
                }
                (mult % r.max(1), rng.below(r))
            })
            .collect();
        FeatureModel {
            zipf: rows.iter().map(|&r| Zipf::new(r, zipf_s)).collect(),
            rows,
            perm,
            pooling_factor,
        }
    }

    fn id(&self, t: usize, rng: &mut Rng) -> i64 {
        let rank = self.zipf[t].sample(rng) - 1;
        let (mult, shift) = self.perm[t];
        let r = self.rows[t];
        if r <= u64::from(u32::MAX) {
            // rank, mult, shift < r < 2^32: no overflow.
            ((rank * mult + shift) % r) as i64
        } else {
            ((u128::from(rank) * u128::from(mult) + u128::from(shift)) % u128::from(r)) as i64
        }
    }

    /// Bag length: 1 + Poisson(pooling_factor − 1) (Knuth's method; λ is small).
    fn bag_len(&self, rng: &mut Rng) -> usize {
        let lambda = self.pooling_factor - 1.0;
        if lambda <= 0.0 {
            return 1;
        }
        let limit = (-lambda).exp();
        let mut k = 0;
        let mut p = rng.uniform();
        while p > limit {
            k += 1;
            p *= rng.uniform();
        }
        1 + k
    }

    /// Fills the features of `row` (not the label).
    pub fn sample(&self, rng: &mut Rng, row: &mut SynthRow) {
        let activity = rng.normal();
        let spread = (1.0 - RHO * RHO).sqrt();
        row.counts.clear();
        row.dense.clear();
        for p in &DENSE_PROFILES {
            let count = if rng.uniform() < p.missing {
                None
            } else if rng.uniform() < p.negative {
                Some(-1)
            } else {
                let z = RHO * activity + spread * rng.normal();
                Some((p.mu + p.sigma * z).exp().min(1e12).floor() as i64)
            };
            row.counts.push(count);
            row.dense
                .push((count.unwrap_or(0).max(0) as f64).ln_1p() as f32);
        }
        let multi_hot = self.pooling_factor > 1.0;
        row.bags.resize_with(self.rows.len(), Vec::new);
        row.missing.resize(self.rows.len(), false);
        for t in 0..self.rows.len() {
            let bag = &mut row.bags[t];
            bag.clear();
            let missing = rng.uniform() < SPARSE_MISSING[t % SPARSE_MISSING.len()];
            row.missing[t] = missing;
            if missing {
                if !multi_hot {
                    bag.push(0);
                }
                continue;
            }
            let len = self.bag_len(rng);
            for _ in 0..len {
                bag.push(self.id(t, rng));
            }
        }
    }
}
