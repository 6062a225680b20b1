//! Table-batched pooling: every table of a model for a whole batch in one call (a DLRM forward's
//! sparse part), written into a caller-provided `[batch, Σ dim]` (or `[batch, tables, dim]`) output.
//!
//! Nothing is allocated: each table's bags go to `out[b·out_stride + column ..][..dim]`. Above
//! [`PARALLEL_MIN_IDS`] ids the work is split across rayon's pool in (table, bag-chunk) tasks; below
//! it, or with [`Parallelism::Single`], everything runs on the calling thread.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::plan::{Job, check_table};
use super::{EmbeddingBag, EmbeddingBagOps, Lookup};
use crate::{Isa, KernelError, Result};

/// Fewest ids (summed over tables) for which [`Parallelism::Auto`] uses more than one thread.
pub const PARALLEL_MIN_IDS: usize = 16 * 1024;

/// Fewest bags per parallel task.
const MIN_CHUNK_BAGS: usize = 32;

/// One table of a table-batched lookup.
#[derive(Clone, Copy, Debug)]
pub struct TableBag<'a> {
    /// The table, pooling mode and remap.
    pub bag: EmbeddingBag<'a>,
    /// Its ids for the batch (every table has the same number of bags).
    pub lookup: Lookup<'a>,
    /// First output column of this table within each bag's output row.
    pub column: usize,
}

/// Threads a batched call may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parallelism {
    /// The calling thread only.
    Single,
    /// Rayon's pool when there is enough work ([`PARALLEL_MIN_IDS`]), else the calling thread.
    Auto,
}

/// Pools every table for the batch at [`Isa::active`] with [`Parallelism::Auto`]: bag `b` of
/// table `t` goes to `out[b·out_stride + tables[t].column ..][..dim_t]`. Column ranges must not
/// overlap and must fit in `out_stride`. On a bad id, the error names the first table (then bag) holding one.
pub fn pool_tables(tables: &[TableBag<'_>], out: &mut [f32], out_stride: usize) -> Result<()> {
    pool_tables_with_isa(Isa::active(), tables, out, out_stride, Parallelism::Auto)
}

/// [`pool_tables`] at a chosen ISA level and parallelism.
pub fn pool_tables_with_isa(
    isa: Isa,
    tables: &[TableBag<'_>],
    out: &mut [f32],
    out_stride: usize,
    parallelism: Parallelism,
) -> Result<()> {
    let ops = EmbeddingBagOps::for_isa(isa)?;
    let Some(first) = tables.first() else {
        return Ok(());
    };
    let batch = first.lookup.num_bags;
    let mut width = 0usize;
    let mut total_ids = 0usize;
    for (t, tb) in tables.iter().enumerate() {
        check_table(&tb.bag, t)?;
        tb.lookup.validate(t, tb.bag.pooling)?;
        if tb.lookup.num_bags != batch {
            return Err(KernelError::Shape {
                what: "bags of a table (every table needs the batch size of table 0)",
                index: Some(t),
                expected: batch,
                found: tb.lookup.num_bags,
            });
        }
        let end = tb.column.checked_add(tb.bag.table.dim);
        match end {
            Some(e) if e <= out_stride => width = width.max(e),
            _ => {
                return Err(KernelError::Shape {
                    what: "end of a table's columns within an output row",
                    index: Some(t),
                    expected: out_stride,
                    found: end.unwrap_or(usize::MAX),
                });
            }
        }
        for ub in &tables[..t] {
            let (a0, a1) = (tb.column, tb.column + tb.bag.table.dim);
            let (b0, b1) = (ub.column, ub.column + ub.bag.table.dim);
            if a0 < a1 && b0 < b1 && a0 < b1 && b0 < a1 {
                // Table t's first column would have to be at or past the earlier table's last.
                return Err(KernelError::Shape {
                    what: "first column of a table (its columns overlap an earlier table's)",
                    index: Some(t),
                    expected: b1,
                    found: a0,
                });
            }
        }
        total_ids += tb.lookup.indices.len();
    }
    if batch == 0 || width == 0 {
        return Ok(());
    }
    let needed = (batch - 1)
        .checked_mul(out_stride)
        .and_then(|n| n.checked_add(width));
    match needed {
        Some(n) if out.len() >= n => {}
        _ => {
            return Err(KernelError::Shape {
                what: "batched output (bags × row stride)",
                index: None,
                expected: needed.unwrap_or(usize::MAX),
                found: out.len(),
            });
        }
    }
    let base = OutPtr(out.as_mut_ptr());
    let job = |t: usize| {
        let tb = &tables[t];
        // `column < out_stride` and the output covers (batch-1)·stride + width floats.
        Job::unchecked(
            &tb.bag,
            &tb.lookup,
            base.get().wrapping_add(tb.column),
            out_stride,
        )
    };
    let threads = crate::parallel::threads();
    if parallelism == Parallelism::Single || threads < 2 || total_ids < PARALLEL_MIN_IDS {
        for (t, tb) in tables.iter().enumerate() {
            let j = job(t);
            // SAFETY: every table and lookup was validated above, the output covers each table's
            // columns for every bag, the columns are disjoint, and `out` is borrowed exclusively.
            if let Err(b) = unsafe { ops.kernel(tb.bag.table.format)(&j, 0, batch) } {
                return Err(j.id_error(&tb.bag, t, b));
            }
        }
        return Ok(());
    }
    let chunk = batch.div_ceil(threads * 4).max(MIN_CHUNK_BAGS);
    let chunks = batch.div_ceil(chunk);
    let first_bad = AtomicUsize::new(usize::MAX);
    (0..tables.len() * chunks).into_par_iter().for_each(|k| {
        let (t, c) = (k / chunks, k % chunks);
        let (lo, hi) = (c * chunk, ((c + 1) * chunk).min(batch));
        let j = job(t);
        // SAFETY: as in the single-thread path; in addition, each task writes only bags lo..hi of
        // table t, and no two tasks share a (table, bag), so their writes are disjoint.
        if let Err(b) = unsafe { ops.kernel(tables[t].bag.table.format)(&j, lo, hi) } {
            first_bad.fetch_min(t * batch + b, Ordering::Relaxed);
        }
    });
    match first_bad.into_inner() {
        usize::MAX => Ok(()),
        key => {
            let (t, b) = (key / batch, key % batch);
            Err(job(t).id_error(&tables[t].bag, t, b))
        }
    }
}

/// The output base pointer, shared by tasks that write disjoint parts of it.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);

// SAFETY: tasks holding an OutPtr write disjoint (table, bag) regions of one exclusively borrowed
// output, so sending or sharing the pointer cannot create a data race.
unsafe impl Send for OutPtr {}
// SAFETY: see the Send impl.
unsafe impl Sync for OutPtr {}

impl OutPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}
