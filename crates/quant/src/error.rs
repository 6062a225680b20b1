//! The one error type of the quant crate.

/// Everything the quant crate can refuse. Each variant says what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuantError {
    /// A kernel refused its inputs.
    #[error(transparent)]
    Kernel(#[from] quantrec_kernels::KernelError),
    /// The model crate refused a plan, weights or batch.
    #[error(transparent)]
    Model(#[from] quantrec_model::ModelError),
    /// A data source failed.
    #[error(transparent)]
    Data(#[from] quantrec_data::DataError),
    /// The trainer (curvature factors, state dicts) refused its inputs.
    #[error(transparent)]
    Train(#[from] quantrec_train::TrainError),
    /// No precision plan meets the accuracy budget.
    #[error("no plan meets the budget {budget}: {reason}")]
    NoPlan {
        /// The budget, as given (e.g. `ΔNE <= 0.02%`).
        budget: String,
        /// Which layers or tables were the problem.
        reason: String,
    },
    /// A NaN or infinite value reached a calibration observer or an error metric.
    #[error("non-finite value {value} in tensor {tensor} at flat index {index}")]
    NonFinite {
        /// Name of the tensor that held the value.
        tensor: String,
        /// Flat index of the first bad value within the call's slice.
        index: usize,
        /// The value itself (NaN or ±inf).
        value: f32,
    },
    /// A buffer or dimension does not have the size the operation needs.
    #[error("shape mismatch in {what}: expected {expected}, found {found}")]
    Shape {
        /// Which argument or buffer.
        what: String,
        /// The size that was expected.
        expected: usize,
        /// The size that was given.
        found: usize,
    },
    /// An argument outside the values the operation accepts (bin count, percentile, bit width, ...).
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// Which argument.
        what: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A statistic was asked of an observer or accumulator that has seen no data.
    #[error("{what} has observed no data")]
    Empty {
        /// Which observer or accumulator.
        what: String,
    },
    /// Rendering a report plot failed.
    #[error("plotting {path} failed: {reason}")]
    Plot {
        /// The output file.
        path: String,
        /// The drawing backend's message.
        reason: String,
    },
}
