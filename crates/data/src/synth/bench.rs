//! Unlabelled benchmark batches: the one generator behind the synthetic model benchmarks
//! (`quantrec-quant`'s `bench model --synthetic`) and the remote-table benchmark
//! (`quantrec-tables`), which differ only in how they draw ids.

use quantrec_kernels::rng::Rng;

use crate::{Batch, SparseFeature};

/// An unlabelled batch of `size` samples: `size · n_dense` dense values `log1p(100·u)` drawn from
/// `rng` first, then the sparse features `sparse` draws from the same generator.
pub fn unlabeled_batch(
    size: usize,
    n_dense: usize,
    rng: &mut Rng,
    sparse: impl FnOnce(&mut Rng) -> Vec<SparseFeature>,
) -> Batch {
    let dense = (0..size * n_dense)
        .map(|_| (100.0 * rng.uniform_f32(0.0, 1.0)).ln_1p())
        .collect();
    let sparse = sparse(rng);
    Batch::unlabeled(size, n_dense, dense, sparse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_values_come_first_and_lie_in_the_log_range() {
        let mut rng = Rng::new(7);
        let b = unlabeled_batch(3, 2, &mut rng, |r| {
            vec![SparseFeature::one_hot(vec![r.below(10) as i64; 3])]
        });
        assert_eq!((b.size, b.n_dense, b.dense.len()), (3, 2, 6));
        assert!(b.labels.is_none());
        let top = 101f32.ln();
        assert!(
            b.dense.iter().all(|&x| (0.0..=top).contains(&x)),
            "{:?}",
            b.dense
        );
        // The same draws in the same order: dense first, then ids.
        let mut again = Rng::new(7);
        let dense: Vec<f32> = (0..6)
            .map(|_| (100.0 * again.uniform_f32(0.0, 1.0)).ln_1p())
            .collect();
        assert_eq!(b.dense, dense);
        assert_eq!(b.sparse[0].ids, vec![again.below(10) as i64; 3]);
    }
}
