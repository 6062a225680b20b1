//! Click-log readers and the synthetic generator of quantrec: every source yields labelled batches.

pub mod error;

pub use error::DataError;

/// Result type of the data crate.
pub type Result<T> = std::result::Result<T, DataError>;
