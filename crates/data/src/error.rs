//! The one error type of the data crate.

use std::path::PathBuf;

/// Everything the data crate can refuse. Each variant says what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
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
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line has the wrong number of fields.
    #[error("{file}:{line}: expected {expected} fields, found {found}")]
    ColumnCount {
        /// The file.
        file: String,
        /// 1-based line number.
        line: u64,
        /// Fields the schema has.
        expected: usize,
        /// Fields on the line.
        found: usize,
    },
    /// A line is longer than [`crate::text::MAX_LINE_BYTES`] (no line break within that many bytes).
    #[error("{file}:{line}: line longer than {limit} bytes")]
    LineTooLong {
        /// The file.
        file: String,
        /// 1-based line number.
        line: u64,
        /// The limit in bytes (line break included).
        limit: usize,
    },
    /// A field could not be parsed.
    #[error("{file}:{line}: column {column} ({name}): expected {expected}, found {found:?}")]
    Field {
        /// The file.
        file: String,
        /// 1-based line number.
        line: u64,
        /// 1-based column number.
        column: usize,
        /// The column's name in the schema.
        name: String,
        /// What the column must hold.
        expected: &'static str,
        /// The offending text (truncated to 64 bytes).
        found: String,
    },
    /// A pre-tokenized id is outside its table.
    #[error(
        "{file}:{line}: column {column} ({name}): id {id} is out of range for a table of {rows} rows"
    )]
    IdOutOfRange {
        /// The file.
        file: String,
        /// 1-based line number.
        line: u64,
        /// 1-based column number.
        column: usize,
        /// The column's name in the schema.
        name: String,
        /// The id found.
        id: i64,
        /// Rows of the table (valid ids are `0..rows`).
        rows: usize,
    },
    /// A schema delimiter that is not one ASCII character other than a line break.
    #[error(
        "schema: the delimiter must be one ASCII character other than a line break, found {found:?}"
    )]
    SchemaDelimiter {
        /// The delimiter given.
        found: char,
    },
    /// A schema without columns.
    #[error("schema: expected at least one column, found none")]
    SchemaNoColumns,
    /// A schema with several label columns.
    #[error("schema: expected at most one label column, found {found}")]
    SchemaLabels {
        /// Label columns in the schema.
        found: usize,
    },
    /// A multi-id separator that is not one ASCII character other than the delimiter and line breaks.
    #[error(
        "schema: column {column} ({name}): the separator must be one ASCII character other than the delimiter and line breaks, found {found:?}"
    )]
    SchemaSeparator {
        /// 1-based column number.
        column: usize,
        /// The column's name.
        name: String,
        /// The separator given.
        found: char,
    },
    /// A schema whose sparse columns are not one per table.
    #[error("schema: {sparse_columns} sparse columns but {tables} table sizes were given")]
    SchemaTableCount {
        /// Sparse columns of the schema.
        sparse_columns: usize,
        /// Table sizes given.
        tables: usize,
    },
    /// A table size of 0 rows.
    #[error("schema: table {table} has 0 rows; every table needs at least one")]
    SchemaEmptyTable {
        /// Table index.
        table: usize,
    },
    /// A schema file is not valid JSON for [`crate::schema::Schema`].
    #[error("{}: invalid schema JSON: {source}", path.display())]
    SchemaJson {
        /// The schema file.
        path: PathBuf,
        /// The parser's message.
        source: serde_json::Error,
    },
    /// A batch file is missing a tensor or has one of the wrong type or shape.
    #[error("{}: tensor {tensor:?}: expected {expected}, found {found}", path.display())]
    BatchFile {
        /// The batch file.
        path: PathBuf,
        /// The tensor concerned.
        tensor: String,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// The safetensors container itself could not be read or written.
    #[error("{}: safetensors: {source}", path.display())]
    SafeTensors {
        /// The batch file.
        path: PathBuf,
        /// The library's error.
        source: safetensors::SafeTensorError,
    },
    /// A batch is internally inconsistent (lengths of dense, offsets, ids, labels).
    #[error("invalid batch: {what}: expected {expected}, found {found}")]
    InvalidBatch {
        /// The part of the batch concerned.
        what: String,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// A source specification or generator configuration is invalid.
    #[error("invalid {what}: expected {expected}, found {found}")]
    Config {
        /// The setting concerned.
        what: &'static str,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
}

impl DataError {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}
