//! The one error type of the server crate, and how each kind maps to an HTTP status and a gRPC code.

use std::path::PathBuf;

/// Everything the server can refuse or fail at. Variants carry the fields a caller matches on
/// (model, version, tensor, expected and found shape or dtype, ...); the message says what and
/// where in words.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// No model of that name is in the repository (or it is unloaded).
    #[error("unknown model {model:?}")]
    UnknownModel {
        /// The requested model.
        model: String,
    },
    /// The model exists but that version is not being served.
    #[error("model {model:?} has no ready version {version:?} (ready: {ready:?})")]
    UnknownVersion {
        /// The model.
        model: String,
        /// The requested version.
        version: String,
        /// The versions that are ready.
        ready: Vec<u64>,
    },
    /// The request body is not valid JSON, protobuf or binary framing.
    #[error("malformed request: {reason}")]
    Malformed {
        /// What could not be parsed, and where.
        reason: String,
    },
    /// An input tensor the model does not take.
    #[error("model {model:?} has no input tensor {tensor:?} (inputs: {expected})")]
    UnknownTensor {
        /// The model.
        model: String,
        /// The tensor name given.
        tensor: String,
        /// The names the model takes.
        expected: String,
    },
    /// An input needed by the model is missing.
    #[error("missing input tensor {tensor:?}: {reason}")]
    MissingTensor {
        /// The tensor name.
        tensor: String,
        /// Why it is needed.
        reason: String,
    },
    /// A tensor with the wrong element type.
    #[error("input {tensor:?} has datatype {found}, expected {expected}")]
    Dtype {
        /// The tensor name.
        tensor: String,
        /// The datatype the model takes.
        expected: String,
        /// The datatype given.
        found: String,
    },
    /// A tensor with the wrong shape or element count.
    #[error("input {tensor:?} has shape {found:?}, expected {expected}")]
    Shape {
        /// The tensor name.
        tensor: String,
        /// The expected shape, in words.
        expected: String,
        /// The shape given.
        found: Vec<i64>,
    },
    /// A tensor whose data does not match its declared shape (count or byte size).
    #[error("input {tensor:?}: {reason}")]
    Data {
        /// The tensor name.
        tensor: String,
        /// What is wrong with the data.
        reason: String,
    },
    /// A sparse id outside its table.
    #[error(
        "input {tensor:?}: id {id} of sample {sample} is outside table {table} (rows 0..{rows})"
    )]
    IdOutOfRange {
        /// The tensor that holds it.
        tensor: String,
        /// The table.
        table: usize,
        /// The sample (row of the request).
        sample: usize,
        /// The id.
        id: i64,
        /// Rows of the table.
        rows: usize,
    },
    /// A NaN or infinite dense value.
    #[error(
        "input {tensor:?}: sample {sample} feature {feature} is {value} (dense values must be finite)"
    )]
    NonFinite {
        /// The tensor that holds it.
        tensor: String,
        /// The sample.
        sample: usize,
        /// The feature (column).
        feature: usize,
        /// The value.
        value: f32,
    },
    /// More rows than the model's batch limit.
    #[error("request has {rows} rows, model {model:?} takes at most {max} per request")]
    TooManyRows {
        /// The model.
        model: String,
        /// Rows requested.
        rows: usize,
        /// The limit.
        max: usize,
    },
    /// A request-level parameter with an unusable value.
    #[error("parameter {name:?}: {reason}")]
    Parameter {
        /// The parameter.
        name: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// An output the model does not produce was requested.
    #[error("model {model:?} has no output {output:?} (outputs: probability, logit)")]
    UnknownOutput {
        /// The model.
        model: String,
        /// The output name given.
        output: String,
    },
    /// The body is larger than the server accepts.
    #[error("request body of {bytes} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The body's size (or at least this much).
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The model's request queue is full.
    #[error("model {model:?} version {version}: queue full ({capacity} requests waiting)")]
    QueueFull {
        /// The model.
        model: String,
        /// The version.
        version: u64,
        /// The queue's capacity.
        capacity: usize,
    },
    /// The request's deadline passed before it was executed; it was not computed.
    #[error(
        "model {model:?} version {version}: request timed out after {waited_us} µs in the queue (timeout {timeout_us} µs)"
    )]
    Timeout {
        /// The model.
        model: String,
        /// The version.
        version: u64,
        /// How long it waited.
        waited_us: u64,
        /// Its timeout.
        timeout_us: u64,
    },
    /// The server is shutting down or the model version went away before the request ran.
    #[error("model {model:?} version {version} is no longer serving")]
    Unavailable {
        /// The model.
        model: String,
        /// The version.
        version: u64,
    },
    /// A version could not be loaded or failed validation; the previous version keeps serving.
    #[error("model {model:?} version {version} ({path}) refused: {reason}")]
    LoadFailed {
        /// The model.
        model: String,
        /// The version.
        version: u64,
        /// Its artifact.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A load request refused a version (what was serving keeps serving).
    #[error("{reason}; versions already serving are unaffected")]
    VersionRefused {
        /// The model.
        model: String,
        /// The refused version.
        version: u64,
        /// The load error.
        reason: String,
    },
    /// A canary launch was refused (what was serving keeps serving, alone).
    #[error("model {model:?}: canary version {version} refused: {reason}")]
    CanaryRefused {
        /// The model.
        model: String,
        /// The canary's version.
        version: u64,
        /// Why.
        reason: String,
    },
    /// The fp32 shadow reference could not be loaded (the model serves without a shadow).
    #[error(
        "model {model:?}: fp32 shadow reference {path} refused: {reason}; serving without a shadow"
    )]
    ShadowRefused {
        /// The model.
        model: String,
        /// The reference artifact.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A step of the demo's online day failed.
    #[error("demo online day: {step}: {reason}")]
    Demo {
        /// The step (e.g. `writing the model repository`).
        step: String,
        /// Why.
        reason: String,
    },
    /// The repository or a model's config.json is unusable.
    #[error("repository {path}: {reason}")]
    Repository {
        /// The directory or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A socket could not be bound or served.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The model refused a batch the server had validated (a bug, reported as 500).
    #[error("model {model:?} version {version}: {source}")]
    Model {
        /// The model.
        model: String,
        /// The version.
        version: u64,
        /// The model's error (boxed: it is large and rare).
        source: Box<quantrec_model::ModelError>,
    },
    /// A version's tables in the Redis Cluster: refused at load (not pushed, another artifact's
    /// tables, cluster unreachable) or, with `unavailable`, a model call whose rows the store
    /// could not deliver within the deadline (503 / UNAVAILABLE).
    #[error("model {model:?} version {version}: remote tables: {reason}")]
    Tables {
        /// The model.
        model: String,
        /// The version.
        version: u64,
        /// What went wrong.
        reason: String,
        /// Whether the store did not answer (node down, timeout) rather than refused.
        unavailable: bool,
    },
    /// The forward pass panicked (a bug, reported as 500; the compute pool keeps running).
    #[error("model {model:?} version {version}: the forward pass panicked")]
    ComputePanicked {
        /// The model.
        model: String,
        /// The version.
        version: u64,
    },
    /// Another request merged into the same model call made it fail (reported as 500 to every
    /// request of the call; the first one gets the original error).
    #[error("model {model:?} version {version}: the merged call failed: {reason}")]
    MergedCallFailed {
        /// The model.
        model: String,
        /// The version.
        version: u64,
        /// The original error's message.
        reason: String,
    },
    /// Client: the server URL is unusable.
    #[error("URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Client: no connection could be made.
    #[error("connecting to {url}: {reason}")]
    Connect {
        /// The URL or address.
        url: String,
        /// The connection error.
        reason: String,
    },
    /// Client: the connection failed during a request (reset, closed, bad framing).
    #[error("{url}: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// Client: the server answered an HTTP error status.
    #[error("{url}: HTTP {status}: {message}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The server's error message (or body).
        message: String,
    },
    /// Client: the server answered a gRPC error status.
    #[error("gRPC {code:?}: {message}")]
    GrpcStatus {
        /// The status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
    /// Client: no answer within the client's timeout.
    #[error("{url}: no answer within {after:?}")]
    ClientTimeout {
        /// The URL.
        url: String,
        /// The timeout.
        after: std::time::Duration,
    },
    /// Client: the server's answer does not follow the protocol.
    #[error("unexpected response: {reason}")]
    BadResponse {
        /// What is wrong with it.
        reason: String,
    },
    /// Load generator: an option with an unusable value.
    #[error("load generator option {option}: {reason}")]
    LoadgenOption {
        /// The option.
        option: &'static str,
        /// Why it cannot be used.
        reason: String,
    },
    /// Load generator: the inputs file cannot be used.
    #[error("load generator inputs {path}: {reason}")]
    LoadgenInputs {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl ServeError {
    /// The HTTP status this error is answered with.
    pub fn http_status(&self) -> u16 {
        match self {
            ServeError::UnknownModel { .. } | ServeError::UnknownVersion { .. } => 404,
            ServeError::TooLarge { .. } => 413,
            ServeError::QueueFull { .. }
            | ServeError::Unavailable { .. }
            | ServeError::Tables {
                unavailable: true, ..
            } => 503,
            ServeError::Timeout { .. } => 504,
            ServeError::LoadFailed { .. }
            | ServeError::VersionRefused { .. }
            | ServeError::CanaryRefused { .. }
            | ServeError::ShadowRefused { .. }
            | ServeError::Tables { .. } => 400,
            ServeError::Repository { .. }
            | ServeError::Demo { .. }
            | ServeError::Io { .. }
            | ServeError::Model { .. }
            | ServeError::ComputePanicked { .. }
            | ServeError::MergedCallFailed { .. } => 500,
            _ => 400,
        }
    }

    /// The gRPC status code this error is answered with.
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            ServeError::UnknownModel { .. } | ServeError::UnknownVersion { .. } => {
                tonic::Code::NotFound
            }
            ServeError::TooLarge { .. } | ServeError::QueueFull { .. } => {
                tonic::Code::ResourceExhausted
            }
            ServeError::Unavailable { .. }
            | ServeError::Tables {
                unavailable: true, ..
            } => tonic::Code::Unavailable,
            ServeError::Timeout { .. } => tonic::Code::DeadlineExceeded,
            ServeError::LoadFailed { .. }
            | ServeError::VersionRefused { .. }
            | ServeError::CanaryRefused { .. }
            | ServeError::ShadowRefused { .. }
            | ServeError::Tables { .. } => tonic::Code::FailedPrecondition,
            ServeError::Repository { .. }
            | ServeError::Demo { .. }
            | ServeError::Io { .. }
            | ServeError::Model { .. }
            | ServeError::ComputePanicked { .. }
            | ServeError::MergedCallFailed { .. } => tonic::Code::Internal,
            _ => tonic::Code::InvalidArgument,
        }
    }

    /// The error of a model call that failed: [`ServeError::Tables`] (unavailable) when the
    /// remote table store did not answer, else [`ServeError::Model`].
    pub fn model_call(model: &str, version: u64, source: quantrec_model::ModelError) -> Self {
        if quantrec_tables::error::unavailable(&source) {
            ServeError::Tables {
                model: model.into(),
                version,
                reason: source.to_string(),
                unavailable: true,
            }
        } else {
            ServeError::Model {
                model: model.into(),
                version,
                source: Box::new(source),
            }
        }
    }

    /// A malformed-request error.
    pub fn malformed(reason: impl Into<String>) -> Self {
        ServeError::Malformed {
            reason: reason.into(),
        }
    }
}

impl From<ServeError> for tonic::Status {
    fn from(e: ServeError) -> tonic::Status {
        tonic::Status::new(e.grpc_code(), e.to_string())
    }
}

/// Result type of the server crate.
pub type Result<T> = std::result::Result<T, ServeError>;
