//! Pooled embedding lookups ("embedding bags") over every [`TableFormat`](crate::formats::TableFormat).
//!
//! One bag is a list of row ids; its output is the sum, mean or per-sample-weighted sum of those rows,
//! decoded from the table's stored format. Bags are given by offsets (one start per bag, with or
//! without the trailing end) or by lengths, with i32 or i64 ids, like FBGEMM's
//! `embedding_bag_*_rowwise_offsets`. Empty bags produce zeros. An id outside the table is an error
//! naming the table, bag and id; pruned tables map ids through a remap where -1 means "contributes
//! nothing" (FBGEMM's `compressed_indices_mapping`).
//!
//! Arithmetic follows FBGEMM's reference (see [`pool_scalar`]): every ISA level gives the oracle's
//! result bit for bit. Mean divides by the bag's full length, pruned ids included (FBGEMM's rule).
//! Note that PyTorch's `quantized::embedding_bag_{byte,4bit,2bit}_rowwise_offsets` ignore
//! `mode=1` and return the sum (they pass `normalize_by_lengths=false` to FBGEMM): to reproduce
//! those ops use [`Pooling::Sum`].
//!
//! Layout: `scalar.rs` (the oracle), `portable.rs` (the [`Isa::Scalar`] kernel), `simd.rs` (the
//! register-blocked SIMD kernel with software prefetch of the rows a few dozen ids ahead, written
//! once over a level's vectors), `avx2.rs`, `avx512.rs` (its instantiations: row decoding per
//! level), `plan.rs` (validation and the job the kernels run on), `batch.rs` (many tables in one
//! call, optionally on rayon). Entry points: [`pool`], [`pool_with_isa`], [`pool_tables`],
//! [`pool_tables_with_isa`].

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod batch;
mod plan;
mod portable;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod simd;
#[cfg(target_arch = "x86_64")]
mod simd_shared;
mod tiered;

use crate::formats::{TableFormat, TableRef};
use crate::registry::{FamilyCache, Implementation, KernelFamily};
use crate::{BagProblem, Isa, KernelError, Result};
use plan::{Job, RangeFn};

pub use batch::{PARALLEL_MIN_IDS, Parallelism, TableBag, pool_tables, pool_tables_with_isa};
pub use scalar::pool_scalar;
pub use tiered::{
    RowDecoder, TierRemap, TieredTable, pool_tiered, pool_tiered_scalar, pool_tiered_with,
};

/// A slice of ids or offsets in either index type.
#[derive(Clone, Copy, Debug)]
pub enum Indices<'a> {
    /// 32-bit ids.
    I32(&'a [i32]),
    /// 64-bit ids.
    I64(&'a [i64]),
}

impl Indices<'_> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            Indices::I32(v) => v.len(),
            Indices::I64(v) => v.len(),
        }
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `i` widened to i64.
    #[inline]
    pub fn get(&self, i: usize) -> i64 {
        match self {
            Indices::I32(v) => i64::from(v[i]),
            Indices::I64(v) => v[i],
        }
    }
}

/// How the flat id array is cut into bags.
#[derive(Clone, Copy, Debug)]
pub enum Bags<'a> {
    /// Start of each bag in the id array; `num_bags` entries, or `num_bags + 1` with the trailing end
    /// (which must then equal the number of ids). Offsets must be non-decreasing and within the ids.
    Offsets(Indices<'a>),
    /// Number of ids of each bag (`num_bags` entries, non-negative, summing to the number of ids).
    Lengths(Indices<'a>),
}

/// How the rows of one bag are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pooling {
    /// Sum of the rows.
    Sum,
    /// Mean of the rows (zeros for an empty bag).
    Mean,
    /// Sum of the rows each multiplied by its per-sample weight.
    WeightedSum,
}

/// The ids of a batch of bags for one table.
#[derive(Clone, Copy, Debug)]
pub struct Lookup<'a> {
    /// Row ids of every bag, back to back.
    pub indices: Indices<'a>,
    /// Bag boundaries.
    pub bags: Bags<'a>,
    /// Number of bags (the batch size).
    pub num_bags: usize,
    /// One weight per id, required by [`Pooling::WeightedSum`] and ignored otherwise.
    pub per_sample_weights: Option<&'a [f32]>,
}

