//! Per-call rounding of f32 activations to bf16 (nearest even, NaN kept quiet), into scratch.
//!
//! Two layouts, matching the two bf16 micro-kernel families: *pairs* (`u32` per pair of `k` indices,
//! even index in the low half, the operand layout of `vdpbf16ps`) and *widened* (one f32 per `k`
//! index holding the exactly representable bf16 value, for kernels that widen weights and use f32
//! FMA). Rows are padded to an even length with zeros. The rounding is integer arithmetic (no DAZ),
//! bit-identical to `half::bf16::from_f32`.

/// bf16 bits of `x` (nearest even; NaN stays NaN with the quiet bit set, like `half`).
#[inline(always)]
pub(crate) fn bf16_bits(x: f32) -> u32 {
    let b = x.to_bits();
    let rounded = b.wrapping_add(0x7FFF + ((b >> 16) & 1)) >> 16;
    if b & 0x7FFF_FFFF > 0x7F80_0000 {
        (b >> 16) | 0x0040
    } else {
        rounded
    }
}

/// Which layout a kernel wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bf16Layout {
    /// One `u32` per pair of `k` indices.
    Pairs,
    /// One f32 (as bits) per `k` index, rows padded to even length.
    Widened,
    /// Pairs, rows padded with zero pairs to a multiple of 16 pairs, plus 16 spare rows (AMX tiles).
    PairsTiled,
}

impl Bf16Layout {
    /// `u32` entries per row for `k` inputs.
    pub(crate) fn row_len(self, k: usize) -> usize {
        match self {
            Bf16Layout::Pairs => k.div_ceil(2),
            Bf16Layout::Widened => 2 * k.div_ceil(2),
            Bf16Layout::PairsTiled => k.div_ceil(2).next_multiple_of(16),
        }
    }

    /// Rows of scratch needed for `m` rows of input.
    pub(crate) fn rows(self, m: usize) -> usize {
        match self {
            Bf16Layout::PairsTiled => m + 16,
            _ => m,
        }
    }
}

/// A rounding routine: `x` (`m×k`) into `out` (`m × layout.row_len(k)`).
pub(crate) type RoundFn = unsafe fn(x: &[f32], m: usize, k: usize, out: &mut [u32]);

/// Pair rows of `row_len >= ceil(k/2)` entries, the padding zeroed.
#[inline(always)]
fn round_pairs(x: &[f32], m: usize, k: usize, row_len: usize, out: &mut [u32]) {
    let ks = k.div_ceil(2);
    for (row, dst) in x.chunks_exact(k).zip(out.chunks_exact_mut(row_len)).take(m) {
        let (pairs, tail) = row.split_at(k & !1);
        for (d, p) in dst.iter_mut().zip(pairs.chunks_exact(2)) {
            *d = bf16_bits(p[0]) | (bf16_bits(p[1]) << 16);
        }
        if let Some(&last) = tail.first() {
            dst[ks - 1] = bf16_bits(last);
        }
        dst[ks..].fill(0);
    }
}

#[inline(always)]
fn round_widened(x: &[f32], m: usize, k: usize, out: &mut [u32]) {
    let ks2 = 2 * k.div_ceil(2);
    for (row, dst) in x.chunks_exact(k).zip(out.chunks_exact_mut(ks2)).take(m) {
        for (d, &v) in dst.iter_mut().zip(row) {
            *d = bf16_bits(v) << 16;
        }
        if ks2 > k {
            dst[k] = 0;
        }
    }
}

/// Widened rounding, compiled for AVX2 (auto-vectorised).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn widened_avx2(x: &[f32], m: usize, k: usize, out: &mut [u32]) {
    round_widened(x, m, k, out)
}

/// Pairs rounding, compiled for AVX-512 (auto-vectorised).
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL/DQ.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub(crate) unsafe fn pairs_avx512(x: &[f32], m: usize, k: usize, out: &mut [u32]) {
    round_pairs(x, m, k, Bf16Layout::Pairs.row_len(k), out)
}

/// Tiled pairs rounding (AMX layout: rows padded to 16 pairs), compiled for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL/DQ.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub(crate) unsafe fn tiled_avx512(x: &[f32], m: usize, k: usize, out: &mut [u32]) {
    round_pairs(x, m, k, Bf16Layout::PairsTiled.row_len(k), out)
}

/// Widened rounding, compiled for AVX-512 (auto-vectorised).
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL/DQ.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub(crate) unsafe fn widened_avx512(x: &[f32], m: usize, k: usize, out: &mut [u32]) {
    round_widened(x, m, k, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::bf16;

    #[test]
    fn rounding_matches_half_bit_for_bit() {
        let mut rng = crate::rng::Rng::new(7);
        let specials = [
            0.0f32,
            -0.0,
            f32::MIN_POSITIVE,
            1e-40,
            -1e-45,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::from_bits(0x7F80_0001),
            f32::from_bits(0xFFC0_1234),
            1.0 + f32::EPSILON * 64.0,
            3.0039062,
        ];
        let randoms = (0..100_000).map(|_| f32::from_bits(rng.next_u64() as u32));
        for v in specials.into_iter().chain(randoms) {
            let ours = bf16_bits(v);
            let theirs = u32::from(bf16::from_f32(v).to_bits());
            assert_eq!(ours, theirs, "{v:e} ({:#010x})", v.to_bits());
        }
    }
}
