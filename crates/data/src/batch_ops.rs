//! Building, checking, slicing and joining [`Batch`]es.

use crate::batch::{Batch, SparseFeature};

use crate::DataError;

/// Accumulates samples one at a time into a [`Batch`].
#[derive(Clone, Debug)]
pub struct BatchBuilder {
    n_dense: usize,
    labelled: bool,
    size: usize,
    dense: Vec<f32>,
    labels: Vec<f32>,
    offsets: Vec<Vec<i64>>,
    ids: Vec<Vec<i64>>,
}

impl BatchBuilder {
    /// An empty builder for samples with `n_dense` dense features and `n_tables` sparse features.
    pub fn new(n_dense: usize, n_tables: usize, labelled: bool) -> Self {
        BatchBuilder {
            n_dense,
            labelled,
            size: 0,
            dense: Vec::new(),
            labels: Vec::new(),
            offsets: vec![vec![0]; n_tables],
            ids: vec![Vec::new(); n_tables],
        }
    }

    /// Samples so far.
    pub fn len(&self) -> usize {
        self.size
    }

    /// Whether no sample was pushed.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Adds a sample: `dense` has `n_dense` values, `bags[t]` the ids of table `t`, `label` is
    /// given iff the builder is labelled (checked by `debug_assert`; callers own the shapes).
    pub fn push<B: AsRef<[i64]>>(&mut self, dense: &[f32], bags: &[B], label: Option<f32>) {
        debug_assert_eq!(dense.len(), self.n_dense);
        debug_assert_eq!(bags.len(), self.ids.len());
        debug_assert_eq!(label.is_some(), self.labelled);
        self.dense.extend_from_slice(dense);
        for ((ids, offsets), bag) in self.ids.iter_mut().zip(&mut self.offsets).zip(bags) {
            ids.extend_from_slice(bag.as_ref());
            offsets.push(ids.len() as i64);
        }
        if let Some(y) = label {
            self.labels.push(y);
        }
        self.size += 1;
    }

    /// The batch built so far; the builder is left empty.
    pub fn take(&mut self) -> Batch {
        let n_tables = self.ids.len();
        let sparse = std::mem::replace(&mut self.offsets, vec![vec![0]; n_tables])
            .into_iter()
            .zip(std::mem::replace(&mut self.ids, vec![Vec::new(); n_tables]))
            .map(|(offsets, ids)| SparseFeature {
                offsets,
                ids,
                weights: None,
            })
            .collect();
        let batch = Batch {
            size: self.size,
            n_dense: self.n_dense,
            dense: std::mem::take(&mut self.dense),
            sparse,
            labels: self.labelled.then(|| std::mem::take(&mut self.labels)),
        };
        self.size = 0;
        batch
    }
}

