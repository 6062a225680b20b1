//! Pooling over a *tiered* table: one logical table stored as several FBGEMM row-wise sub-tables
//! of different formats (e.g. hot rows 8-bit, warm rows 4-bit, cold rows 2-bit) plus a remap from
//! the original id to a row of the concatenated sub-tables, where -1 is a pruned row that
//! contributes nothing (the shared zero row, FBGEMM's `compressed_indices_mapping` semantics).
//!
//! Arithmetic (the oracle, [`pool_tiered_scalar`]): each id's row is decoded to f32 with the
//! formats module's row decoder (`fma(code, scale, bias)` for fused rows), then accumulated in
//! index order — `acc += v` for sum and mean, `acc = fma(w, v, acc)` for weighted sum — and a mean
//! multiplies by `1 / len` at the end, `len` counting every id of the bag, pruned ones included.
//! The fast path ([`pool_tiered`], [`pool_tiered_with`]) adds each row with one implementation of
//! the [`Decode`](crate::formats::decode::Decode) family (fused rows decoded in registers and added
//! at once), which returns the oracle's bits at every ISA level, so its results equal the oracle's
//! bit for bit. (This is not FBGEMM's fused-row order,
//! `fma(scale, code, acc + bias)`: a one-tier table pools within a rounding of the plain table.)
//!
//! Ids are checked per id: an id outside `0..remap.len()` is [`KernelError::IdOutOfRange`], a
//! pruned id is valid, and a remap value outside `-1..Σ tier rows` is an error naming it.

use super::plan::check_out;
use super::scalar::pool_bags;
use super::{Lookup, Pooling};
use crate::formats::TableRef;
use crate::formats::decode::{Decode, DecodeOps};
use crate::registry::KernelFamily;
use crate::{KernelError, Result};

/// Dimensions up to this many floats decode into a stack buffer (larger ones allocate once per call).
const STACK_DIM: usize = 512;

/// Ids ahead at which the pooling loop prefetches the remap entry of an id, and at which it
/// resolves an id (its remap entry then in cache) and prefetches the row's bytes: a lookup into
/// a tiered table misses twice (remap, row) on large tables, and multi-hot bags (pooling 100)
/// have plenty of independent ids to overlap them.
const REMAP_AHEAD: usize = 24;
const ROW_AHEAD: usize = 8;

/// Starts loading the cache line of `p` (never read through: a hint only).
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and reads nothing into the program.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Original id → row of the concatenated tiers (-1 = pruned), narrowed to i16 when every tier
/// row fits.
#[derive(Clone, Copy, Debug)]
pub enum TierRemap<'a> {
    /// 16-bit rows.
    I16(&'a [i16]),
    /// 32-bit rows (FBGEMM's width).
    I32(&'a [i32]),
}

impl TierRemap<'_> {
    /// Number of original ids.
    pub fn len(&self) -> usize {
        match self {
            TierRemap::I16(v) => v.len(),
            TierRemap::I32(v) => v.len(),
        }
    }

    /// True when the table has no ids.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The remapped row of original id `i` (-1 = pruned).
    #[inline]
    pub fn get(&self, i: usize) -> i32 {
        match self {
            TierRemap::I16(v) => i32::from(v[i]),
            TierRemap::I32(v) => v[i],
        }
    }
}

/// A tiered table: sub-tables hottest first, all of dimension `dim`, and the remap.
#[derive(Clone, Copy, Debug)]
pub struct TieredTable<'a> {
    /// The sub-tables; row `r` of the concatenation is row `r − Σ earlier rows` of its tier.
    pub tiers: &'a [TableRef<'a>],
    /// Original id → concatenated row, -1 = pruned.
    pub remap: TierRemap<'a>,
    /// Row dimension of every tier.
    pub dim: usize,
}

