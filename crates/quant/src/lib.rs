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
//! - [`report`]: Markdown table and PNG plot of evaluated plans; [`report::search_report`] writes
//!   a search's `report.md`, `report.json` and `frontier.png`.
//!
//! On a model:
//! - [`calibrate::calibrate`]: observe the f32 model over calibration batches (in parallel),
//!   select a range per tensor, and fill a plan's static int8 parameters
//!   ([`calibrate::Calibration::apply`]).
//! - [`debug::debug`]: the numeric debugger (per layer and table, isolated and propagated error,
//!   ranked, plus ΔNE / ΔAUC / calibration).
//! - [`plans`]: units, precision choices, presets, widening, bytes of a plan; [`cost`]: latency
//!   model from timings measured on this machine; [`builder`]: candidate models with each table
//!   encoded once per format; [`eval`]: pooled evaluation sets and accuracy comparisons.
//! - [`search::search`]: sensitivity → greedy with measured validation and back-off → presets →
//!   Pareto frontier and choice within the budget.
//! - [`workflow::quantize`]: calibrate → search or given plan → validate (the demo's entry point);
//!   [`refresh::refresh`]: re-apply a recipe to a new snapshot and repair it;
//!   [`load`]: models (artifact or state dict) and data files.

pub mod bench;
pub mod builder;
pub mod calibrate;
pub mod cost;
pub mod debug;
pub mod demo;
pub mod error;
pub mod eval;
pub mod load;
pub mod metrics;
pub mod plans;
pub mod refresh;
pub mod report;
pub mod search;
pub mod table_curvature;
pub mod timing;
pub mod workflow;

pub use error::{PlanMetric, QuantError};

/// Result type of the quant crate.
pub type Result<T> = std::result::Result<T, QuantError>;
