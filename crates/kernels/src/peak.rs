//! Single-core peak throughput loops: the ceilings benchmark results are read against.
//!
//! Each function runs `iters` iterations of 12 independent accumulator chains (enough to cover the
//! latency of two pipelined units) and returns the number of arithmetic operations performed
//! (a multiply-add counts as 2). Levels the CPU lacks return `None`.

use crate::Isa;

/// Which peak to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeakKind {
    /// f32 fused multiply-add at the widest vector width of the active level.
    F32Fma,
    /// u8×s8→i32 dot products (`vpdpbusd`, 512-bit).
    Int8Vnni,
    /// bf16 pair dot products into f32 (`vdpbf16ps`, 512-bit).
    Bf16Dot,
    /// bf16 tile products into f32 (AMX `tdpbf16ps`, 16×16×32 per instruction), where the CPU and
    /// OS allow AMX.
    Bf16Amx,
    /// u8×s8 tile products into i32 (AMX `tdpbusd`, 16×16×64 per instruction), where the CPU and
    /// OS allow AMX-INT8.
    Int8Amx,
}

impl PeakKind {
    /// Name used in benchmark output (`peak_f32_fma`, ...).
    pub fn op_name(self) -> &'static str {
        match self {
            PeakKind::F32Fma => "peak_f32_fma",
            PeakKind::Int8Vnni => "peak_int8_vnni",
            PeakKind::Bf16Dot => "peak_bf16_dot",
            PeakKind::Bf16Amx => "peak_bf16_amx",
            PeakKind::Int8Amx => "peak_int8_amx",
        }
    }
}

