//! A validated pooling job: what every kernel level runs on, and the checks that make it safe.
//!
//! Validation happens once per call (bag boundaries, weights, table bytes, output size); ids are checked
//! by the kernels (the AVX-512 kernel scans each bag's ids once with [`ids_below`] before reading its
//! rows when there is no remap; the other levels, and remapped jobs, compare per id), and a kernel
//! that meets a bad id stops and reports its bag, from which [`Job::id_error`] rebuilds the exact
//! error of the scalar oracle.

use super::scalar::resolve_row;
use super::{Bags, EmbeddingBag, Indices, Lookup, Pooling};
use crate::formats::TableFormat;
use crate::{BagProblem, KernelError, Result};

/// An id type the kernels are generic over.
pub(crate) trait Idx: Copy + Send + Sync {
    /// The id widened to i64.
    fn wide(self) -> i64;
}

impl Idx for i32 {
    #[inline(always)]
    fn wide(self) -> i64 {
        i64::from(self)
    }
}

impl Idx for i64 {
    #[inline(always)]
    fn wide(self) -> i64 {
        self
    }
}

/// A kernel over bags `lo..hi` of a job; `Err(b)` names the first bag holding a bad id.
pub(crate) type RangeFn = unsafe fn(&Job<'_>, usize, usize) -> std::result::Result<(), usize>;

/// Cache lines of float rows the kernels keep in flight ahead (see `prefetch_rows`).
pub(crate) const PREFETCH_LINES: usize = 64;

/// For fused rows spanning more than one cache line: ids ahead at which the AVX-512 kernel touches
/// the first line of a row, so the page walk for that row is done before the whole row is
/// prefetched [`Job::prefetch`] ids ahead.
pub(crate) const FAR_PREFETCH_ROWS: usize = 40;

/// True when every id lies in `0..rows` (a negative id widens to a huge `u64`): a branch-free
/// maximum that compiles to a few vector compares per bag in the SIMD kernels.
#[inline(always)]
pub(crate) fn ids_below<I: Idx>(ids: &[I], rows: usize) -> bool {
    ids.iter().fold(0u64, |m, id| m.max(id.wide() as u64)) < rows as u64
}

/// How many ids ahead the kernels prefetch a row. Float rows: about [`PREFETCH_LINES`] lines in
/// flight, between 4 and 64 rows. Fused rows (measured on the AVX-512 kernel against 64 lines'
/// worth): 64 rows when a row is at most 32 bytes (a line holds two or more rows), else 16 rows.
fn prefetch_rows(format: TableFormat, row_bytes: usize) -> usize {
    if format.is_fused() {
        if row_bytes <= 32 { 64 } else { 16 }
    } else {
        (PREFETCH_LINES / row_bytes.div_ceil(64).max(1)).clamp(4, 64)
    }
}

/// One table's lookup, validated, with a raw pointer to where bag 0 of this table goes.
pub(crate) struct Job<'a> {
    /// The table's format.
    pub format: TableFormat,
    /// The table bytes, at least `rows · row_bytes` long.
    pub table: &'a [u8],
    /// Rows of the table.
    pub rows: usize,
    /// Bytes per row.
    pub row_bytes: usize,
    /// Bytes of codes before the scale and bias (fused formats).
    pub code_bytes: usize,
    /// Row dimension.
    pub dim: usize,
    /// The ids.
    pub indices: Indices<'a>,
    /// Bag boundaries (validated against `indices`).
    pub bags: Bags<'a>,
    /// Per-sample weights (weighted pooling only; as long as `indices`).
    pub weights: Option<&'a [f32]>,
    /// Whether to divide by the bag length.
    pub mean: bool,
    /// Pruning remap.
    pub remap: Option<&'a [i32]>,
    /// Output of bag 0, column 0 of this table.
    pub out: *mut f32,
    /// Floats between consecutive bags' outputs.
    pub out_stride: usize,
    /// Rows to prefetch ahead.
    pub prefetch: usize,
    /// For rows spanning several cache lines: how far ahead (in ids) to touch just the first line
    /// of a row, so its page translation is ready when the whole row is prefetched; 0 = off.
    pub prefetch_far: usize,
}