impl<'a> TieredTable<'a> {
    /// Checks every tier's dimension and bytes (`rows × row_bytes`); the remap is checked per id.
    pub fn check(&self, table_index: usize) -> Result<()> {
        for t in self.tiers {
            t.format.check_dim(self.dim)?;
            if t.dim != self.dim {
                return Err(KernelError::Shape {
                    what: "dimension of a table tier",
                    index: Some(table_index),
                    expected: self.dim,
                    found: t.dim,
                });
            }
            let needed = t.rows.checked_mul(t.format.row_bytes(t.dim));
            match needed {
                Some(n) if t.data.len() >= n => {}
                _ => {
                    return Err(KernelError::Shape {
                        what: "table tier bytes (rows × row bytes)",
                        index: Some(table_index),
                        expected: needed.unwrap_or(usize::MAX),
                        found: t.data.len(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Rows stored over all tiers.
    pub fn stored_rows(&self) -> usize {
        self.tiers.iter().map(|t| t.rows).sum()
    }

    /// `Some((tier, row within the tier))` of original id `id`, `None` when pruned.
    #[inline]
    pub fn resolve_row(&self, id: i64, table: usize, bag: usize) -> Result<Option<(usize, usize)>> {
        let n = self.remap.len();
        if id < 0 || id as u64 >= n as u64 {
            return Err(KernelError::IdOutOfRange {
                table,
                bag,
                id,
                rows: n,
            });
        }
        let r = self.remap.get(id as usize);
        if r == -1 {
            return Ok(None);
        }
        let bad = || KernelError::IdOutOfRange {
            table,
            bag,
            id: i64::from(r),
            rows: self.stored_rows(),
        };
        if r < 0 {
            return Err(bad());
        }
        let mut row = r as usize;
        for (k, t) in self.tiers.iter().enumerate() {
            if row < t.rows {
                return Ok(Some((k, row)));
            }
            row -= t.rows;
        }
        Err(bad())
    }
}

impl TieredTable<'_> {
    /// Prefetches the remap entry of `id` (nothing for an id outside the remap).
    #[inline(always)]
    fn prefetch_remap(&self, id: i64) {
        if id >= 0 && (id as u64) < self.remap.len() as u64 {
            let p: *const u8 = match self.remap {
                TierRemap::I16(v) => v.as_ptr().wrapping_add(id as usize).cast(),
                TierRemap::I32(v) => v.as_ptr().wrapping_add(id as usize).cast(),
            };
            prefetch(p);
        }
    }

    /// Prefetches the stored row of `id` (nothing for a pruned or bad id: the pooling loop
    /// reports those when it gets to them).
    #[inline(always)]
    fn prefetch_row(&self, id: i64) {
        if let Ok(Some((k, r))) = self.resolve_row(id, 0, 0) {
            let row = self.tiers[k].row(r);
            prefetch(row.as_ptr());
            prefetch(row.as_ptr().wrapping_add(row.len() - 1));
        }
    }
}

/// Which row decoder a tiered pooling call uses.
#[derive(Clone, Copy, Debug)]
pub enum RowDecoder<'a> {
    /// The scalar oracle, [`dequantize_row`](crate::formats::dequantize_row) then a plain add
    /// (this makes the call [`pool_tiered_scalar`]).
    Oracle,
    /// One implementation of the [`Decode`] family (every one returns the oracle's bits).
    Ops(&'a DecodeOps),
}

/// The plain oracle: decodes each id's row with
/// [`dequantize_row`](crate::formats::dequantize_row) and pools in index order (see the module
/// docs). Bag `b` goes to `out[b·out_stride ..][..dim]`.
pub fn pool_tiered_scalar(
    table: &TieredTable<'_>,
    pooling: Pooling,
    lookup: &Lookup<'_>,
    table_index: usize,
    out: &mut [f32],
) -> Result<()> {
    let stride = table.dim;
    pool_tiered_with(
        RowDecoder::Oracle,
        table,
        pooling,
        lookup,
        table_index,
        out,
        stride,
    )
}

/// Pools a tiered table at [`crate::Isa::active`] (the [`Decode`] family's active
/// implementation); equals the oracle bit for bit. Bag `b` goes to `out[b·out_stride ..][..dim]`.
pub fn pool_tiered(
    table: &TieredTable<'_>,
    pooling: Pooling,
    lookup: &Lookup<'_>,
    table_index: usize,
    out: &mut [f32],
    out_stride: usize,
) -> Result<()> {
    let decoder = RowDecoder::Ops(Decode::active());
    pool_tiered_with(
        decoder,
        table,
        pooling,
        lookup,
        table_index,
        out,
        out_stride,
    )
}

/// [`pool_tiered`] with a chosen row decoder (the oracle, or one implementation for tests and
/// benchmarks).
pub fn pool_tiered_with(
    decoder: RowDecoder<'_>,
    table: &TieredTable<'_>,
    pooling: Pooling,
    lookup: &Lookup<'_>,
    table_index: usize,
    out: &mut [f32],
    out_stride: usize,
) -> Result<()> {
    match decoder {
        RowDecoder::Oracle => run(
            crate::formats::decode::accumulate_row,
            table,
            pooling,
            lookup,
            table_index,
            out,
            out_stride,
        ),
        RowDecoder::Ops(ops) => run(
            |f, row, w, buf, acc| ops.accumulate_checked(f, row, w, buf, acc),
            table,
            pooling,
            lookup,
            table_index,
            out,
            out_stride,
        ),
    }
}

/// Pools with `add_row(format, row, weight, scratch, acc)`, which adds the decoded row to `acc`
/// (with `weight` by fma for weighted sums).
fn run(
    add_row: impl Fn(crate::formats::TableFormat, &[u8], Option<f32>, &mut [f32], &mut [f32]),
    table: &TieredTable<'_>,
    pooling: Pooling,
    lookup: &Lookup<'_>,
    table_index: usize,
    out: &mut [f32],
    out_stride: usize,
) -> Result<()> {
    let dim = table.dim;
    table.check(table_index)?;
    lookup.validate(table_index, pooling)?;
    check_out(dim, lookup.num_bags, table_index, out.len(), out_stride)?;
    let mut stack = [0f32; STACK_DIM];
    let mut heap = Vec::new();
    let row_buf: &mut [f32] = if dim <= STACK_DIM {
        &mut stack[..dim]
    } else {
        heap.resize(dim, 0.0);
        &mut heap
    };
    let n_ids = lookup.indices.len();
    pool_bags(lookup, pooling, dim, out, out_stride, |b, ids, acc| {
        for i in ids {
            if i + REMAP_AHEAD < n_ids {
                table.prefetch_remap(lookup.indices.get(i + REMAP_AHEAD));
            }
            if i + ROW_AHEAD < n_ids {
                table.prefetch_row(lookup.indices.get(i + ROW_AHEAD));
            }
            let id = lookup.indices.get(i);
            let Some((k, r)) = table.resolve_row(id, table_index, b)? else {
                continue;
            };
            let tier = &table.tiers[k];
            let weight = match (pooling, lookup.per_sample_weights) {
                (Pooling::WeightedSum, Some(w)) => Some(w[i]),
                _ => None,
            };
            add_row(tier.format, tier.row(r), weight, row_buf, acc);
        }
        Ok(())
    })
}