/// One table with its pooling mode and optional pruning remap.
#[derive(Clone, Copy, Debug)]
pub struct EmbeddingBag<'a> {
    /// The stored table.
    pub table: TableRef<'a>,
    /// How rows are combined.
    pub pooling: Pooling,
    /// For pruned tables: original id → compressed row, -1 = pruned (contributes nothing).
    pub remap: Option<&'a [i32]>,
}

impl Lookup<'_> {
    /// The `[start, end)` id range of bag `b`, from offsets or lengths (validated by [`Lookup::validate`]).
    #[inline]
    pub fn bag_range(&self, b: usize, lengths_prefix: Option<usize>) -> (usize, usize) {
        match self.bags {
            Bags::Offsets(o) => {
                let start = o.get(b) as usize;
                let end = if b + 1 < o.len() {
                    o.get(b + 1) as usize
                } else {
                    self.indices.len()
                };
                (start, end)
            }
            Bags::Lengths(l) => {
                let start = lengths_prefix.unwrap_or(0);
                (start, start + l.get(b) as usize)
            }
        }
    }

    /// Checks bag boundaries and weights against the id array; `table` names the table in errors.
    pub fn validate(&self, table: usize, pooling: Pooling) -> Result<()> {
        let n = self.indices.len();
        let bad = |problem: BagProblem| Err(KernelError::BadBags { table, problem });
        let fast_ok = match self.bags {
            Bags::Offsets(o) => {
                (o.len() == self.num_bags || o.len() == self.num_bags + 1)
                    && match o {
                        Indices::I32(v) => offsets_ok(v, n, o.len() > self.num_bags),
                        Indices::I64(v) => offsets_ok(v, n, o.len() > self.num_bags),
                    }
            }
            Bags::Lengths(l) => {
                l.len() == self.num_bags
                    && match l {
                        Indices::I32(v) => lengths_ok(v, n),
                        Indices::I64(v) => lengths_ok(v, n),
                    }
            }
        };
        // The slow path below finds and describes the problem; it is skipped when the branch-free
        // scan above found none.
        match self.bags {
            _ if fast_ok => {}
            Bags::Offsets(o) => {
                if o.len() != self.num_bags && o.len() != self.num_bags + 1 {
                    return bad(BagProblem::OffsetCount {
                        offsets: o.len(),
                        bags: self.num_bags,
                    });
                }
                let mut prev = 0i64;
                for i in 0..o.len() {
                    let v = o.get(i);
                    if v < prev || v as u64 > n as u64 {
                        return bad(BagProblem::Offset {
                            index: i,
                            value: v,
                            ids: n,
                        });
                    }
                    if i == 0 && v != 0 {
                        return bad(BagProblem::FirstOffset { value: v });
                    }
                    prev = v;
                }
                if o.len() == self.num_bags + 1 && prev as usize != n {
                    return bad(BagProblem::TrailingOffset {
                        value: prev,
                        ids: n,
                    });
                }
            }
            Bags::Lengths(l) => {
                if l.len() != self.num_bags {
                    return bad(BagProblem::LengthCount {
                        lengths: l.len(),
                        bags: self.num_bags,
                    });
                }
                let mut total = 0u64;
                for i in 0..l.len() {
                    let v = l.get(i);
                    if v < 0 {
                        return bad(BagProblem::NegativeLength { index: i, value: v });
                    }
                    total = total.saturating_add(v as u64);
                }
                if total != n as u64 {
                    return bad(BagProblem::LengthSum { sum: total, ids: n });
                }
            }
        }
        if pooling == Pooling::WeightedSum {
            match self.per_sample_weights {
                None => return bad(BagProblem::MissingWeights),
                Some(w) if w.len() != n => {
                    return Err(KernelError::Shape {
                        what: "per-sample weights",
                        index: Some(table),
                        expected: n,
                        found: w.len(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Offsets start at 0, never decrease and stay within `0..=n`; with the trailing end, it equals `n`.
fn offsets_ok<T: Copy + Into<i64>>(o: &[T], n: usize, trailing: bool) -> bool {
    let Some((&first, &last)) = o.first().zip(o.last()) else {
        return true;
    };
    let mut decreasing = false;
    for w in o.windows(2) {
        decreasing |= w[1].into() < w[0].into();
    }
    let (first, last) = (first.into(), last.into());
    !decreasing && first == 0 && last as u64 <= n as u64 && (!trailing || last as u64 == n as u64)
}

/// Lengths are non-negative and sum to `n`.
fn lengths_ok<T: Copy + Into<i64>>(l: &[T], n: usize) -> bool {
    let mut negative = false;
    let mut total = 0u64;
    for &v in l {
        let v = v.into();
        negative |= v < 0;
        total = total.saturating_add(v as u64);
    }
    !negative && total == n as u64
}

/// The embedding-bag kernels of one implementation: one bag-range kernel per table format.
#[derive(Clone, Copy)]
pub struct EmbeddingBagOps {
    kernels: [RangeFn; 7],
}

/// The embedding-bag family in the [registry](crate::registry): one bag-range kernel per table
/// format. The VNNI level adds nothing for embedding bags and keeps AVX-512's kernels.
pub struct EmbeddingBagFamily;

static CACHE: FamilyCache<EmbeddingBagOps> = FamilyCache::new();

impl KernelFamily for EmbeddingBagFamily {
    const NAME: &'static str = "embedding_bag";
    type Ops = EmbeddingBagOps;
    const IMPLEMENTATIONS: &'static [Implementation] = &[
        Implementation::at("scalar", Isa::Scalar),
        Implementation::at("avx2", Isa::Avx2),
        Implementation::at("avx512", Isa::Avx512),
    ];

    fn build(index: usize) -> Result<EmbeddingBagOps> {
        type KernelFor = fn(TableFormat) -> RangeFn;
        let kernel: KernelFor = match index {
            #[cfg(target_arch = "x86_64")]
            1 => avx2::kernel,
            #[cfg(target_arch = "x86_64")]
            2 => avx512::kernel,
            _ => |_| portable::pool_range as RangeFn,
        };
        Ok(EmbeddingBagOps {
            kernels: TableFormat::ALL.map(kernel),
        })
    }

    fn cache() -> &'static FamilyCache<EmbeddingBagOps> {
        &CACHE
    }
}

impl EmbeddingBagOps {
    /// The cached ops table for `isa`, or an error when this CPU cannot run it.
    pub(crate) fn for_isa(isa: Isa) -> Result<&'static EmbeddingBagOps> {
        EmbeddingBagFamily::for_level(isa)
    }

    /// The kernel for tables stored in `format`.
    pub(crate) fn kernel(&self, format: TableFormat) -> RangeFn {
        let i = TableFormat::ALL
            .iter()
            .position(|f| *f == format)
            .unwrap_or(0);
        self.kernels[i]
    }
}

/// Pools one table for a batch of bags: bag `b` is written to `out[b·out_stride .. b·out_stride + dim]`.
/// `table_index` is only used to name the table in errors. Runs on the calling thread at
/// [`Isa::active`]; the result equals [`pool_scalar`]'s exactly.
pub fn pool(
    bag: &EmbeddingBag<'_>,
    lookup: &Lookup<'_>,
    table_index: usize,
    out: &mut [f32],
    out_stride: usize,
) -> Result<()> {
    pool_with_ops(
        EmbeddingBagFamily::active(),
        bag,
        lookup,
        table_index,
        out,
        out_stride,
    )
}

/// [`pool`] at a chosen ISA level (an error if this CPU lacks it); for tests and benchmarks.
pub fn pool_with_isa(
    isa: Isa,
    bag: &EmbeddingBag<'_>,
    lookup: &Lookup<'_>,
    table_index: usize,
    out: &mut [f32],
    out_stride: usize,
) -> Result<()> {
    let ops = EmbeddingBagOps::for_isa(isa)?;
    pool_with_ops(ops, bag, lookup, table_index, out, out_stride)
}

/// [`pool`] with one implementation's ops table (from [`EmbeddingBagFamily`] in the registry).
pub fn pool_with_ops(
    ops: &EmbeddingBagOps,
    bag: &EmbeddingBag<'_>,
    lookup: &Lookup<'_>,
    table_index: usize,
    out: &mut [f32],
    out_stride: usize,
) -> Result<()> {
    let job = Job::new(bag, lookup, table_index, out, out_stride)?;
    let kernel = ops.kernel(bag.table.format);
    // SAFETY: the job is validated (bags, weights, table bytes, output size), the ops table comes
    // from the registry, which builds tables only for implementations this CPU runs, and `out` is
    // borrowed exclusively for this call.
    match unsafe { kernel(&job, 0, lookup.num_bags) } {
        Ok(()) => Ok(()),
        Err(b) => Err(job.id_error(bag, table_index, b)),
    }
}
