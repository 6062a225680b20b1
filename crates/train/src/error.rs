//! The one error type of the train crate.

/// Everything the trainer can refuse. Each variant says what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A kernel refused its inputs.
    #[error(transparent)]
    Kernel(#[from] quantrec_kernels::KernelError),
    /// The model layer refused a config, plan or tensor.
    #[error(transparent)]
    Model(#[from] quantrec_model::ModelError),
    /// The data layer refused a batch, a file or a metric input.
    #[error(transparent)]
    Data(#[from] quantrec_data::DataError),
    /// A model configuration or training option the trainer cannot train.
    #[error("cannot train: {0}")]
    Config(String),
    /// A batch that does not match the model being trained or evaluated (names the table and bag).
    #[error("bad training batch: {0}")]
    Batch(String),
    /// A trainer state dict with a missing, unknown or mis-shaped tensor.
    #[error("trainer state dict: {0}")]
    StateDict(String),
    /// Reading or writing a trainer checkpoint file failed.
    #[error("trainer checkpoint {path}: {message}")]
    Checkpoint {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A data file without labels: it cannot be trained or evaluated on.
    #[error("{} has no labels", path.display())]
    Unlabelled {
        /// The data file.
        path: std::path::PathBuf,
    },
    /// A holdout that leaves no rows to train on.
    #[error("holding out {holdout} rows leaves none of the {rows} to train on")]
    Holdout {
        /// Rows of the data file.
        rows: u64,
        /// Rows asked to be held out.
        holdout: u64,
    },
    /// A holdout fraction outside `[0, 1)`.
    #[error("the holdout fraction must be in [0, 1), got {fraction}")]
    HoldoutFraction {
        /// The fraction given.
        fraction: f64,
    },
}

/// The train crate's result type.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
