//! The scalar oracle for embedding bags.

use super::{Bags, EmbeddingBag, Lookup, Pooling};
use crate::formats::dequantize_row;
use crate::{KernelError, Result};

/// Resolves id `i` of a lookup to a table row, `None` for a pruned id.
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
            if r < 0 {
                Ok(None)
            } else if r as usize >= bag.table.rows {
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

/// Plain, obviously-correct pooling: decode each row to f32 and accumulate in id order.
pub fn pool_scalar(
    bag: &EmbeddingBag<'_>,
    lookup: &Lookup<'_>,
    table_index: usize,
    out: &mut [f32],
    out_stride: usize,
) -> Result<()> {
    let dim = bag.table.dim;
    lookup.validate(table_index, bag.pooling)?;
    if lookup.num_bags > 0 {
        let needed = (lookup.num_bags - 1) * out_stride + dim;
        if out.len() < needed || (lookup.num_bags > 1 && out_stride < dim) {
            return Err(KernelError::Shape {
                what: format!("output of table {table_index}"),
                expected: needed,
                found: out.len(),
            });
        }
    }
    let mut row = vec![0f32; dim];
    let mut prefix = 0usize;
    for b in 0..lookup.num_bags {
        let (start, end) = lookup.bag_range(b, Some(prefix));
        if let Bags::Lengths(_) = lookup.bags {
            prefix = end;
        }
        let acc = &mut out[b * out_stride..b * out_stride + dim];
        acc.fill(0.0);
        for i in start..end {
            let Some(r) = resolve_row(bag, lookup.indices.get(i), table_index, b)? else {
                continue;
            };
            dequantize_row(bag.table.format, bag.table.row(r), &mut row);
            let w = match bag.pooling {
                Pooling::WeightedSum => lookup.per_sample_weights.map_or(1.0, |w| w[i]),
                _ => 1.0,
            };
            for (a, v) in acc.iter_mut().zip(&row) {
                *a = v.mul_add(w, *a);
            }
        }
        if bag.pooling == Pooling::Mean && end > start {
            let inv = 1.0 / (end - start) as f32;
            acc.iter_mut().for_each(|a| *a *= inv);
        }
    }
    Ok(())
}
