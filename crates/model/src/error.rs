//! The one error type of the model crate.

/// Everything the model crate can refuse. Each variant says what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A kernel refused its inputs.
    #[error(transparent)]
    Kernel(#[from] quantrec_kernels::KernelError),
    /// A metric accumulator was given a value outside its domain.
    #[error("metrics: {what} #{index} must be {expected}, found {found}")]
    MetricInput {
        /// What was wrong: "prediction", "label" or "label count".
        what: &'static str,
        /// What was expected.
        expected: &'static str,
        /// The value found.
        found: f64,
        /// Index of the sample in the accumulator's stream.
        index: u64,
    },
}
