//! Turning borrowed numpy buffers into the library's [`Batch`]: dense `[B, n_dense]`, and the
//! sparse ids either one-hot `[B, n_tables]` or jagged per table like TorchRec's
//! KeyedJaggedTensor (`values` with `lengths` or `offsets`, table-major: every sample of table 0,
//! then table 1, ...). Everything is checked before anything is sliced; a bad input is a
//! `ValueError`, never a panic.
//!
//! This runs with the GIL released. The library's `Batch` owns its vectors, so the values are
//! copied once here (dense as is; ids regrouped per table, which the one-hot `[B, T]` layout needs
//! anyway); no copy happens on the Python side when dtypes and layout already match.

use pyo3::PyResult;
use pyo3::exceptions::PyValueError;
use quantrec_data::{Batch, SparseFeature};

/// How the bags of a jagged input are delimited.
#[derive(Clone, Copy, Debug)]
pub enum Bags<'a> {
    /// One length per (table, sample), table-major: `n_tables * B` values.
    Lengths(&'a [i64]),
    /// KJT offsets: `n_tables * B + 1` non-decreasing starts into `values`, from 0 to its length.
    Offsets(&'a [i64]),
}

/// The sparse part of a request.
#[derive(Clone, Copy, Debug)]
pub enum Sparse<'a> {
    /// No ids (only valid for a model without tables).
    Absent,
    /// One id per (sample, table), row-major `[B, n_tables]`.
    OneHot(&'a [i64]),
    /// All ids back to back (table-major), their bags, and optional per-id weights.
    Jagged {
        /// The ids.
        values: &'a [i64],
        /// Where each bag starts and ends.
        bags: Bags<'a>,
        /// One weight per id (weighted pooling), when given.
        weights: Option<&'a [f32]>,
    },
}

/// What the model expects of a batch.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Dense features per sample.
    pub n_dense: usize,
    /// Tables (sparse features).
    pub n_tables: usize,
}

fn invalid<T>(message: String) -> PyResult<T> {
    Err(PyValueError::new_err(message))
}

/// Builds the batch of `rows` samples (the dense array's first dimension).
pub fn build_batch(
    shape: Shape,
    rows: usize,
    dense: &[f32],
    sparse: Sparse<'_>,
) -> PyResult<Batch> {
    let Shape { n_dense, n_tables } = shape;
    if dense.len() != rows * n_dense {
        return invalid(format!(
            "dense has {} values for {rows} samples; the model takes {n_dense} dense features",
            dense.len()
        ));
    }
    let sparse = match sparse {
        Sparse::Absent if n_tables == 0 => Vec::new(),
        Sparse::Absent => {
            return invalid(format!(
                "the model has {n_tables} tables: pass sparse=[B, {n_tables}] ids, or values= with lengths= or offsets="
            ));
        }
        Sparse::OneHot(ids) => one_hot(ids, rows, n_tables)?,
        Sparse::Jagged {
            values,
            bags,
            weights,
        } => jagged(values, bags, weights, rows, n_tables)?,
    };
    Ok(Batch {
        size: rows,
        n_dense,
        dense: dense.to_vec(),
        sparse,
        labels: None,
    })
}

/// Columns of a row-major `[rows, n_tables]` id matrix as one-hot features.
fn one_hot(ids: &[i64], rows: usize, n_tables: usize) -> PyResult<Vec<SparseFeature>> {
    if ids.len() != rows * n_tables {
        return invalid(format!(
            "sparse has {} ids for {rows} samples; expected [B, n_tables] = [{rows}, {n_tables}]",
            ids.len()
        ));
    }
    Ok((0..n_tables)
        .map(|t| SparseFeature::one_hot(ids.iter().skip(t).step_by(n_tables).copied().collect()))
        .collect())
}

/// KJT offsets (`n_tables * rows + 1` values) from lengths or given offsets, checked.
fn kjt_offsets(bags: Bags<'_>, n_values: usize, bag_count: usize) -> PyResult<Vec<i64>> {
    let offsets = match bags {
        Bags::Lengths(lengths) => {
            if lengths.len() != bag_count {
                return invalid(format!(
                    "lengths has {} values; expected n_tables * B = {bag_count} (table-major, as in a KeyedJaggedTensor)",
                    lengths.len()
                ));
            }
            let mut offsets = Vec::with_capacity(bag_count + 1);
            let mut acc = 0i64;
            offsets.push(0);
            for (i, &l) in lengths.iter().enumerate() {
                if l < 0 {
                    return invalid(format!("lengths[{i}] is {l}; lengths cannot be negative"));
                }
                acc = acc.saturating_add(l);
                offsets.push(acc);
            }
            offsets
        }
        Bags::Offsets(offsets) => {
            if offsets.len() != bag_count + 1 {
                return invalid(format!(
                    "offsets has {} values; expected n_tables * B + 1 = {} (a KeyedJaggedTensor's offsets, with the trailing end)",
                    offsets.len(),
                    bag_count + 1
                ));
            }
            if let Some(i) = offsets.windows(2).position(|w| w[1] < w[0]) {
                return invalid(format!(
                    "offsets decrease at {i}: {} then {}",
                    offsets[i],
                    offsets[i + 1]
                ));
            }
            offsets.to_vec()
        }
    };
    let (first, last) = (offsets[0], offsets[bag_count]);
    if first != 0 || u64::try_from(last).ok() != Some(n_values as u64) {
        return invalid(format!(
            "the bags cover ids {first}..{last} but values has {n_values} ids (they must start at 0 and end at its length)"
        ));
    }
    Ok(offsets)
}

/// Per-table features from table-major jagged ids.
fn jagged(
    values: &[i64],
    bags: Bags<'_>,
    weights: Option<&[f32]>,
    rows: usize,
    n_tables: usize,
) -> PyResult<Vec<SparseFeature>> {
    if let Some(w) = weights
        && w.len() != values.len()
    {
        return invalid(format!(
            "weights has {} values for {} ids (one per id)",
            w.len(),
            values.len()
        ));
    }
    let offsets = kjt_offsets(bags, values.len(), rows * n_tables)?;
    // Checked above: offsets start at 0, never decrease and end at values.len(), so every
    // conversion and slice below is in range.
    let at = |i: usize| offsets[i] as usize;
    Ok((0..n_tables)
        .map(|t| {
            let (lo, hi) = (at(t * rows), at((t + 1) * rows));
            SparseFeature {
                offsets: offsets[t * rows..=(t + 1) * rows]
                    .iter()
                    .map(|&o| o - lo as i64)
                    .collect(),
                ids: values[lo..hi].to_vec(),
                weights: weights.map(|w| w[lo..hi].to_vec()),
            }
        })
        .collect())
}