fn invalid(what: String, expected: impl ToString, found: impl ToString) -> DataError {
    DataError::InvalidBatch {
        what,
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

/// Checks every length and offset of `batch`, and the ids against `table_rows` when it is not empty.
pub fn validate(batch: &Batch, table_rows: &[usize]) -> crate::Result<()> {
    if batch.dense.len() != batch.size * batch.n_dense {
        return Err(invalid(
            "dense length".into(),
            format!("{} × {}", batch.size, batch.n_dense),
            batch.dense.len(),
        ));
    }
    if let Some(labels) = &batch.labels
        && labels.len() != batch.size
    {
        return Err(invalid("label count".into(), batch.size, labels.len()));
    }
    if !table_rows.is_empty() && table_rows.len() != batch.sparse.len() {
        return Err(invalid(
            "table count".into(),
            table_rows.len(),
            batch.sparse.len(),
        ));
    }
    for (t, f) in batch.sparse.iter().enumerate() {
        if f.offsets.len() != batch.size + 1 {
            return Err(invalid(
                format!("table {t} offsets length"),
                batch.size + 1,
                f.offsets.len(),
            ));
        }
        if f.offsets[0] != 0 || *f.offsets.last().unwrap_or(&0) != f.ids.len() as i64 {
            return Err(invalid(
                format!("table {t} offsets"),
                format!("first 0 and last {} (the id count)", f.ids.len()),
                format!(
                    "first {} and last {}",
                    f.offsets[0],
                    f.offsets.last().unwrap_or(&0)
                ),
            ));
        }
        if let Some(b) = f.offsets.windows(2).position(|w| w[1] < w[0]) {
            return Err(invalid(
                format!("table {t} offsets"),
                "non-decreasing offsets",
                format!("offset {} > offset {}", b, b + 1),
            ));
        }
        if let Some(w) = &f.weights
            && w.len() != f.ids.len()
        {
            return Err(invalid(
                format!("table {t} weight count"),
                f.ids.len(),
                w.len(),
            ));
        }
        if let Some(&rows) = table_rows.get(t)
            && let Some(i) = f
                .ids
                .iter()
                .position(|&id| id < 0 || id as u64 >= rows as u64)
        {
            return Err(invalid(
                format!("table {t} id at position {i}"),
                format!("an id in 0..{rows}"),
                f.ids[i],
            ));
        }
    }
    Ok(())
}

/// Samples `start..end` of a valid batch as a new batch.
pub fn slice(batch: &Batch, start: usize, end: usize) -> Batch {
    let end = end.min(batch.size);
    let start = start.min(end);
    let sparse = batch
        .sparse
        .iter()
        .map(|f| {
            let (a, b) = (f.offsets[start] as usize, f.offsets[end] as usize);
            SparseFeature {
                offsets: f.offsets[start..=end]
                    .iter()
                    .map(|&o| o - a as i64)
                    .collect(),
                ids: f.ids[a..b].to_vec(),
                weights: f.weights.as_ref().map(|w| w[a..b].to_vec()),
            }
        })
        .collect();
    Batch {
        size: end - start,
        n_dense: batch.n_dense,
        dense: batch.dense[start * batch.n_dense..end * batch.n_dense].to_vec(),
        sparse,
        labels: batch.labels.as_ref().map(|l| l[start..end].to_vec()),
    }
}

/// Appends the samples of `other` to `into` (same dense width, table count, labelling and
/// weighting; `into` may be the empty default batch).
pub fn append(into: &mut Batch, other: &Batch) -> crate::Result<()> {
    if into.size == 0 && into.sparse.is_empty() && into.dense.is_empty() {
        *into = other.clone();
        return Ok(());
    }
    if into.n_dense != other.n_dense {
        return Err(invalid("dense width".into(), into.n_dense, other.n_dense));
    }
    if into.sparse.len() != other.sparse.len() {
        return Err(invalid(
            "table count".into(),
            into.sparse.len(),
            other.sparse.len(),
        ));
    }
    if into.labels.is_some() != other.labels.is_some() {
        return Err(invalid(
            "labels".into(),
            "both batches labelled or both unlabelled",
            "a mix",
        ));
    }
    for (t, (a, b)) in into.sparse.iter().zip(&other.sparse).enumerate() {
        if a.weights.is_some() != b.weights.is_some() {
            return Err(invalid(
                format!("table {t} weights"),
                "both weighted or both unweighted",
                "a mix",
            ));
        }
    }
    into.dense.extend_from_slice(&other.dense);
    if let (Some(a), Some(b)) = (&mut into.labels, &other.labels) {
        a.extend_from_slice(b);
    }
    for (a, b) in into.sparse.iter_mut().zip(&other.sparse) {
        let base = a.ids.len() as i64;
        a.offsets.extend(b.offsets[1..].iter().map(|&o| o + base));
        a.ids.extend_from_slice(&b.ids);
        if let (Some(wa), Some(wb)) = (&mut a.weights, &b.weights) {
            wa.extend_from_slice(wb);
        }
    }
    into.size += other.size;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Batch {
        let mut b = BatchBuilder::new(2, 2, true);
        b.push(&[1.0, 2.0], &[vec![3i64], vec![]], Some(1.0));
        b.push(&[3.0, 4.0], &[vec![0i64], vec![5, 6]], Some(0.0));
        b.push(&[5.0, 6.0], &[vec![1i64], vec![7]], Some(1.0));
        b.take()
    }

    #[test]
    fn builder_slice_append_round_trip() {
        let b = sample();
        validate(&b, &[4, 8]).unwrap();
        assert_eq!(b.sparse[1].offsets, vec![0, 0, 2, 3]);
        let head = slice(&b, 0, 1);
        let tail = slice(&b, 1, 3);
        assert_eq!(tail.sparse[1].offsets, vec![0, 2, 3]);
        assert_eq!(tail.dense, vec![3.0, 4.0, 5.0, 6.0]);
        validate(&tail, &[]).unwrap();
        let mut joined = Batch::default();
        append(&mut joined, &head).unwrap();
        append(&mut joined, &tail).unwrap();
        assert_eq!(joined, b);
    }

    #[test]
    fn validate_catches_inconsistencies() {
        let b = sample();
        assert!(matches!(
            validate(&b, &[4, 7]),
            Err(DataError::InvalidBatch { .. })
        ));
        let mut c = b.clone();
        c.sparse[0].offsets[1] = 2;
        c.sparse[0].offsets[2] = 1;
        assert!(validate(&c, &[]).is_err());
        let mut d = b.clone();
        d.dense.pop();
        assert!(validate(&d, &[]).is_err());
        let mut e = b;
        e.labels = Some(vec![1.0]);
        assert!(validate(&e, &[]).is_err());
    }
}
