//! Width-generic f32 vectors: one kernel body written once against [`SimdF32`], instantiated at
//! AVX2 (`__m256`, 8 lanes) and AVX-512 (`__m512`, 16 lanes).
//!
//! The model is memchr's vector trait: every method is an `unsafe fn` marked `#[inline(always)]`
//! that wraps one or two intrinsics, and the generic body (also `#[inline(always)]`) is only ever
//! called from a `#[target_feature]` function of the vector's level, so after inlining the body is
//! compiled for that level exactly as a hand-written one would be. [`simd_entries!`] stamps out
//! those per-level functions and the safe ops-table entries around them.
//!
//! Generic bodies must not compute vectors inside closures: a closure does not inherit the
//! `#[target_feature]` of the function it is written in when that function is generic and only
//! inlined into one, so intrinsics inside an un-inlined closure become calls. Bodies use plain
//! `#[inline(always)]` helper functions and loops instead (measured: the dot interaction ran 10–50×
//! slower with its per-pair closure).
//!
//! Masks differ by level (a vector of all-ones/all-zeros lanes for AVX2, a `__mmask16` for
//! AVX-512); the generic body only handles them through the `mask_*` methods.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// The most lanes any implementation has (sizes per-block scratch arrays in generic bodies).
pub(crate) const MAX_LANES: usize = 16;

/// An f32 vector of one ISA level.
///
/// # Safety
/// Implementations only use instructions of their level. Every method is `unsafe`: callers must
/// run on a CPU that has the level's features (in practice: call them only from a function compiled
/// with `#[target_feature]` for the level, reached through an ops table the registry built after
/// checking the CPU). Pointer arguments must be valid for the lanes the method names.
pub(crate) unsafe trait SimdF32: Copy {
    /// f32 lanes per vector.
    const LANES: usize;
    /// A per-lane condition.
    type Mask: Copy;
    /// `LANES` vectors, the input of [`SimdF32::sum_each`].
    type Block: Copy + AsMut<[Self]>;

    /// All lanes zero.
    unsafe fn zero() -> Self;
    /// All lanes `x`.
    unsafe fn splat(x: f32) -> Self;
    /// `LANES` values from `p` (unaligned).
    unsafe fn load(p: *const f32) -> Self;
    /// The lanes enabled by `m` from `p`, zero elsewhere; disabled lanes are not read.
    unsafe fn load_masked(p: *const f32, m: Self::Mask) -> Self;
    /// `LANES` values to `p` (unaligned).
    unsafe fn store(self, p: *mut f32);
    /// The lanes enabled by `m` to `p`; disabled lanes are not written.
    unsafe fn store_masked(self, p: *mut f32, m: Self::Mask);
    /// `LANES` halves (`2 · LANES` bytes) from `p`, widened.
    unsafe fn load_f16(p: *const u8) -> Self;
    /// `LANES` bfloat16 values (`2 · LANES` bytes) from `p`, widened.
    unsafe fn load_bf16(p: *const u8) -> Self;
    /// The low `LANES` bytes of `b` as unsigned integers, converted to f32.
    unsafe fn from_u8(b: __m128i) -> Self;
    /// `LANES` bfloat16 pairs (`4 · LANES` bytes) from `p`, widened: the even (low) halves, then
    /// the odd (high) ones.
    unsafe fn load_bf16_pairs(p: *const u32) -> (Self, Self);

    /// `self + o`.
    unsafe fn add(self, o: Self) -> Self;
    /// `self - o`.
    unsafe fn sub(self, o: Self) -> Self;
    /// `self · o`.
    unsafe fn mul(self, o: Self) -> Self;
    /// `self / o`.
    unsafe fn div(self, o: Self) -> Self;
    /// `self · b + c`, rounded once.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    /// `vminps(self, o)`: `self < o ? self : o` (the second operand when either is NaN).
    unsafe fn min(self, o: Self) -> Self;
    /// `vmaxps(self, o)`: `self > o ? self : o` (the second operand when either is NaN).
    unsafe fn max(self, o: Self) -> Self;
    /// Square root.
    unsafe fn sqrt(self) -> Self;
    /// Round to the nearest integer, ties to even, exceptions suppressed.
    unsafe fn round_even(self) -> Self;
    /// `f32 → f16 → f32` with round to nearest even.
    unsafe fn round_f16(self) -> Self;

