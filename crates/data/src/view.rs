//! Borrowed batches: the model reads its inputs through a [`BatchView`], so callers that already
//! hold the values somewhere (numpy arrays in the Python package, a decoded request) score them
//! without building an owned [`Batch`](crate::Batch) first.
//!
//! A view borrows the dense values, every table's ids and its optional weights. Offsets are a
//! [`Cow`]: borrowed when the caller has them in the model's form (an owned batch, KJT offsets),
//! owned when they must be computed (lengths → offsets, `batch + 1` small integers).
//!
//! A sparse feature may borrow a window of a larger, KeyedJaggedTensor-style offsets array whose
//! values index one id array shared by every table: [`SparseView::base`] is the offset at which
//! this feature's `ids` start, so bag `b` is `ids[offsets[b] - base..offsets[b + 1] - base]` and
//! neither the offsets nor the ids need rebasing. An owned batch's features have `base == 0`.

use std::borrow::Cow;

use crate::batch::{Batch, SparseFeature};

/// The ids of one sparse feature for a whole batch, borrowed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseView<'a> {
    /// `batch + 1` non-decreasing offsets, from `base` to `base + ids.len()`.
    pub offsets: Cow<'a, [i64]>,
    /// The offset at which `ids` starts (0 unless the offsets are a window of a larger array).
    pub base: i64,
    /// Row ids, all bags back to back.
    pub ids: &'a [i64],
    /// Optional per-id weights (for weighted pooling), same length as `ids`.
    pub weights: Option<&'a [f32]>,
}

impl<'a> SparseView<'a> {
    /// A feature whose bag `b` is `ids[offsets[b] - offsets[0]..offsets[b + 1] - offsets[0]]`:
    /// `offsets` may be any window of a larger offsets array over the ids it covers.
    pub fn windowed(offsets: &'a [i64], ids: &'a [i64], weights: Option<&'a [f32]>) -> Self {
        SparseView {
            base: offsets.first().copied().unwrap_or(0),
            offsets: Cow::Borrowed(offsets),
            ids,
            weights,
        }
    }

    /// Number of bags.
    pub fn num_bags(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// An owned copy with offsets rebased to 0.
    pub fn to_owned_feature(&self) -> SparseFeature {
        SparseFeature {
            offsets: self.offsets.iter().map(|&o| o - self.base).collect(),
            ids: self.ids.to_vec(),
            weights: self.weights.map(<[f32]>::to_vec),
        }
    }
}

impl SparseFeature {
    /// Borrows this feature as a [`SparseView`] (nothing copied).
    pub fn view(&self) -> SparseView<'_> {
        SparseView {
            offsets: Cow::Borrowed(&self.offsets),
            base: 0,
            ids: &self.ids,
            weights: self.weights.as_deref(),
        }
    }
}

/// Dense features, sparse ids and optional labels of `size` samples, borrowed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchView<'a> {
    /// Number of samples.
    pub size: usize,
    /// Dense features per sample.
    pub n_dense: usize,
    /// `[size, n_dense]` row-major, already transformed (e.g. `log(1 + max(x, 0))`).
    pub dense: &'a [f32],
    /// One entry per table.
    pub sparse: Vec<SparseView<'a>>,
    /// Click labels in {0, 1} when known.
    pub labels: Option<&'a [f32]>,
}

impl BatchView<'_> {
    /// An owned copy (offsets rebased to 0).
    pub fn to_batch(&self) -> Batch {
        Batch {
            size: self.size,
            n_dense: self.n_dense,
            dense: self.dense.to_vec(),
            sparse: self
                .sparse
                .iter()
                .map(SparseView::to_owned_feature)
                .collect(),
            labels: self.labels.map(<[f32]>::to_vec),
        }
    }
}

impl Batch {
    /// Borrows this batch as a [`BatchView`] (nothing copied but one small struct per table).
    pub fn view(&self) -> BatchView<'_> {
        BatchView {
            size: self.size,
            n_dense: self.n_dense,
            dense: &self.dense,
            sparse: self.sparse.iter().map(SparseFeature::view).collect(),
            labels: self.labels.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_borrows_the_batch_and_round_trips() {
        let batch = Batch {
            size: 2,
            n_dense: 1,
            dense: vec![0.5, 1.5],
            sparse: vec![
                SparseFeature::from_lengths(&[2, 1], vec![3, 4, 5]),
                SparseFeature::one_hot(vec![7, 8]),
            ],
            labels: Some(vec![0.0, 1.0]),
        };
        let view = batch.view();
        assert!(std::ptr::eq(view.dense.as_ptr(), batch.dense.as_ptr()));
        assert!(std::ptr::eq(
            view.sparse[0].ids.as_ptr(),
            batch.sparse[0].ids.as_ptr()
        ));
        assert!(matches!(view.sparse[1].offsets, Cow::Borrowed(_)));
        assert_eq!(view.sparse[0].num_bags(), 2);
        assert_eq!(view.to_batch(), batch);
    }

    #[test]
    fn a_windowed_feature_rebases_only_when_copied() {
        // KJT of 2 tables × 2 samples: table 1's bags are offsets[2..=4] over values[3..6].
        let offsets = [0i64, 2, 3, 5, 6];
        let values = [10i64, 11, 12, 13, 14, 15];
        let f = SparseView::windowed(&offsets[2..], &values[3..6], None);
        assert_eq!(f.base, 3);
        assert_eq!(f.num_bags(), 2);
        let owned = f.to_owned_feature();
        assert_eq!(owned.offsets, vec![0, 2, 3]);
        assert_eq!(owned.ids, vec![13, 14, 15]);
    }
}
