//! Borrowing numpy buffers as the library's [`BatchView`]: dense `[B, n_dense]`, and the sparse
//! ids either one-hot `[B, n_tables]` or jagged per table like TorchRec's KeyedJaggedTensor
//! (`values` with `lengths` or `offsets`, table-major: every sample of table 0, then table 1,
//! ...). Everything is checked before anything is sliced; a bad input is a `ValueError`, never a
//! panic.
//!
//! This runs with the GIL released. What is borrowed and what is copied:
//! - dense (C-contiguous float32): borrowed;
//! - jagged `values`, `weights` and `offsets`: borrowed; each table is a window of the KJT
//!   offsets over its stretch of `values` ([`SparseView::windowed`]), so nothing is rebased;
//! - jagged `lengths`: turned into KJT offsets once (`n_tables * B + 1` integers);
//! - one-hot `sparse`: table `t`'s ids are strided in the `[B, n_tables]` array, and the
//!   embedding-bag kernels read contiguous ids, so they are transposed once into a reused buffer
//!   (`B * n_tables` ids, plus the `B + 1` offsets `0..=B` every table shares).
//!
//! The buffers live in an [`InputBuffers`] the model reuses from call to call; [`Built::copied`]
//! counts the bytes written into them (0 for dense + jagged with offsets).

use std::borrow::Cow;

use pyo3::PyResult;
use pyo3::exceptions::PyValueError;
use quantrec_data::{BatchView, SparseView};

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

/// Buffers for what cannot be borrowed, reused across calls (one per concurrent call).
#[derive(Debug, Default)]
pub struct InputBuffers {
    /// One-hot ids regrouped table-major (`[n_tables, B]`).
    ids: Vec<i64>,
    /// Offsets that had to be computed: `0..=B` (one-hot) or KJT offsets from lengths.
    offsets: Vec<i64>,
}

/// A request's inputs as the model reads them.
#[derive(Debug)]
pub struct Built<'a> {
    /// The batch, borrowing the numpy buffers and the [`InputBuffers`].
    pub view: BatchView<'a>,
    /// Bytes of input converted or copied into the buffers for this call.
    pub copied: usize,
}

/// Views the inputs of `rows` samples (the dense array's first dimension) as a batch, borrowing
/// what can be borrowed and filling `buffers` with the rest.
pub fn build_view<'a>(
    shape: Shape,
    rows: usize,
    dense: &'a [f32],
    sparse: Sparse<'a>,
    buffers: &'a mut InputBuffers,
) -> PyResult<Built<'a>> {
    let Shape { n_dense, n_tables } = shape;
    if dense.len() != rows * n_dense {
        return invalid(format!(
            "dense has {} values for {rows} samples; the model takes {n_dense} dense features",
            dense.len()
        ));
    }
    let (sparse, copied) = match sparse {
        Sparse::Absent if n_tables == 0 => (Vec::new(), 0),
        Sparse::Absent => {
            return invalid(format!(
                "the model has {n_tables} tables: pass sparse=[B, {n_tables}] ids, or values= with lengths= or offsets="
            ));
        }
        Sparse::OneHot(ids) => one_hot(ids, rows, n_tables, buffers)?,
        Sparse::Jagged {
            values,
            bags,
            weights,
        } => jagged(values, bags, weights, rows, n_tables, buffers)?,
    };
    Ok(Built {
        view: BatchView {
            size: rows,
            n_dense,
            dense,
            sparse,
            labels: None,
        },
        copied,
    })
}

/// Bytes of `n` values of `T`.
fn bytes_of<T>(n: usize) -> usize {
    n * std::mem::size_of::<T>()
}

/// Columns of a row-major `[rows, n_tables]` id matrix as one-hot features: transposed into
/// `buffers` (the kernels read each table's ids contiguously).
fn one_hot<'a>(
    ids: &[i64],
    rows: usize,
    n_tables: usize,
    buffers: &'a mut InputBuffers,
) -> PyResult<(Vec<SparseView<'a>>, usize)> {
    if ids.len() != rows * n_tables {
        return invalid(format!(
            "sparse has {} ids for {rows} samples; expected [B, n_tables] = [{rows}, {n_tables}]",
            ids.len()
        ));
    }
    let InputBuffers {
        ids: by_table,
        offsets,
    } = buffers;
    by_table.clear();
    by_table.resize(ids.len(), 0);
    // Row by row (sequential reads), each id to its table's column.
    for (b, row) in ids.chunks_exact(n_tables.max(1)).enumerate() {
        for (t, &id) in row.iter().enumerate() {
            by_table[t * rows + b] = id;
        }
    }
    offsets.clear();
    offsets.extend(0..=rows as i64);
    let (by_table, offsets): (&'a [i64], &'a [i64]) = (by_table, offsets);
    let sparse = (0..n_tables)
        .map(|t| SparseView {
            offsets: Cow::Borrowed(offsets),
            base: 0,
            ids: &by_table[t * rows..(t + 1) * rows],
            weights: None,
        })
        .collect();
    Ok((sparse, bytes_of::<i64>(by_table.len() + offsets.len())))
}

/// KJT offsets (`n_tables * rows + 1` values), checked: the given ones borrowed, or computed
/// from lengths into `buffer`.
fn kjt_offsets<'a>(
    bags: Bags<'a>,
    n_values: usize,
    bag_count: usize,
    buffer: &'a mut Vec<i64>,
) -> PyResult<&'a [i64]> {
    let offsets: &'a [i64] = match bags {
        Bags::Lengths(lengths) => {
            if lengths.len() != bag_count {
                return invalid(format!(
                    "lengths has {} values; expected n_tables * B = {bag_count} (table-major, as in a KeyedJaggedTensor)",
                    lengths.len()
                ));
            }
            buffer.clear();
            buffer.reserve(bag_count + 1);
            let mut acc = 0i64;
            buffer.push(0);
            for (i, &l) in lengths.iter().enumerate() {
                if l < 0 {
                    return invalid(format!("lengths[{i}] is {l}; lengths cannot be negative"));
                }
                acc = acc.saturating_add(l);
                buffer.push(acc);
            }
            buffer
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
            offsets
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

/// Per-table features from table-major jagged ids: windows of the KJT offsets over `values`.
fn jagged<'a>(
    values: &'a [i64],
    bags: Bags<'a>,
    weights: Option<&'a [f32]>,
    rows: usize,
    n_tables: usize,
    buffers: &'a mut InputBuffers,
) -> PyResult<(Vec<SparseView<'a>>, usize)> {
    if let Some(w) = weights
        && w.len() != values.len()
    {
        return invalid(format!(
            "weights has {} values for {} ids (one per id)",
            w.len(),
            values.len()
        ));
    }
    let computed = matches!(bags, Bags::Lengths(_));
    let offsets = kjt_offsets(bags, values.len(), rows * n_tables, &mut buffers.offsets)?;
    // Checked above: offsets start at 0, never decrease and end at values.len(), so every
    // conversion and slice below is in range.
    let sparse = (0..n_tables)
        .map(|t| {
            let window = &offsets[t * rows..=(t + 1) * rows];
            let (lo, hi) = (window[0] as usize, window[rows] as usize);
            SparseView::windowed(window, &values[lo..hi], weights.map(|w| &w[lo..hi]))
        })
        .collect();
    let copied = if computed {
        bytes_of::<i64>(offsets.len())
    } else {
        0
    };
    Ok((sparse, copied))
}
