//! Remote embedding tables: the seam between the forward pass and a table store that does not
//! live in this process (the tables crate's Redis Cluster store and its hot-row cache).
//!
//! A [`RowSource`] returns the stored bytes (the table's row-wise format, FBGEMM layout, byte for
//! byte) of a sorted set of unique rows of a table. With a source attached
//! ([`Model::set_row_source`]), every [`Model::predict`] call gathers the unique rows each table
//! needs for that batch, fetches them in one [`RowSource::fetch_rows`] call, builds a compact local
//! table (row `i` = the `i`-th smallest id) and a batch whose ids are remapped into it, and runs
//! the same embedding-bag kernels on them. A bag reads the same row bytes in the same order as it
//! would from the full table, so the results are bit-identical to the in-memory model.
//!
//! The model crate knows nothing of Redis or async runtimes: a source is any `Send + Sync` type.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use quantrec_data::view::{BatchView, SparseView};
use quantrec_kernels::KernelError;
use quantrec_kernels::formats::TableFormat;

use crate::artifact::Artifact;
use crate::model::Model;
use crate::tables::{StoredTable, TableBytes};
use crate::{ModelError, Result};

/// Format and shape of one table as a [`RowSource`] holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableShape {
    /// Storage format.
    pub format: TableFormat,
    /// Number of rows.
    pub rows: usize,
    /// Row dimension.
    pub dim: usize,
}

impl TableShape {
    /// Bytes of one stored row.
    pub fn row_bytes(&self) -> usize {
        self.format.row_bytes(self.dim)
    }
}

/// The rows one table needs for a batch.
#[derive(Clone, Copy, Debug)]
pub struct RowRequest<'a> {
    /// Index of the table in the model.
    pub table: usize,
    /// Row ids, strictly increasing, each below the table's row count.
    pub rows: &'a [u64],
}

/// A table store outside the process.
pub trait RowSource: Send + Sync + std::fmt::Debug {
    /// Format and shape of every table, in model order.
    fn table_shapes(&self) -> Vec<TableShape>;

    /// For each request `i`, appends the stored bytes of `requests[i].rows` (in that order,
    /// `row_bytes` each) to `out[i]`, which the caller passes empty (`out.len() == requests.len()`).
    /// A row that cannot be had within the source's deadline fails the whole call with
    /// [`ModelError::RemoteRows`]; the source never blocks without bound.
    fn fetch_rows(&self, requests: &[RowRequest<'_>], out: &mut [Vec<u8>]) -> Result<()>;
}

/// A batch rewritten against compact per-batch tables.
#[derive(Debug)]
pub(crate) struct LocalTables {
    /// Table `t` holds the unique rows batch table `t` needs, in increasing id order.
    pub(crate) tables: Vec<StoredTable>,
    /// Per table, the input batch's ids each replaced by its row in the compact table.
    ids: Vec<Vec<i64>>,
}

impl LocalTables {
    /// `batch` (the one gathered for) with its ids replaced by the compact tables' rows; dense
    /// values, offsets and weights stay borrowed from it.
    pub(crate) fn view<'a>(&'a self, batch: &'a BatchView<'_>) -> BatchView<'a> {
        BatchView {
            size: batch.size,
            n_dense: batch.n_dense,
            dense: batch.dense,
            sparse: batch
                .sparse
                .iter()
                .zip(&self.ids)
                .map(|(f, ids)| SparseView {
                    offsets: Cow::Borrowed(&f.offsets),
                    base: f.base,
                    ids,
                    weights: f.weights,
                })
                .collect(),
            labels: None,
        }
    }
}

