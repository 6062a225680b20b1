//! Zipf-distributed row ids: rank `k` (1-based) drawn with probability ∝ `k^-s` by inverting a
//! precomputed CDF, then scattered over the table by a fixed bijection so hot rows are not all
//! in the first blocks.

use quantrec_data::synth::bench::unlabeled_batch;
use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::rng::Rng;

/// Draws ids of one table.
#[derive(Clone, Debug)]
pub struct Zipf {
    cdf: Vec<f64>,
    rows: u64,
    mult: u64,
    add: u64,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Zipf {
    /// Ids over `rows` rows (at least 1) with exponent `s` (> 0).
    pub fn new(rows: usize, s: f64) -> Zipf {
        let rows = rows.max(1);
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=rows)
            .map(|k| {
                acc += (k as f64).powf(-s);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        let rows = rows as u64;
        // A multiplier coprime with the row count makes `rank · mult + add (mod rows)` a bijection.
        let mut mult = 0x9e37_79b9 % rows.max(2);
        while mult == 0 || gcd(mult, rows) != 1 {
            mult += 1;
        }
        Zipf {
            cdf,
            rows,
            mult,
            add: rows / 3,
        }
    }

    /// The id of rank `rank` (0 = the most popular).
    pub fn id_of_rank(&self, rank: u64) -> i64 {
        ((rank as u128 * self.mult as u128 + self.add as u128) % self.rows as u128) as i64
    }

    /// One id.
    pub fn sample(&self, rng: &mut Rng) -> i64 {
        let u = rng.uniform();
        let rank = self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1);
        self.id_of_rank(rank as u64)
    }
}

/// A one-hot batch of `size` samples over tables of `rows` rows, ids drawn from `zipfs`, dense
/// values `log1p(100·u)`.
pub fn zipf_batch(size: usize, n_dense: usize, zipfs: &[Zipf], rng: &mut Rng) -> Batch {
    unlabeled_batch(size, n_dense, rng, |rng| {
        zipfs
            .iter()
            .map(|z| SparseFeature::one_hot((0..size).map(|_| z.sample(rng)).collect()))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_map_to_distinct_ids_and_popular_ranks_dominate() {
        let z = Zipf::new(1000, 1.1);
        let mut ids: Vec<i64> = (0..1000).map(|r| z.id_of_rank(r)).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 1000);
        let mut rng = Rng::new(1);
        let top = z.id_of_rank(0);
        let n = (0..10_000).filter(|_| z.sample(&mut rng) == top).count();
        // P(rank 0) = 1 / H(1000, 1.1) ≈ 0.19.
        assert!((1500..2400).contains(&n), "{n}");
        let one = Zipf::new(1, 1.0);
        assert_eq!(one.sample(&mut rng), 0);
    }
}
