//! Greedy L2 search of the clipping range of N-bit rows: PyTorch's `choose_qparams_optimized`
//! (`embedding_bag_{4,2}bit_prepack(optimized_qparams=True)`, 200 bins, ratio 0.16).
//!
//! Starting from the row's `[min, max]`, each iteration computes the fake-quantization L2 error of
//! moving the lower bound up by one bin (`loss1`) and the upper bound down by one bin (`loss2`),
//! records the current range when it is a local optimum better than any seen, and moves the bound
//! whose loss is lower, until the range is below `(1 - ratio) · bins` bins.
//!
//! The SIMD levels evaluate one row per vector lane (16 rows with AVX-512, 8 with AVX2), so every
//! lane performs the oracle's exact operation sequence — the same sequential f32 sum over the row,
//! no FMA contraction, the same rounding and NaN-aware min/max — and the results are bitwise equal to
//! [`scalar::search_row`] by construction (and tested at every level). Rows are parallelised with
//! rayon by [`search_rows`].

pub mod scalar;
#[cfg(target_arch = "x86_64")]
mod simd;

use rayon::prelude::*;

use crate::registry::{FamilyCache, Implementation, KernelFamily, SCALAR_AVX2_AVX512};
#[cfg(target_arch = "x86_64")]
use crate::simd::lanes;
use crate::{Isa, KernelError, QuantProblem, Result};

/// Number of bins the range is divided into (PyTorch's default `nbins`).
pub const N_BINS: f32 = 200.0;
/// Fraction of the range the search may clip away (PyTorch's default `ratio`).
pub const RATIO: f64 = 0.16;
/// `nbins · (1 - ratio)` as PyTorch computes it (in double, then rounded to f32).
pub(crate) const MIN_BINS: f32 = (200.0f64 * (1.0 - RATIO)) as f32;

/// Rows handed to one rayon task.
const ROWS_PER_TASK: usize = 256;

/// A search kernel: `(rows of dim values, dim, bits, one (lo, hi) per row)`.
type SearchFn = fn(&[f32], usize, u32, &mut [(f32, f32)]);

/// The greedy-search kernels of one ISA level.
#[derive(Clone, Copy, Debug)]
pub struct GreedyOps {
    /// The level this table was built for.
    pub isa: Isa,
    /// Rows searched together (vector lanes).
    pub lanes: usize,
    search: SearchFn,
}

/// The greedy range-search family in the [registry](crate::registry).
pub struct Greedy;

static CACHE: FamilyCache<GreedyOps> = FamilyCache::new();

impl KernelFamily for Greedy {
    const NAME: &'static str = "formats_greedy";
    type Ops = GreedyOps;
    const IMPLEMENTATIONS: &'static [Implementation] = SCALAR_AVX2_AVX512;

    fn build(index: usize) -> Result<GreedyOps> {
        let (lanes, search): (usize, SearchFn) = match index {
            #[cfg(target_arch = "x86_64")]
            1 => (lanes::<std::arch::x86_64::__m256>(), simd::search_avx2),
            #[cfg(target_arch = "x86_64")]
            2 => (lanes::<std::arch::x86_64::__m512>(), simd::search_avx512),
            _ => (1, scalar::search),
        };
        Ok(GreedyOps {
            isa: Self::IMPLEMENTATIONS[index].isa,
            lanes,
            search,
        })
    }

    fn cache() -> &'static FamilyCache<GreedyOps> {
        &CACHE
    }
}

impl GreedyOps {
    /// The table for `isa` (see [`Greedy`]). Asking for a level this CPU lacks is an error.
    pub fn for_isa(isa: Isa) -> Result<GreedyOps> {
        Greedy::for_level(isa).copied()
    }

    /// The table for [`Isa::active`], built once.
    pub fn active() -> &'static GreedyOps {
        Greedy::active()
    }

    /// Searches every row of `src` (`out.len()` rows of `dim` finite values) on the calling thread;
    /// `out[r]` receives the `(lo, hi)` clipping range of row `r`.
    pub fn search(&self, src: &[f32], dim: usize, bits: u32, out: &mut [(f32, f32)]) -> Result<()> {
        check(src, dim, bits, out.len())?;
        (self.search)(src, dim, bits, out);
        Ok(())
    }
}

fn check(src: &[f32], dim: usize, bits: u32, rows: usize) -> Result<()> {
    if !(1..=8).contains(&bits) {
        return Err(KernelError::BadQuantParams {
            what: "greedy range search",
            table: None,
            problem: QuantProblem::Bits {
                bits,
                expected: "1 to 8",
            },
        });
    }
    if src.len() != rows * dim {
        return Err(KernelError::Shape {
            what: "greedy search input (rows × dim)",
            index: None,
            expected: rows * dim,
            found: src.len(),
        });
    }
    Ok(())
}

/// Searches every row of `src` with `ops`, in parallel over blocks of rows (results do not depend on
/// the number of threads).
pub fn search_rows(
    ops: &GreedyOps,
    src: &[f32],
    dim: usize,
    bits: u32,
    out: &mut [(f32, f32)],
) -> Result<()> {
    check(src, dim, bits, out.len())?;
    if dim == 0 {
        out.fill((0.0, 0.0));
        return Ok(());
    }
    let f = ops.search;
    out.par_chunks_mut(ROWS_PER_TASK)
        .zip(src.par_chunks(ROWS_PER_TASK * dim))
        .for_each(|(o, s)| f(s, dim, bits, o));
    Ok(())
}

/// Per-lane starting state of a block of rows (shared by the SIMD levels): the row's `(min, max,
/// step, thr)` for each lane; lanes past the last row repeat it (their results are discarded).
#[cfg(target_arch = "x86_64")]
pub(crate) fn block_start(
    src: &[f32],
    dim: usize,
    rows: usize,
    lanes: usize,
    transposed: &mut [f32],
) -> [[f32; crate::simd::MAX_LANES]; 4] {
    let mut st = [[0.0f32; crate::simd::MAX_LANES]; 4];
    for l in 0..lanes {
        let r = l.min(rows - 1);
        let row = &src[r * dim..(r + 1) * dim];
        let (mn, mx, step, thr) = scalar::start(row);
        st[0][l] = mn;
        st[1][l] = mx;
        st[2][l] = step;
        st[3][l] = thr;
        for (i, &v) in row.iter().enumerate() {
            transposed[i * lanes + l] = v;
        }
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_bins_is_pytorchs() {
        assert_eq!(MIN_BINS, 168.0);
    }
}
