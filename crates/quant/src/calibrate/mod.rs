//! Calibration: streaming observers of tensor values and the range selectors that turn what they
//! saw into quantization ranges and parameters.

pub mod frequency;
pub mod histogram;
pub mod model;
pub mod observer;
pub mod range;
pub mod report;
pub mod set;

pub use frequency::{RowRanking, TableRanking};
pub use histogram::Histogram;
pub use model::{Calibration, calibrate};
pub use observer::{DEFAULT_BINS, TensorObserver, per_channel_min_max};
pub use range::{Range, RangeMethod, select_range};
pub use report::CalibrationReport;
pub use set::ObserverSet;