    /// `self < o` (ordered, quiet).
    unsafe fn lt(self, o: Self) -> Self::Mask;
    /// `self == o` (ordered, quiet).
    unsafe fn eq(self, o: Self) -> Self::Mask;
    /// Bitwise equality of the lanes.
    unsafe fn same_bits(self, o: Self) -> Self::Mask;
    /// `m ? b : a` per lane.
    unsafe fn select(m: Self::Mask, a: Self, b: Self) -> Self;
    /// The first `n` lanes (`n <= LANES`).
    unsafe fn first(n: usize) -> Self::Mask;
    /// No lane.
    unsafe fn mask_none() -> Self::Mask;
    /// `a & b`.
    unsafe fn mask_and(a: Self::Mask, b: Self::Mask) -> Self::Mask;
    /// `a | b`.
    unsafe fn mask_or(a: Self::Mask, b: Self::Mask) -> Self::Mask;
    /// `!a & b`.
    unsafe fn mask_andnot(a: Self::Mask, b: Self::Mask) -> Self::Mask;
    /// `!a`.
    unsafe fn mask_not(a: Self::Mask) -> Self::Mask;
    /// Whether any lane is set.
    unsafe fn mask_any(a: Self::Mask) -> bool;

    /// `LANES` zero vectors.
    unsafe fn zero_block() -> Self::Block;
    /// Lane `t` of the result is the sum of the lanes of vector `t` of `v` (a transpose-and-add
    /// tree).
    unsafe fn sum_each(v: &Self::Block) -> Self;
}

/// `V::LANES` (for ops tables that record their width).
pub(crate) const fn lanes<V: SimdF32>() -> usize {
    V::LANES
}

/// Round to nearest even, exceptions suppressed.
#[cfg(target_arch = "x86_64")]
const RNE: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

// SAFETY: every method uses AVX, AVX2, FMA or F16C instructions only (the AVX2 level's features).
#[cfg(target_arch = "x86_64")]
unsafe impl SimdF32 for __m256 {
    const LANES: usize = 8;
    type Mask = __m256;
    type Block = [__m256; 8];

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f32, m: Self::Mask) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_maskload_ps(p, _mm256_castps_si256(m)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_storeu_ps(p, self) }
    }
    #[inline(always)]
    unsafe fn store_masked(self, p: *mut f32, m: Self::Mask) {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_maskstore_ps(p, _mm256_castps_si256(m), self) }
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const u8) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
    }
    #[inline(always)]
    unsafe fn load_bf16(p: *const u8) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe {
            let h = _mm_loadu_si128(p.cast());
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
        }
    }
    #[inline(always)]
    unsafe fn from_u8(b: __m128i) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)) }
    }
    #[inline(always)]
    unsafe fn load_bf16_pairs(p: *const u32) -> (Self, Self) {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe {
            let v = _mm256_loadu_si256(p.cast());
            let hi = _mm256_set1_epi32(0xFFFF_0000_u32 as i32);
            (
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(v)),
                _mm256_castsi256_ps(_mm256_and_si256(v, hi)),
            )
        }
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_add_ps(self, o) }
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_sub_ps(self, o) }
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_mul_ps(self, o) }
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_div_ps(self, o) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_fmadd_ps(self, b, c) }
    }
    #[inline(always)]
    unsafe fn min(self, o: Self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_min_ps(self, o) }
    }
    #[inline(always)]
    unsafe fn max(self, o: Self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_max_ps(self, o) }
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_sqrt_ps(self) }
    }
    #[inline(always)]
    unsafe fn round_even(self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_round_ps::<RNE>(self) }
    }
    #[inline(always)]
    unsafe fn round_f16(self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_cvtph_ps(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(self)) }
    }
    #[inline(always)]
    unsafe fn lt(self, o: Self) -> Self::Mask {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(self, o) }
    }
    #[inline(always)]
    unsafe fn eq(self, o: Self) -> Self::Mask {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_cmp_ps::<_CMP_EQ_OQ>(self, o) }
    }
    #[inline(always)]
    unsafe fn same_bits(self, o: Self) -> Self::Mask {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe {
            _mm256_castsi256_ps(_mm256_cmpeq_epi32(
                _mm256_castps_si256(self),
                _mm256_castps_si256(o),
            ))
        }
    }
    #[inline(always)]
    unsafe fn select(m: Self::Mask, a: Self, b: Self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_blendv_ps(a, b, m) }
    }
    #[inline(always)]
    unsafe fn first(n: usize) -> Self::Mask {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe {
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes))
        }
    }
    #[inline(always)]
    unsafe fn mask_none() -> Self::Mask {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn mask_and(a: Self::Mask, b: Self::Mask) -> Self::Mask {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_and_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn mask_or(a: Self::Mask, b: Self::Mask) -> Self::Mask {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_or_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn mask_andnot(a: Self::Mask, b: Self::Mask) -> Self::Mask {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_andnot_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn mask_not(a: Self::Mask) -> Self::Mask {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_andnot_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(-1))) }
    }
    #[inline(always)]
    unsafe fn mask_any(a: Self::Mask) -> bool {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm256_movemask_ps(a) != 0 }
    }
    #[inline(always)]
    unsafe fn zero_block() -> Self::Block {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { [_mm256_setzero_ps(); 8] }
    }
    #[inline(always)]
    unsafe fn sum_each(v: &Self::Block) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe {
            let s0 = _mm256_hadd_ps(v[0], v[1]);
            let s1 = _mm256_hadd_ps(v[2], v[3]);
            let s2 = _mm256_hadd_ps(v[4], v[5]);
            let s3 = _mm256_hadd_ps(v[6], v[7]);
            // Per 128-bit lane: the lane's partial sums of inputs 4i..4i+4.
            let t0 = _mm256_hadd_ps(s0, s1);
            let t1 = _mm256_hadd_ps(s2, s3);
            _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(t0, t1),
                _mm256_permute2f128_ps::<0x31>(t0, t1),
            )
        }
    }
}

