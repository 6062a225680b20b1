//! The scalar oracle for embedding bags.
//!
//! It follows FBGEMM's reference rounding (`src/RefImplementations.cc`), so the SIMD kernels can be
//! tested for exact equality and the results match PyTorch's quantized embedding bags:
//! - fused rows: `scale' = scale·w`, `bias' = bias·w`, then `out = fma(scale', code, out + bias')`;
//! - float rows: `out = fma(w, value, out)` (`w = 1` without weights, which is a plain add);
//! - mean: the sum times `1 / len`, where `len` counts every id of the bag, pruned ones included
//!   (FBGEMM divides by the bag length before pruning); an empty bag gives zeros.

use super::plan::{check_out, check_table};
use super::{Bags, EmbeddingBag, Lookup, Pooling};
use crate::formats::{TableFormat, row_code, row_scale_bias};
use crate::{KernelError, Result};
use half::{bf16, f16};

/// Resolves id `id` of bag `bag_index` to a table row, `None` for a pruned id (remap value -1).
/// Any other negative remap value, or one past the table, is an error naming the remapped row.
#[inline]
pub(crate) fn resolve_row(
    bag: &EmbeddingBag<'_>,
    id: i64,
    table_index: usize,
    bag_index: usize,
) -> Result<Option<usize>> {
    let limit = bag.remap.map_or(bag.table.rows, <[i32]>::len);
    if id < 0 || id as u64 >= limit as u64 {
        return Err(KernelError::IdOutOfRange {
            table: table_index,
            bag: bag_index,
            id,
            rows: limit,
        });
    }
    match bag.remap {
        None => Ok(Some(id as usize)),
        Some(map) => {
            let r = map[id as usize];
            if r == -1 {
                Ok(None)
            } else if r < 0 || r as usize >= bag.table.rows {
                Err(KernelError::IdOutOfRange {
                    table: table_index,
                    bag: bag_index,
                    id: i64::from(r),
                    rows: bag.table.rows,
                })
            } else {
                Ok(Some(r as usize))
            }
        }
    }
}

/// Accumulates row `row` (of `format`, dimension `acc.len()`) times `w` into `acc`, FBGEMM's way.
pub(crate) fn accumulate_row(format: TableFormat, row: &[u8], w: f32, acc: &mut [f32]) {
    let dim = acc.len();
    match format {
        TableFormat::F32 => {
            for (a, b) in acc.iter_mut().zip(row.chunks_exact(4)) {
                *a = w.mul_add(f32::from_le_bytes([b[0], b[1], b[2], b[3]]), *a);
            }
        }
        TableFormat::F16 => {
            for (a, b) in acc.iter_mut().zip(row.chunks_exact(2)) {
                *a = w.mul_add(f16::from_le_bytes([b[0], b[1]]).to_f32(), *a);
            }
        }
        TableFormat::Bf16 => {
            for (a, b) in acc.iter_mut().zip(row.chunks_exact(2)) {
                *a = w.mul_add(bf16::from_le_bytes([b[0], b[1]]).to_f32(), *a);
            }
        }
        _ => {
            let (scale, bias) = row_scale_bias(format, dim, row);
            let (scale, bias) = (scale * w, bias * w);
            for (i, a) in acc.iter_mut().enumerate() {
                *a = scale.mul_add(f32::from(row_code(format, row, i)), *a + bias);
            }
        }
    }
}

/// Plain, obviously-correct pooling, one id after another.
pub fn pool_scalar(
    bag: &EmbeddingBag<'_>,
    lookup: &Lookup<'_>,
    table_index: usize,
    out: &mut [f32],
    out_stride: usize,
) -> Result<()> {
    let dim = bag.table.dim;
    check_table(bag, table_index)?;
    lookup.validate(table_index, bag.pooling)?;
    check_out(dim, lookup.num_bags, table_index, out.len(), out_stride)?;
    pool_bags(lookup, bag.pooling, dim, out, out_stride, |b, ids, acc| {
        for i in ids {
            let Some(r) = resolve_row(bag, lookup.indices.get(i), table_index, b)? else {
                continue;
            };
            let w = match bag.pooling {
                Pooling::WeightedSum => lookup.per_sample_weights.map_or(1.0, |w| w[i]),
                _ => 1.0,
            };
            accumulate_row(bag.table.format, bag.table.row(r), w, acc);
        }
        Ok(())
    })
}

/// Walks the bags of a validated `lookup` (with an output checked for `dim` and `out_stride`): for
/// bag `b`, zeroes `out[b·out_stride ..][..dim]`, lets `add_ids(b, ids, acc)` add the rows of the
/// ids `ids` into it in index order, then divides a mean by the bag's full length (pruned ids
/// included; an empty bag stays zero). Stops at the first error of `add_ids`.
#[inline]
pub(crate) fn pool_bags(
    lookup: &Lookup<'_>,
    pooling: Pooling,
    dim: usize,
    out: &mut [f32],
    out_stride: usize,
    mut add_ids: impl FnMut(usize, std::ops::Range<usize>, &mut [f32]) -> Result<()>,
) -> Result<()> {
    let mut prefix = 0usize;
    for b in 0..lookup.num_bags {
        let (start, end) = lookup.bag_range(b, Some(prefix));
        if let Bags::Lengths(_) = lookup.bags {
            prefix = end;
        }
        let acc = &mut out[b * out_stride..b * out_stride + dim];
        acc.fill(0.0);
        add_ids(b, start..end, acc)?;
        if pooling == Pooling::Mean && end > start {
            let inv = 1.0 / (end - start) as f32;
            acc.iter_mut().for_each(|a| *a *= inv);
        }
    }
    Ok(())
}
