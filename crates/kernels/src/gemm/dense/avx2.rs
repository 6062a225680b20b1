//! AVX2+FMA micro-kernels: up to 3 rows × 16 columns in two accumulator sets (even / odd k-steps,
//! 12 ymm accumulators, merged at the end of the k block), with f32 weights, f16 weights widened by
//! `vcvtph2ps` (F16C), and bf16 weight pairs widened by shifts. Column tails use `vmaskmovps`.
//! The bodies are the width-generic ones of [`super::tile`] at `__m256`.

use std::arch::x86_64::__m256;

super::tile::dense_level!(__m256, "avx2,fma,f16c", [1, 2, 3], super::act::widened_avx2);