// SAFETY: every method uses AVX-512 F/BW/VL/DQ instructions (and the SSE/AVX ones they imply) only.
#[cfg(target_arch = "x86_64")]
unsafe impl SimdF32 for __m512 {
    const LANES: usize = 16;
    type Mask = __mmask16;
    type Block = [__m512; 16];

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f32, m: Self::Mask) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_maskz_loadu_ps(m, p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_storeu_ps(p, self) }
    }
    #[inline(always)]
    unsafe fn store_masked(self, p: *mut f32, m: Self::Mask) {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_mask_storeu_ps(p, m, self) }
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const u8) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
    }
    #[inline(always)]
    unsafe fn load_bf16(p: *const u8) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe {
            let h = _mm256_loadu_si256(p.cast());
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
        }
    }
    #[inline(always)]
    unsafe fn from_u8(b: __m128i) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b)) }
    }
    #[inline(always)]
    unsafe fn load_bf16_pairs(p: *const u32) -> (Self, Self) {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe {
            let v = _mm512_loadu_si512(p.cast());
            let hi = _mm512_set1_epi32(0xFFFF_0000_u32 as i32);
            (
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(v)),
                _mm512_castsi512_ps(_mm512_and_si512(v, hi)),
            )
        }
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_add_ps(self, o) }
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_sub_ps(self, o) }
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_mul_ps(self, o) }
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_div_ps(self, o) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_fmadd_ps(self, b, c) }
    }
    #[inline(always)]
    unsafe fn min(self, o: Self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_min_ps(self, o) }
    }
    #[inline(always)]
    unsafe fn max(self, o: Self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_max_ps(self, o) }
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_sqrt_ps(self) }
    }
    #[inline(always)]
    unsafe fn round_even(self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_roundscale_ps::<RNE>(self) }
    }
    #[inline(always)]
    unsafe fn round_f16(self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_cvtph_ps(_mm512_cvtps_ph::<RNE>(self)) }
    }
    #[inline(always)]
    unsafe fn lt(self, o: Self) -> Self::Mask {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self, o) }
    }
    #[inline(always)]
    unsafe fn eq(self, o: Self) -> Self::Mask {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(self, o) }
    }
    #[inline(always)]
    unsafe fn same_bits(self, o: Self) -> Self::Mask {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_cmpeq_epi32_mask(_mm512_castps_si512(self), _mm512_castps_si512(o)) }
    }
    #[inline(always)]
    unsafe fn select(m: Self::Mask, a: Self, b: Self) -> Self {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { _mm512_mask_blend_ps(m, a, b) }
    }
    #[inline(always)]
    unsafe fn first(n: usize) -> Self::Mask {
        ((1u32 << n.min(16)) - 1) as __mmask16
    }
    #[inline(always)]
    unsafe fn mask_none() -> Self::Mask {
        0
    }
    #[inline(always)]
    unsafe fn mask_and(a: Self::Mask, b: Self::Mask) -> Self::Mask {
        a & b
    }
    #[inline(always)]
    unsafe fn mask_or(a: Self::Mask, b: Self::Mask) -> Self::Mask {
        a | b
    }
    #[inline(always)]
    unsafe fn mask_andnot(a: Self::Mask, b: Self::Mask) -> Self::Mask {
        !a & b
    }
    #[inline(always)]
    unsafe fn mask_not(a: Self::Mask) -> Self::Mask {
        !a
    }
    #[inline(always)]
    unsafe fn mask_any(a: Self::Mask) -> bool {
        a != 0
    }
    #[inline(always)]
    unsafe fn zero_block() -> Self::Block {
        // SAFETY: the caller runs on a CPU with this level (the trait contract).
        unsafe { [_mm512_setzero_ps(); 16] }
    }
    #[inline(always)]
    unsafe fn sum_each(v: &Self::Block) -> Self {
        // SAFETY: AVX-512 F only (the caller's level).
        unsafe {
            // Within each 128-bit lane L: [a0+a2, b0+b2, a1+a3, b1+b3] for a = v[2i], b = v[2i+1].
            let mut s = [_mm512_setzero_ps(); 8];
            for i in 0..8 {
                let (a, b) = (v[2 * i], v[2 * i + 1]);
                s[i] = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
            }
            // Within each 128-bit lane L: the lane-L partial sums of inputs 4i..4i+4.
            let mut t = [_mm512_setzero_ps(); 4];
            for i in 0..4 {
                let (x, y) = (_mm512_castps_pd(s[2 * i]), _mm512_castps_pd(s[2 * i + 1]));
                t[i] = _mm512_add_ps(
                    _mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                    _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)),
                );
            }
            // Fold the four 128-bit lanes: 4×4 transpose of lanes with adds.
            let y0 = _mm512_add_ps(
                _mm512_shuffle_f32x4::<0x44>(t[0], t[1]),
                _mm512_shuffle_f32x4::<0xEE>(t[0], t[1]),
            );
            let y1 = _mm512_add_ps(
                _mm512_shuffle_f32x4::<0x44>(t[2], t[3]),
                _mm512_shuffle_f32x4::<0xEE>(t[2], t[3]),
            );
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0x88>(y0, y1),
                _mm512_shuffle_f32x4::<0xDD>(y0, y1),
            )
        }
    }
}

