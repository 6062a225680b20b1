//! What the width-generic embedding-bag body (`simd.rs`) and its AVX2 and AVX-512 instantiations
//! share: the format codes of their `const F: u8` parameter, the per-format kernel table of a level
//! ([`range_kernels!`]), the row prefetch and the reading of a fused row's scale and bias. The
//! helpers are `#[inline(always)]` and only ever inlined into the kernels' `#[target_feature]`
//! functions.

use std::arch::x86_64::*;

/// Format code of f32 rows.
pub(super) const F32: u8 = 0;
/// Format code of f16 rows.
pub(super) const F16: u8 = 1;
/// Format code of bf16 rows.
pub(super) const BF16: u8 = 2;
/// Format code of fused 8-bit rows (f32 scale and bias).
pub(super) const FUSED8: u8 = 3;
/// Format code of fused 8-bit rows with an f16 scale and bias.
pub(super) const FUSED8H: u8 = 4;
/// Format code of fused 4-bit rows.
pub(super) const FUSED4: u8 = 5;
/// Format code of fused 2-bit rows.
pub(super) const FUSED2: u8 = 6;

/// Defines `pub(crate) fn kernel(format) -> RangeFn` (this level's kernel per table format) and the
/// `pool_range::<F>` entries behind it, which dispatch on the index type to `range::<F, I>`, the
/// width-generic body (`simd::range`) instantiated for the level's vector type `$vec` inside a
/// `#[target_feature]` function of the level's `$features`.
macro_rules! range_kernels {
    ($level:literal, $vec:ty, $features:literal) => {
        #[doc = concat!("The ", $level, " kernel for `format`.")]
        pub(crate) fn kernel(format: $crate::formats::TableFormat) -> super::plan::RangeFn {
            use super::simd_shared::*;
            use $crate::formats::TableFormat;
            match format {
                TableFormat::F32 => pool_range::<F32>,
                TableFormat::F16 => pool_range::<F16>,
                TableFormat::Bf16 => pool_range::<BF16>,
                TableFormat::Fused8 => pool_range::<FUSED8>,
                TableFormat::Fused8Half => pool_range::<FUSED8H>,
                TableFormat::Fused4 => pool_range::<FUSED4>,
                TableFormat::Fused2 => pool_range::<FUSED2>,
            }
        }

        /// Pools bags `lo..hi` of `job`, stored in format `F`.
        ///
        /// # Safety
        #[doc = concat!("The CPU must have the ", $level, " level's features; `job` must be")]
        /// validated and its format must be `F`; no other thread may write the output columns of
        /// these bags.
        unsafe fn pool_range<const F: u8>(
            job: &super::plan::Job<'_>,
            lo: usize,
            hi: usize,
        ) -> Result<(), usize> {
            match job.indices {
                // SAFETY: forwarded contract.
                super::Indices::I32(ids) => unsafe { range::<F, i32>(job, ids, lo, hi) },
                // SAFETY: forwarded contract.
                super::Indices::I64(ids) => unsafe { range::<F, i64>(job, ids, lo, hi) },
            }
        }

        #[doc = concat!("`simd::range` at ", $level, ".")]
        ///
        /// # Safety
        #[doc = concat!("The CPU must have `", $features, "` (the function is compiled for them);")]
        /// `job` is validated and stored in format `F`, `ids` is its id array, `lo <= hi <=
        /// num_bags`, and no other thread writes the output columns of these bags.
        #[target_feature(enable = $features)]
        unsafe fn range<const F: u8, I: super::plan::Idx>(
            job: &super::plan::Job<'_>,
            ids: &[I],
            lo: usize,
            hi: usize,
        ) -> Result<(), usize> {
            // SAFETY: forwarded contract; this function is compiled for the level of `$vec`.
            unsafe { super::simd::range::<$vec, F, I>(job, ids, lo, hi) }
        }
    };
}
pub(super) use range_kernels;

/// `$e` with the register count `$r` a const (1..=8) chosen from the runtime count `$n` (at least
/// 1; anything above 8 takes 8).
macro_rules! by_regs {
    ($n:expr, $r:ident => $e:expr) => {
        $crate::embedding_bag::simd_shared::by_regs!(@arms $n, $r, $e, 1 2 3 4 5 6 7)
    };
    (@arms $n:expr, $r:ident, $e:expr, $($k:literal)*) => {
        match $n {
            $($k => {
                const $r: usize = $k;
                $e
            })*
            _ => {
                const $r: usize = 8;
                $e
            }
        }
    };
}
pub(super) use by_regs;

/// Prefetches every cache line of the `rb` bytes at `p` (an address that is never read through).
/// The trip count depends only on `rb`, not on the row's alignment, so the loop branch predicts
/// perfectly (an alignment-dependent count mispredicts on about half the rows of a 36-byte table).
#[inline(always)]
pub(super) fn prefetch_row(p: *const u8, rb: usize) {
    if rb <= 64 {
        // SAFETY: a prefetch is a hint: it never faults and reads nothing into the program. The two
        // lines of the first and last byte cover a row of at most 64 bytes.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast());
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(rb - 1).cast());
        }
        return;
    }
    for off in (0..rb).step_by(64) {
        // SAFETY: a prefetch is a hint: it never faults and reads nothing into the program.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off).cast()) };
    }
    // SAFETY: as above; covers the line of the last byte when the row straddles one more line.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(rb - 1).cast()) };
}

/// Prefetches the cache line of `p` (an address that is never read through).
#[inline(always)]
pub(super) fn prefetch_line(p: *const u8) {
    // SAFETY: a prefetch is a hint: it never faults and reads nothing into the program.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
}

/// Reads the row's scale and bias (`p` points just past the codes).
///
/// # Safety
/// The CPU must have F16C (the caller is compiled for it); `p` points at the row's scale and bias
/// (8 readable bytes for fused8, 4 for the f16 pair).
#[inline(always)]
pub(super) unsafe fn scale_bias<const F: u8>(p: *const u8) -> (f32, f32) {
    if F == FUSED8 {
        // SAFETY: the caller points at 8 readable bytes.
        unsafe {
            (
                p.cast::<f32>().read_unaligned(),
                p.add(4).cast::<f32>().read_unaligned(),
            )
        }
    } else {
        // SAFETY: the caller points at 4 readable bytes (two f16) and runs with F16C.
        unsafe {
            let bits = p.cast::<i32>().read_unaligned();
            let v = _mm_cvtph_ps(_mm_cvtsi32_si128(bits));
            (_mm_cvtss_f32(v), _mm_cvtss_f32(_mm_shuffle_ps::<1>(v, v)))
        }
    }
}