/// Runs the peak loop for `kind` at level `isa`; returns the operation count, or `None` when `isa`
/// (or the CPU) lacks the instruction.
pub fn run(kind: PeakKind, isa: Isa, iters: usize) -> Option<f64> {
    // A level above what this CPU has is treated as the CPU's own (never an instruction it lacks).
    let isa = isa.min(Isa::detected());
    #[cfg(target_arch = "x86_64")]
    {
        match kind {
            PeakKind::F32Fma if isa >= Isa::Avx512 => {
                // SAFETY: the Avx512 level is only reachable when the CPU has AVX-512F (Isa::detected).
                let s = unsafe { x86::f32_fma_512(iters) };
                std::hint::black_box(s);
                Some(iters as f64 * 12.0 * 16.0 * 2.0)
            }
            PeakKind::F32Fma if isa >= Isa::Avx2 => {
                // SAFETY: the Avx2 level is only reachable when the CPU has AVX2 and FMA.
                let s = unsafe { x86::f32_fma_256(iters) };
                std::hint::black_box(s);
                Some(iters as f64 * 12.0 * 8.0 * 2.0)
            }
            PeakKind::Int8Vnni if isa >= Isa::Vnni => {
                // SAFETY: the Vnni level is only reachable when the CPU has AVX512-VNNI.
                let s = unsafe { x86::int8_vnni_512(iters) };
                std::hint::black_box(s);
                Some(iters as f64 * 12.0 * 64.0 * 2.0)
            }
            PeakKind::Bf16Dot if isa >= Isa::Vnni && crate::isa::has_avx512_bf16() => {
                // SAFETY: checked just above that the CPU has AVX512-BF16.
                let s = unsafe { x86::bf16_dot_512(iters) };
                std::hint::black_box(s);
                Some(iters as f64 * 12.0 * 32.0 * 2.0)
            }
            PeakKind::Bf16Amx if isa >= Isa::Vnni && crate::gemm::amx_available() => {
                // SAFETY: checked just above that AMX-BF16 is usable by this process.
                unsafe { x86::amx_tiles::<false>(iters) };
                Some(iters as f64 * 6.0 * (16.0 * 16.0 * 32.0) * 2.0)
            }
            PeakKind::Int8Amx if isa >= Isa::Vnni && crate::gemm::amx_int8_available() => {
                // SAFETY: checked just above that AMX-INT8 is usable by this process.
                unsafe { x86::amx_tiles::<true>(iters) };
                Some(iters as f64 * 6.0 * (16.0 * 16.0 * 64.0) * 2.0)
            }
            _ => None,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (kind, isa, iters);
        None
    }
}

/// Sums `buf` (f32) with wide independent loads: one pass of a read-bandwidth measurement
/// (`bytes / time` of repeated calls over a buffer larger than L2 is the single-core bandwidth a
/// weight-streaming GEMV can reach). Uses AVX-512 loads when `isa` allows, else a portable loop.
pub fn read_sum(isa: Isa, buf: &[f32]) -> f32 {
    let isa = isa.min(Isa::detected());
    #[cfg(target_arch = "x86_64")]
    if isa >= Isa::Avx512 {
        // SAFETY: `isa` is capped at `Isa::detected()`, which is Avx512 or above only when the CPU
        // has AVX-512F.
        return unsafe { x86::read_sum_512(buf) };
    }
    let _ = isa;
    let mut acc = [0f32; 16];
    let mut chunks = buf.chunks_exact(16);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Twelve independent accumulator chains kept in registers (explicitly unrolled).
    macro_rules! chains {
        ($init:expr, $iters:expr, $step:expr) => {{
            let (mut a0, mut a1, mut a2, mut a3, mut a4, mut a5) =
                ($init, $init, $init, $init, $init, $init);
            let (mut a6, mut a7, mut a8, mut a9, mut a10, mut a11) =
                ($init, $init, $init, $init, $init, $init);
            for _ in 0..$iters {
                a0 = $step(a0);
                a1 = $step(a1);
                a2 = $step(a2);
                a3 = $step(a3);
                a4 = $step(a4);
                a5 = $step(a5);
                a6 = $step(a6);
                a7 = $step(a7);
                a8 = $step(a8);
                a9 = $step(a9);
                a10 = $step(a10);
                a11 = $step(a11);
            }
            [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11]
        }};
    }

    #[target_feature(enable = "avx512f")]
    /// # Safety
    /// The CPU must have AVX-512 F/BW/VL/DQ (the function is compiled for them); nothing else (it
    /// touches no memory).
    pub unsafe fn f32_fma_512(iters: usize) -> f32 {
        let x = _mm512_set1_ps(std::hint::black_box(0.999_f32));
        let y = _mm512_set1_ps(std::hint::black_box(1e-3_f32));
        let acc = chains!(_mm512_set1_ps(1.0), iters, |a| _mm512_fmadd_ps(a, x, y));
        acc.iter().map(|a| _mm512_reduce_add_ps(*a)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    /// # Safety
    /// The CPU must have AVX2 and FMA (the function is compiled for them); nothing else (it touches
    /// no memory).
    pub unsafe fn f32_fma_256(iters: usize) -> f32 {
        let x = _mm256_set1_ps(std::hint::black_box(0.999_f32));
        let y = _mm256_set1_ps(std::hint::black_box(1e-3_f32));
        let acc = chains!(_mm256_set1_ps(1.0), iters, |a| _mm256_fmadd_ps(a, x, y));
        let mut s = 0.0;
        for a in acc {
            let mut lanes = [0f32; 8];
            // SAFETY: `lanes` has room for 8 f32 and storeu has no alignment requirement.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), a) };
            s += lanes.iter().sum::<f32>();
        }
        s
    }

    #[target_feature(enable = "avx512f,avx512vnni")]
    /// # Safety
    /// The CPU must have AVX-512 F/BW and AVX512-VNNI; nothing else (it touches no memory).
    pub unsafe fn int8_vnni_512(iters: usize) -> i32 {
        let u = _mm512_set1_epi8(std::hint::black_box(3));
        let s = _mm512_set1_epi8(std::hint::black_box(-2));
        let acc = chains!(_mm512_setzero_si512(), iters, |a| _mm512_dpbusd_epi32(
            a, u, s
        ));
        acc.iter()
            .map(|a| _mm512_reduce_add_epi32(*a))
            .fold(0i32, i32::wrapping_add)
    }

    /// Six independent tile accumulators (`tmm0..5 += tmm6 · tmm7`), tiles of 16 rows × 64 bytes:
    /// `tdpbusd` (u8·s8 into i32) when `INT8`, else `tdpbf16ps` (bf16 pairs into f32).
    ///
    /// # Safety
    /// AMX-INT8 (`INT8`) or AMX-BF16 must be usable by this process.
    pub unsafe fn amx_tiles<const INT8: bool>(iters: usize) {
        use std::arch::asm;
        #[repr(C, align(64))]
        struct Config([u8; 64]);
        let mut cfg = Config([0; 64]);
        cfg.0[0] = 1;
        for t in 0..8 {
            cfg.0[16 + 2 * t] = 64;
            cfg.0[48 + t] = 16;
        }
        let zeros = [0u8; 1024];
        // SAFETY: AMX is usable (caller); the config is a valid palette-1 layout; the two source tiles
        // are loaded from a 1 KiB buffer (16 rows × 64 bytes); only tile registers are written and
        // they are released at the end.
        unsafe {
            asm!("ldtilecfg [{c}]",
                "tilezero tmm0", "tilezero tmm1", "tilezero tmm2",
                "tilezero tmm3", "tilezero tmm4", "tilezero tmm5",
                "tileloadd tmm6, [{z} + {s}]", "tileloadd tmm7, [{z} + {s}]",
                c = in(reg) cfg.0.as_ptr(), z = in(reg) zeros.as_ptr(), s = in(reg) 64usize,
                options(nostack, readonly));
            for _ in 0..iters {
                if INT8 {
                    asm!(
                        "tdpbusd tmm0, tmm6, tmm7",
                        "tdpbusd tmm1, tmm6, tmm7",
                        "tdpbusd tmm2, tmm6, tmm7",
                        "tdpbusd tmm3, tmm6, tmm7",
                        "tdpbusd tmm4, tmm6, tmm7",
                        "tdpbusd tmm5, tmm6, tmm7",
                        options(nostack, nomem)
                    );
                    continue;
                }
                asm!(
                    "tdpbf16ps tmm0, tmm6, tmm7",
                    "tdpbf16ps tmm1, tmm6, tmm7",
                    "tdpbf16ps tmm2, tmm6, tmm7",
                    "tdpbf16ps tmm3, tmm6, tmm7",
                    "tdpbf16ps tmm4, tmm6, tmm7",
                    "tdpbf16ps tmm5, tmm6, tmm7",
                    options(nostack, nomem)
                );
            }
            asm!("tilerelease", options(nostack, nomem));
        }
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    /// # Safety
    /// The CPU must have AVX-512 F/BW and AVX512-BF16; nothing else (it touches no memory).
    pub unsafe fn bf16_dot_512(iters: usize) -> f32 {
        let a = _mm512_cvtne2ps_pbh(
            _mm512_set1_ps(std::hint::black_box(0.5)),
            _mm512_set1_ps(0.25),
        );
        let b = _mm512_cvtne2ps_pbh(
            _mm512_set1_ps(std::hint::black_box(1e-3)),
            _mm512_set1_ps(1e-3),
        );
        let acc = chains!(_mm512_setzero_ps(), iters, |c| _mm512_dpbf16_ps(c, a, b));
        acc.iter().map(|a| _mm512_reduce_add_ps(*a)).sum()
    }

    /// [`super::read_sum`] with eight 512-bit accumulators (128 floats per step).
    #[target_feature(enable = "avx512f")]
    ///
    /// # Safety
    /// The CPU must have AVX-512 F/BW/VL/DQ (the function is compiled for them); `buf` is any slice
    /// (its tail is read with a mask).
    pub unsafe fn read_sum_512(buf: &[f32]) -> f32 {
        let mut acc = [_mm512_setzero_ps(); 8];
        let mut chunks = buf.chunks_exact(128);
        for c in &mut chunks {
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: `c` holds 128 floats, so lanes 16k..16k+16 are inside it.
                *a = _mm512_add_ps(*a, unsafe { _mm512_loadu_ps(c.as_ptr().add(16 * k)) });
            }
        }
        let total: f32 = acc.iter().map(|a| _mm512_reduce_add_ps(*a)).sum();
        total + chunks.remainder().iter().sum::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_sum_equals_the_plain_sum_at_every_level_and_length() {
        for isa in Isa::available() {
            for len in [0usize, 1, 15, 127, 128, 129, 1000, 4099] {
                // Small integers: every partial sum is exact in f32, whatever the order.
                let buf: Vec<f32> = (0..len).map(|i| (i % 7) as f32 - 3.0).collect();
                let want: f32 = buf.iter().sum();
                assert_eq!(read_sum(isa, &buf), want, "{isa:?} len {len}");
            }
        }
    }
}