impl<'a> Job<'a> {
    /// Checks one table's call like the scalar oracle does (same errors in the same order) and builds the job.
    pub(crate) fn new(
        bag: &EmbeddingBag<'a>,
        lookup: &Lookup<'a>,
        table_index: usize,
        out: &mut [f32],
        out_stride: usize,
    ) -> Result<Job<'a>> {
        check_table(bag, table_index)?;
        lookup.validate(table_index, bag.pooling)?;
        check_out(
            bag.table.dim,
            lookup.num_bags,
            table_index,
            out.len(),
            out_stride,
        )?;
        Ok(Job::unchecked(bag, lookup, out.as_mut_ptr(), out_stride))
    }

    /// Builds a job from checked parts; `out` must cover every bag's `dim` floats at `out_stride`.
    pub(crate) fn unchecked(
        bag: &EmbeddingBag<'a>,
        lookup: &Lookup<'a>,
        out: *mut f32,
        out_stride: usize,
    ) -> Job<'a> {
        let t = &bag.table;
        let row_bytes = t.format.row_bytes(t.dim);
        let lines = row_bytes.div_ceil(64).max(1);
        Job {
            format: t.format,
            table: t.data,
            rows: t.rows,
            row_bytes,
            code_bytes: t.format.code_bytes(t.dim),
            dim: t.dim,
            indices: lookup.indices,
            bags: lookup.bags,
            weights: if bag.pooling == Pooling::WeightedSum {
                lookup.per_sample_weights
            } else {
                None
            },
            mean: bag.pooling == Pooling::Mean,
            remap: bag.remap,
            out,
            out_stride,
            prefetch: prefetch_rows(t.format, row_bytes),
            prefetch_far: if t.format.is_fused() && lines > 1 {
                FAR_PREFETCH_ROWS
            } else {
                0
            },
        }
    }

    /// Number of ids.
    #[inline]
    pub(crate) fn num_ids(&self) -> usize {
        self.indices.len()
    }

    /// First id position of bag `b`.
    #[inline]
    pub(crate) fn bag_start(&self, b: usize) -> usize {
        match self.bags {
            Bags::Offsets(o) if b < o.len() => o.get(b) as usize,
            Bags::Offsets(_) => self.num_ids(),
            Bags::Lengths(l) => (0..b).map(|i| l.get(i) as usize).sum(),
        }
    }

    /// One past the last id position of bag `b`, which starts at `start`.
    #[inline]
    pub(crate) fn bag_end(&self, b: usize, start: usize) -> usize {
        match self.bags {
            Bags::Offsets(o) => {
                if b + 1 < o.len() {
                    o.get(b + 1) as usize
                } else {
                    self.num_ids()
                }
            }
            Bags::Lengths(l) => start + l.get(b) as usize,
        }
    }

    /// The table row of `id`: `Ok(None)` for a pruned id, `Err(())` for a bad one.
    #[inline(always)]
    #[allow(clippy::result_unit_err)]
    pub(crate) fn resolve(&self, id: i64) -> std::result::Result<Option<usize>, ()> {
        match self.remap {
            None => {
                if (id as u64) < self.rows as u64 {
                    Ok(Some(id as usize))
                } else {
                    Err(())
                }
            }
            Some(map) => {
                if (id as u64) >= map.len() as u64 {
                    return Err(());
                }
                let r = map[id as usize];
                if r == -1 {
                    Ok(None)
                } else if r >= 0 && (r as u64) < self.rows as u64 {
                    Ok(Some(r as usize))
                } else {
                    Err(())
                }
            }
        }
    }

    /// The row a prefetch at id `id` should target, if the id looks valid (never read through).
    #[inline(always)]
    pub(crate) fn prefetch_row(&self, id: i64) -> Option<usize> {
        let r = match self.remap {
            None => id as u64,
            Some(map) => {
                if (id as u64) >= map.len() as u64 {
                    return None;
                }
                map[id as usize] as u64
            }
        };
        (r < self.rows as u64).then_some(r as usize)
    }

    /// Per-sample weight of id position `i` (1 without weights).
    #[inline(always)]
    pub(crate) fn weight(&self, i: usize) -> f32 {
        match self.weights {
            Some(w) => w[i],
            None => 1.0,
        }
    }

    /// The error the scalar oracle reports for bag `b` (which a kernel found to hold a bad id).
    pub(crate) fn id_error(
        &self,
        bag: &EmbeddingBag<'_>,
        table_index: usize,
        b: usize,
    ) -> KernelError {
        let start = self.bag_start(b);
        let end = self.bag_end(b, start);
        for i in start..end {
            if let Err(e) = resolve_row(bag, self.indices.get(i), table_index, b) {
                return e;
            }
        }
        // A kernel only stops on an id `resolve` rejects, which `resolve_row` rejects too.
        KernelError::BadBags {
            table: table_index,
            problem: BagProblem::UnreportedBadId { bag: b },
        }
    }
}

/// Checks that the table's bytes cover `rows × row_bytes`.
pub(crate) fn check_table(bag: &EmbeddingBag<'_>, table_index: usize) -> Result<()> {
    let t = &bag.table;
    let needed = t.rows.checked_mul(t.format.row_bytes(t.dim));
    match needed {
        Some(n) if t.data.len() >= n => Ok(()),
        _ => Err(KernelError::Shape {
            what: "table bytes (rows × row bytes)",
            index: Some(table_index),
            expected: needed.unwrap_or(usize::MAX),
            found: t.data.len(),
        }),
    }
}

/// Checks that `out_len` floats hold `num_bags` rows of `dim` at `out_stride`.
pub(crate) fn check_out(
    dim: usize,
    num_bags: usize,
    table_index: usize,
    out_len: usize,
    out_stride: usize,
) -> Result<()> {
    if num_bags == 0 {
        return Ok(());
    }
    let needed = (num_bags - 1)
        .checked_mul(out_stride)
        .and_then(|n| n.checked_add(dim));
    match needed {
        Some(n) if out_len >= n && (num_bags == 1 || out_stride >= dim) => Ok(()),
        _ => Err(KernelError::Shape {
            what: "table output",
            index: Some(table_index),
            expected: needed.unwrap_or(usize::MAX),
            found: out_len,
        }),
    }
}
