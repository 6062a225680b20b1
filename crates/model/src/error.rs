//! The one error type of the model crate.

use std::path::PathBuf;

/// Everything the model crate can refuse. Each variant says what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A kernel refused its inputs.
    #[error(transparent)]
    Kernel(#[from] quantrec_kernels::KernelError),
    /// The data layer refused a batch or a metric input.
    #[error(transparent)]
    Data(#[from] quantrec_data::DataError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A safetensors buffer is malformed (truncated, bad header, offsets that do not add up).
    #[error("{what}: not a valid safetensors file: {source}")]
    SafeTensors {
        /// Which file or buffer.
        what: String,
        /// The parser's complaint.
        source: safetensors::SafeTensorError,
    },
    /// A tensor the architecture needs is absent.
    #[error("missing tensor {name}: {expected}")]
    MissingTensor {
        /// The tensor name.
        name: String,
        /// What it would hold.
        expected: String,
    },
    /// A tensor nothing in the supported architectures uses.
    #[error("unexpected tensor {name}: {reason}")]
    UnexpectedTensor {
        /// The tensor name.
        name: String,
        /// Why it does not fit.
        reason: String,
    },
    /// A tensor whose shape disagrees with the architecture.
    #[error("tensor {name} has shape {found:?}, expected {expected}")]
    TensorShape {
        /// The tensor name.
        name: String,
        /// The expected shape, in words.
        expected: String,
        /// The shape found.
        found: Vec<usize>,
    },
    /// A tensor with an element type that cannot be used there.
    #[error("tensor {name} has dtype {found}, expected {expected}")]
    TensorDtype {
        /// The tensor name.
        name: String,
        /// The accepted dtypes.
        expected: String,
        /// The dtype found.
        found: String,
    },
    /// A NaN or infinite weight.
    #[error("tensor {name} holds the non-finite value {value} at flat index {index}")]
    NonFinite {
        /// The tensor name.
        name: String,
        /// Flat index of the first bad value.
        index: usize,
        /// The value.
        value: f32,
    },
    /// The architecture cannot be inferred unambiguously.
    #[error("cannot infer {what}: {reason}")]
    Ambiguous {
        /// What was being inferred.
        what: String,
        /// The candidates or the missing information (and how to resolve it).
        reason: String,
    },
    /// A config that is inconsistent with itself or with the weights.
    #[error("invalid model config: {0}")]
    Config(String),
    /// A precision plan that does not fit the config.
    #[error("invalid precision plan: {0}")]
    Plan(String),
    /// A batch that does not fit the model.
    #[error("invalid batch: {0}")]
    Batch(String),
    /// An artifact whose metadata is missing, malformed or inconsistent with its tensors.
    #[error("invalid artifact {what}: {reason}")]
    Artifact {
        /// Which file.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// An artifact written by an incompatible format version.
    #[error("artifact {what} has format_version {found}; this build reads version {supported}")]
    ArtifactVersion {
        /// Which file.
        what: String,
        /// The version in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// A table format this build cannot produce from f32 yet.
    #[error("table {table}: cannot encode f32 rows as {format}: {reason}")]
    TableEncoding {
        /// Table index.
        table: usize,
        /// The requested format's name.
        format: String,
        /// Why.
        reason: String,
    },
    /// JSON (config, plan, metadata) that does not parse.
    #[error("{what}: {source}")]
    Json {
        /// What was being parsed.
        what: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A state dict cannot be written with the requested module names.
    #[error("cannot export with {naming} names: {reason}")]
    Export {
        /// The naming convention.
        naming: String,
        /// Why.
        reason: String,
    },
    /// A data file whose features do not fit the model's inputs.
    #[error(
        "{} has {dense} dense and {sparse} sparse features, the model takes {model_dense} and {model_sparse}",
        path.display()
    )]
    DataFeatures {
        /// The data file.
        path: PathBuf,
        /// Dense features of the file.
        dense: usize,
        /// Sparse features (tables) of the file.
        sparse: usize,
        /// Dense features of the model.
        model_dense: usize,
        /// Tables of the model.
        model_sparse: usize,
    },
    /// An output file whose extension names no format this crate writes.
    #[error("output {} must end in {expected}", path.display())]
    OutputFormat {
        /// The file.
        path: PathBuf,
        /// The extensions accepted.
        expected: String,
    },
    /// A tensor that could not be converted to a table format.
    #[error("converting tensor {tensor} to {format}: {source}")]
    ConvertTensor {
        /// The tensor.
        tensor: String,
        /// The target format.
        format: String,
        /// The kernel's refusal.
        source: quantrec_kernels::KernelError,
    },
    /// A conversion that selected no tensor.
    #[error(
        "no tensor of {file} was converted: none is a 2-D f32/f16/bf16 tensor{}",
        if *filtered { " matching --tensors" } else { "" }
    )]
    NothingToConvert {
        /// The input file.
        file: String,
        /// Whether a name filter was given.
        filtered: bool,
    },
}

impl ModelError {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps a safetensors parse error with what was being parsed.
    pub fn safetensors(what: impl Into<String>, source: safetensors::SafeTensorError) -> Self {
        ModelError::SafeTensors {
            what: what.into(),
            source,
        }
    }
}
