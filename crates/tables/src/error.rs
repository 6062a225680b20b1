//! The one error type of the tables crate.

use std::time::Duration;

/// Everything the table store can refuse or fail at. Variants carry what a caller matches on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TablesError {
    /// A Redis command failed (node down, connection refused, cluster error, ...).
    #[error("redis {op}: {source}")]
    Redis {
        /// What was being done (`GET manifest`, `pipeline of table 3`, ...).
        op: String,
        /// The client's error.
        source: redis::RedisError,
    },
    /// The request did not finish within its deadline (a slow or unreachable node).
    #[error("{op}: no answer within the deadline of {deadline:?}")]
    Timeout {
        /// What was being done.
        op: String,
        /// The deadline.
        deadline: Duration,
    },
    /// No complete version of the model is in the store (never pushed, or pushed halfway).
    #[error(
        "no manifest for model {model:?} in namespace {namespace:?} (not pushed, or not finished)"
    )]
    NoManifest {
        /// The model name.
        model: String,
        /// The namespace.
        namespace: String,
    },
    /// The model's manifest points at other tables than the artifact's (the artifact's tables
    /// were not pushed, or another artifact was pushed under the name since).
    #[error(
        "the store's tables of model {model:?} (namespace {namespace:?}) are version {stored}, \
         the artifact's tables are version {local}: push them (quantrec tables push ... --name {model})"
    )]
    VersionMismatch {
        /// The model name in the store.
        model: String,
        /// The namespace.
        namespace: String,
        /// The version the manifest points at.
        stored: String,
        /// The version of the artifact's tables.
        local: String,
    },
    /// A stored manifest or layout that cannot be parsed or contradicts itself.
    #[error("bad manifest {key}: {reason}")]
    BadManifest {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A key that should hold a block (or its checksums) is absent.
    #[error("missing key {key} (table {table})")]
    MissingKey {
        /// The key.
        key: String,
        /// The table.
        table: usize,
    },
    /// A stored value of the wrong length.
    #[error("key {key} (table {table}) holds {found} bytes, expected {expected}")]
    WrongLength {
        /// The key.
        key: String,
        /// The table.
        table: usize,
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
    /// A block whose bytes do not match the manifest's checksum.
    #[error("block {block} of table {table} ({key}) fails its checksum")]
    Checksum {
        /// The table.
        table: usize,
        /// The block within the table.
        block: usize,
        /// Its key.
        key: String,
    },
    /// A row outside its table.
    #[error("row {row} of table {table} is out of range: the table has {rows} rows")]
    RowOutOfRange {
        /// The table.
        table: usize,
        /// The row asked for.
        row: u64,
        /// Rows of the table.
        rows: usize,
    },
    /// A table index the store does not have.
    #[error("table {table} is not in the store ({tables} tables)")]
    NoSuchTable {
        /// The table asked for.
        table: usize,
        /// Tables in the store.
        tables: usize,
    },
    /// An option or argument that cannot be used.
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// Which option.
        what: String,
        /// Why.
        reason: String,
    },
    /// The tokio runtime of the store could not be started.
    #[error("starting the store's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Writing a benchmark line to its output failed.
    #[error("writing the benchmark's output: {0}")]
    Output(#[source] std::io::Error),
    /// The model layer refused something (loading the artifact, predicting).
    #[error(transparent)]
    Model(#[from] quantrec_model::ModelError),
    /// A metric could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl TablesError {
    /// Wraps a Redis error with what was being done.
    pub fn redis(op: impl Into<String>, source: redis::RedisError) -> Self {
        TablesError::Redis {
            op: op.into(),
            source,
        }
    }

    /// Whether this is a transient store failure (node down, timeout, cluster reconfiguring)
    /// rather than a problem with the data or the request.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            TablesError::Redis { .. } | TablesError::Timeout { .. }
        )
    }
}

/// Whether a model call failed because the remote table store did not answer (a
/// [`quantrec_model::ModelError::RemoteRows`] whose source is an unavailable [`TablesError`]:
/// node down, timeout) rather than over bad data or input.
pub fn unavailable(e: &quantrec_model::ModelError) -> bool {
    match e {
        quantrec_model::ModelError::RemoteRows { source, .. } => source
            .downcast_ref::<TablesError>()
            .is_some_and(TablesError::is_unavailable),
        _ => false,
    }
}
