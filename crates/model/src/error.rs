//! The one error type of the model crate.

/// Everything the model crate can refuse. Each variant says what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A kernel refused its inputs.
    #[error(transparent)]
    Kernel(#[from] quantrec_kernels::KernelError),
    /// A model configuration or training option the trainer cannot train.
    #[error("cannot train: {0}")]
    TrainConfig(String),
    /// A batch that does not match the model being trained or evaluated (names the table and bag).
    #[error("bad training batch: {0}")]
    TrainBatch(String),
    /// A trainer state dict with a missing, unknown or mis-shaped tensor.
    #[error("trainer state dict: {0}")]
    TrainStateDict(String),
    /// Reading or writing a trainer checkpoint file failed.
    #[error("trainer checkpoint {path}: {message}")]
    TrainCheckpoint {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}
