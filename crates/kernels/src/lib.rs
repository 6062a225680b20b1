//! Pure-compute CPU kernels for quantrec.
//!
//! Nothing in this crate does I/O or allocates on a hot path. Every kernel family has a plain scalar
//! oracle (`scalar.rs`) and SIMD variants per ISA level, chosen once at run time through an ops table
//! filled "richest ISA last" (see [`isa`]).
//!
//! - [`isa`]: CPU feature detection and the `QUANTREC_ISA` cap.
//! - [`aligned`]: a cache-line-aligned f32 buffer for kernel outputs.
//! - [`formats`]: FBGEMM-compatible row-wise table formats (fused 8/4/2-bit, f16, bf16).
//! - [`embedding_bag`]: pooled embedding lookups over every table format.
//! - [`gemm`]: `Y = X·Wᵀ + b` in f32, fp16-weight, bf16 and int8 with fused epilogues.
//! - [`interaction`]: DLRM's pairwise dot interaction and the DCN-v2 cross layer.
//! - [`peak`]: single-core peak throughput loops (the ceilings benchmarks are read against).
//! - [`registry`]: every kernel family, its implementations (scalar oracle first, richest ISA last)
//!   and the one dispatch rule they share.
//! - [`rng`]: a deterministic xoshiro256++ generator for data, initialisation and tests.
//! - [`testing`]: the shared oracle suite ([`kernel_suite!`]) every family's tests use.
//! - [`selfcheck`]: every kernel at every ISA level against its scalar oracle, on fresh random data.

pub mod aligned;
pub mod embedding_bag;
pub mod error;
pub mod formats;
pub mod gemm;
pub mod interaction;
pub mod isa;
pub mod parallel;
pub mod peak;
pub mod registry;
pub mod rng;
pub mod selfcheck;
pub(crate) mod simd;
pub mod testing;

pub use error::{BagProblem, KernelError, QuantProblem};
pub use isa::Isa;

/// Result type of every fallible kernel entry point.
pub type Result<T> = std::result::Result<T, KernelError>;
