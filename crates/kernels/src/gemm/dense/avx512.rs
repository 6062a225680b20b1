//! AVX-512 micro-kernels: up to 6 rows × 32 columns in two accumulator sets (even / odd k-steps, 24
//! zmm accumulators, merged at the end of the k block), with f32 weights, f16 weights widened by
//! `vcvtph2ps`, and bf16 weight pairs widened by shifts (for CPUs without AVX512-BF16). Column tails
//! use masked loads and stores. Even one-row tiles have 4 independent FMA chains. The bodies are the
//! width-generic ones of [`super::tile`] at `__m512`.

use std::arch::x86_64::__m512;

super::tile::dense_level!(
    __m512,
    "avx512f,avx512bw,avx512vl,avx512dq,fma,f16c",
    [1, 2, 3, 4, 5, 6],
    super::act::widened_avx512
);
