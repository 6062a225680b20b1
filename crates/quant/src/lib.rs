//! The quantization tool chain of quantrec: calibration, numeric debugger, precision search under an
//! NE budget, the automatic workflow and refresh.
//!
//! Model-independent building blocks:
//! - [`calibrate`]: streaming observers (min/max + growing 2048-bin histogram, mergeable),
//!   per-channel weight ranges, and range selectors (min/max, percentile, PyTorch's L2 search,
//!   TensorRT-style KL) producing u8 [`QParams`](quantrec_kernels::gemm::QParams) or s8 scales.
//! - [`metrics`]: streaming reference-vs-test error statistics (SQNR, relative L2, max abs,
//!   cosine) for the numeric debugger.
//! - [`search`]: greedy precision assignment under a ΔNE budget over caller-defined units and
//!   options, Pareto frontier of evaluated plans and the choice within a budget.
//! - [`report`]: Markdown table and PNG plot of evaluated plans.

pub mod builder;
pub mod calibrate;
pub mod cost;
pub mod debug;
pub mod error;
pub mod eval;
pub mod load;
pub mod metrics;
pub mod plans;
pub mod refresh;
pub mod report;
pub mod search;
pub mod workflow;

pub use error::QuantError;

/// Result type of the quant crate.
pub type Result<T> = std::result::Result<T, QuantError>;
