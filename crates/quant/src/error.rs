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
    /// A file could not be read, written or created.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A data file without labels where labelled rows are needed (evaluation, training).
    #[error("{} has no labels", path.display())]
    Unlabelled {
        /// The data file.
        path: std::path::PathBuf,
    },
    /// A data file with fewer rows than the operation needs.
    #[error("{} has only {rows} rows; at least {needed} are needed", path.display())]
    TooFewRows {
        /// The data file.
        path: std::path::PathBuf,
        /// Rows it holds (or that were read).
        rows: u64,
        /// Rows the operation needs.
        needed: u64,
    },
    /// Kernels that disagree with their scalar oracle in the self-check.
    #[error("{failed} kernel self-checks disagree with the scalar oracle")]
    SelfCheck {
        /// How many (family, implementation) checks failed.
        failed: usize,
    },
    /// A saved artifact that does not predict what the in-memory model predicts.
    #[error("the saved artifact {} does not reproduce the in-memory model", path.display())]
    Reproduce {
        /// The artifact.
        path: std::path::PathBuf,
    },
    /// A thread pool could not be built (benchmarks and throughput runs pin their thread count).
    #[error(transparent)]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),
    /// A background worker thread panicked.
    #[error("the {what} thread panicked")]
    Worker {
        /// What the thread was doing.
        what: String,
    },
    /// JSON that could not be written or parsed.
    #[error("{what}: {source}")]
    Json {
        /// What was being serialized or parsed.
        what: String,
        /// The serializer's error.
        source: serde_json::Error,
    },
}

impl QuantError {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        QuantError::Io {
            path: path.into(),
            source,
        }
    }
}
