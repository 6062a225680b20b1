//! The portable kernel behind [`Isa::Scalar`](crate::Isa::Scalar): the oracle's arithmetic on a
//! validated [`Job`], so non-x86 machines and the scalar level share the batching and error paths.

use super::Indices;
use super::plan::{Idx, Job};
use super::scalar::accumulate_row;

/// Pools bags `lo..hi` of `job`.
///
/// # Safety
/// `job` must come from [`Job::new`] or from checked parts, and no other thread may write the output
/// columns of these bags.
pub(crate) unsafe fn pool_range(job: &Job<'_>, lo: usize, hi: usize) -> Result<(), usize> {
    match job.indices {
        // SAFETY: forwarded contract.
        Indices::I32(ids) => unsafe { range(job, ids, lo, hi) },
        // SAFETY: forwarded contract.
        Indices::I64(ids) => unsafe { range(job, ids, lo, hi) },
    }
}

/// # Safety
/// As [`pool_range`]: `job` is validated, `ids` is its id array, `lo <= hi <= num_bags`, and no
/// other thread writes the output columns of these bags.
unsafe fn range<I: Idx>(job: &Job<'_>, ids: &[I], lo: usize, hi: usize) -> Result<(), usize> {
    let dim = job.dim;
    let mut start = job.bag_start(lo);
    for b in lo..hi {
        let end = job.bag_end(b, start);
        // SAFETY: the caller guarantees the output covers `dim` floats at `b · out_stride` and that
        // nobody else writes them during this call.
        let acc = unsafe { std::slice::from_raw_parts_mut(job.out.add(b * job.out_stride), dim) };
        acc.fill(0.0);
        for (i, id) in ids.iter().enumerate().take(end).skip(start) {
            let r = match job.resolve(id.wide()) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(()) => return Err(b),
            };
            let row = &job.table[r * job.row_bytes..(r + 1) * job.row_bytes];
            accumulate_row(job.format, row, job.weight(i), acc);
        }
        if job.mean && end > start {
            let inv = 1.0 / (end - start) as f32;
            acc.iter_mut().for_each(|a| *a *= inv);
        }
        start = end;
    }
    Ok(())
}
