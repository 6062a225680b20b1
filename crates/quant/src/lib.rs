//! The quantization tool chain of quantrec: calibration, numeric debugger, precision search under an
//! NE budget, the automatic workflow and refresh.

pub mod calibrate;
pub mod error;
pub mod metrics;
pub mod report;
pub mod search;

pub use error::QuantError;

/// Result type of the quant crate.
pub type Result<T> = std::result::Result<T, QuantError>;
