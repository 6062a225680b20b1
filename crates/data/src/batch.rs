//! A batch of samples: dense features plus, per table, jagged ids (TorchRec's KeyedJaggedTensor).

/// The ids of one sparse feature for a whole batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseFeature {
    /// `batch + 1` offsets into `ids` (bag `b` is `ids[offsets[b]..offsets[b+1]]`).
    pub offsets: Vec<i64>,
    /// Row ids, all bags back to back.
    pub ids: Vec<i64>,
    /// Optional per-id weights (for weighted pooling), same length as `ids`.
    pub weights: Option<Vec<f32>>,
}

impl SparseFeature {
    /// One id per sample (Criteo is one-hot).
    pub fn one_hot(ids: Vec<i64>) -> Self {
        SparseFeature {
            offsets: (0..=ids.len() as i64).collect(),
            ids,
            weights: None,
        }
    }

    /// Builds offsets from per-sample lengths.
    pub fn from_lengths(lengths: &[usize], ids: Vec<i64>) -> Self {
        let mut offsets = Vec::with_capacity(lengths.len() + 1);
        let mut acc = 0i64;
        offsets.push(0);
        for &l in lengths {
            acc += l as i64;
            offsets.push(acc);
        }
        SparseFeature {
            offsets,
            ids,
            weights: None,
        }
    }

    /// Number of bags.
    pub fn num_bags(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
}

/// Dense features, sparse ids and optional labels of `size` samples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// Number of samples.
    pub size: usize,
    /// Dense features per sample.
    pub n_dense: usize,
    /// `[size, n_dense]` row-major, already transformed (e.g. `log(1 + max(x, 0))`).
    pub dense: Vec<f32>,
    /// One entry per table.
    pub sparse: Vec<SparseFeature>,
    /// Click labels in {0, 1} when known.
    pub labels: Option<Vec<f32>>,
}

impl Batch {
    /// A batch of `size` samples without labels: `dense` is `[size, n_dense]` row-major, `sparse`
    /// one feature per table.
    pub fn unlabeled(
        size: usize,
        n_dense: usize,
        dense: Vec<f32>,
        sparse: Vec<SparseFeature>,
    ) -> Batch {
        Batch {
            size,
            n_dense,
            dense,
            sparse,
            labels: None,
        }
    }
}