/// Stamps out the ops-table entries of one width-generic kernel body: for each `level => entry`,
/// a safe `pub(crate) fn entry` with the body's signature that calls the body instantiated for the
/// level's vector type inside a `#[target_feature]` function of the level.
///
/// The body must be an `unsafe fn body<V: SimdF32>(args)` (no result: kernels write into `&mut`
/// arguments) marked `#[inline(always)]` whose
/// only requirement is that the CPU has `V`'s level (memory safety not depending on the caller).
/// The entries may only be installed in ops tables the [registry](crate::registry) builds for that
/// level, which it refuses unless the CPU has the level's features.
macro_rules! simd_entries {
    ($body:ident $args:tt; $($level:ident => $entry:ident),+ $(,)?) => {
        $(
            $crate::simd::simd_entries!(@one $level, $entry, $body, $args);
        )+
    };
    (@one avx2, $entry:ident, $body:ident, ($($arg:ident: $ty:ty),* $(,)?)) => {
        #[doc = concat!("`", stringify!($body), "` at AVX2 (8 lanes; the ops-table entry of that level).")]
        pub(crate) fn $entry($($arg: $ty),*) {
            /// # Safety
            /// The CPU has AVX2, FMA and F16C.
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn at_level($($arg: $ty),*) {
                // SAFETY: this function is compiled for (and only run at) the body's level.
                unsafe { $body::<::std::arch::x86_64::__m256>($($arg),*) }
            }
            // SAFETY: the registry installs this entry only in tables for the AVX2 level or
            // richer, which it refuses unless the CPU has AVX2, FMA and F16C.
            unsafe { at_level($($arg),*) }
        }
    };
    (@one avx512, $entry:ident, $body:ident, ($($arg:ident: $ty:ty),* $(,)?)) => {
        #[doc = concat!("`", stringify!($body), "` at AVX-512 (16 lanes; the ops-table entry of that level).")]
        pub(crate) fn $entry($($arg: $ty),*) {
            /// # Safety
            /// The CPU has AVX-512 F/BW/VL/DQ (and AVX2, FMA, F16C).
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")]
            unsafe fn at_level($($arg: $ty),*) {
                // SAFETY: this function is compiled for (and only run at) the body's level.
                unsafe { $body::<::std::arch::x86_64::__m512>($($arg),*) }
            }
            // SAFETY: the registry installs this entry only in tables for an AVX-512 level, which
            // it refuses unless the CPU has AVX-512 F/BW/VL/DQ.
            unsafe { at_level($($arg),*) }
        }
    };
}
pub(crate) use simd_entries;