/// The unique ids of one sparse feature, sorted, after checking each against `rows` (the error
/// names the first offending bag, as the kernels would).
fn unique_ids(table: usize, f: &SparseView<'_>, rows: usize) -> Result<Vec<u64>> {
    let mut ids = Vec::with_capacity(f.ids.len());
    for (i, &id) in f.ids.iter().enumerate() {
        if id < 0 || id as u64 >= rows as u64 {
            // Bag of id i: the last bag whose start is at most i (offsets are checked non-decreasing).
            let bag = f
                .offsets
                .partition_point(|&o| o - f.base <= i as i64)
                .saturating_sub(1);
            return Err(KernelError::IdOutOfRange {
                table,
                bag,
                id,
                rows,
            }
            .into());
        }
        ids.push(id as u64);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Fetches the rows `batch` needs from `source` and rewrites the batch against them. The batch
/// has passed the model's shape checks.
pub(crate) fn gather(
    model: &Model,
    source: &dyn RowSource,
    batch: &BatchView<'_>,
) -> Result<LocalTables> {
    let uniques = batch
        .sparse
        .iter()
        .zip(&model.tables)
        .enumerate()
        .map(|(t, (f, table))| unique_ids(t, f, table.rows))
        .collect::<Result<Vec<_>>>()?;
    let requests: Vec<RowRequest<'_>> = uniques
        .iter()
        .enumerate()
        .map(|(table, rows)| RowRequest { table, rows })
        .collect();
    let mut bytes = vec![Vec::new(); requests.len()];
    source.fetch_rows(&requests, &mut bytes)?;
    let mut tables = Vec::with_capacity(uniques.len());
    let mut local_ids = Vec::with_capacity(uniques.len());
    for (t, ((ids, rows), f)) in uniques.iter().zip(bytes).zip(&batch.sparse).enumerate() {
        let full = &model.tables[t];
        let expected = ids.len() * full.format.row_bytes(full.dim);
        if rows.len() != expected {
            return Err(ModelError::RemoteRowBytes {
                table: t,
                expected,
                found: rows.len(),
            });
        }
        // A table no bag of this batch reads still gets one (zero, never read) row: the
        // embedding-bag kernels refuse a table of zero rows even when every bag is empty.
        let (n, rows) = if ids.is_empty() {
            (1, vec![0u8; full.format.row_bytes(full.dim)])
        } else {
            (ids.len(), rows)
        };
        tables.push(StoredTable::new(
            full.format,
            n,
            full.dim,
            TableBytes::Owned(rows),
        )?);
        let remapped = f
            .ids
            .iter()
            .map(|&id| {
                // Present by construction: `ids` holds every id of `f`.
                ids.binary_search(&(id as u64)).map_or(0, |i| i as i64)
            })
            .collect();
        local_ids.push(remapped);
    }
    Ok(LocalTables {
        tables,
        ids: local_ids,
    })
}

impl Model {
    /// Serves every table from `source` from now on (see the [module docs](self)). The source's
    /// tables must have this model's formats and shapes.
    pub fn set_row_source(&mut self, source: Arc<dyn RowSource>) -> Result<()> {
        let shapes = source.table_shapes();
        if shapes.len() != self.tables.len() {
            return Err(ModelError::RemoteTableMismatch {
                table: shapes.len().min(self.tables.len()),
                local: format!("{} tables", self.tables.len()),
                remote: format!("{} tables", shapes.len()),
            });
        }
        for (t, (s, local)) in shapes.iter().zip(&self.tables).enumerate() {
            let l = TableShape {
                format: local.format,
                rows: local.rows,
                dim: local.dim,
            };
            if *s != l {
                return Err(ModelError::RemoteTableMismatch {
                    table: t,
                    local: describe(&l),
                    remote: describe(s),
                });
            }
        }
        self.row_source = Some(source);
        Ok(())
    }

    /// Goes back to the local tables.
    pub fn clear_row_source(&mut self) {
        self.row_source = None;
    }

    /// The remote table source, when one is attached.
    pub fn row_source(&self) -> Option<&Arc<dyn RowSource>> {
        self.row_source.as_ref()
    }

    /// Loads an artifact's configuration, plan and dense layers and serves its tables from
    /// `source`. The artifact's own tables stay memory-mapped and are never read by the forward
    /// pass (their pages are not touched).
    pub fn load_with_remote_tables(path: &Path, source: Arc<dyn RowSource>) -> Result<Model> {
        let mut model = Artifact::load(path)?.model;
        model.set_row_source(source)?;
        Ok(model)
    }
}

fn describe(s: &TableShape) -> String {
    format!("{} rows × {} in {}", s.rows, s.dim, s.format.name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quantrec_data::batch::SparseFeature;
    use std::sync::Mutex;

    #[derive(Debug)]
    struct Echo {
        tables: Vec<(TableShape, Vec<u8>)>,
        calls: Mutex<Vec<Vec<Vec<u64>>>>,
    }

    impl RowSource for Echo {
        fn table_shapes(&self) -> Vec<TableShape> {
            self.tables.iter().map(|t| t.0).collect()
        }
        fn fetch_rows(&self, requests: &[RowRequest<'_>], out: &mut [Vec<u8>]) -> Result<()> {
            self.calls
                .lock()
                .unwrap()
                .push(requests.iter().map(|r| r.rows.to_vec()).collect());
            for (r, o) in requests.iter().zip(out) {
                let (shape, bytes) = &self.tables[r.table];
                let rb = shape.row_bytes();
                for &id in r.rows {
                    o.extend_from_slice(&bytes[id as usize * rb..(id as usize + 1) * rb]);
                }
            }
            Ok(())
        }
    }

    #[test]
    fn unique_ids_are_sorted_and_out_of_range_names_the_bag() {
        let f = SparseFeature::from_lengths(&[2, 0, 3], vec![5, 1, 5, 9, 1]);
        assert_eq!(unique_ids(0, &f.view(), 10).unwrap(), vec![1, 5, 9]);
        // The same bags as a window of KJT offsets over the ids after 4 others.
        let kjt = [0i64, 4, 6, 6, 9];
        let windowed = SparseView::windowed(&kjt[1..], &f.ids, None);
        for f in [f.view(), windowed] {
            match unique_ids(3, &f, 9) {
                Err(ModelError::Kernel(KernelError::IdOutOfRange {
                    table: 3,
                    bag: 2,
                    id: 9,
                    rows: 9,
                })) => {}
                other => panic!("{other:?}"),
            }
        }
        let neg = SparseFeature::one_hot(vec![0, -1]);
        assert!(matches!(
            unique_ids(0, &neg.view(), 4),
            Err(ModelError::Kernel(KernelError::IdOutOfRange {
                bag: 1,
                id: -1,
                ..
            }))
        ));
    }

    #[test]
    fn echo_source_records_sorted_unique_requests() {
        let shape = TableShape {
            format: TableFormat::F32,
            rows: 4,
            dim: 2,
        };
        let bytes: Vec<u8> = (0..32).collect();
        let echo = Echo {
            tables: vec![(shape, bytes)],
            calls: Mutex::new(Vec::new()),
        };
        let mut out = vec![Vec::new()];
        echo.fetch_rows(
            &[RowRequest {
                table: 0,
                rows: &[1, 3],
            }],
            &mut out,
        )
        .unwrap();
        assert_eq!(out[0], (8..16).chain(24..32).collect::<Vec<u8>>());
    }
}
