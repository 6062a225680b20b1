//! Click-log readers and the synthetic generator of quantrec: every source yields labelled batches.
//!
//! - [`source::open_source`]: one entry point for any data file (Criteo TSV, schema-driven text,
//!   gzip, safetensors batch files), yielding [`quantrec_data::Batch`]es through [`BatchSource`].
//! - [`schema`]: the JSON schema of delimited text files; [`schema::Schema::criteo`] is the preset.
//! - [`text`]: the streaming text reader; [`hash`]: how categorical strings become ids.
//! - [`batchfile`]: read and write safetensors batch files.
//! - [`synth`]: a deterministic Criteo-like generator with a hidden teacher model.
//! - [`batch_ops`]: building, checking, slicing and joining batches.
//! - [`view`]: borrowed batches ([`BatchView`]) the model reads its inputs through.

pub mod batch;
pub mod batch_ops;
pub mod batchfile;
pub mod error;
pub mod hash;
pub mod metrics;
pub mod schema;
pub mod source;
pub mod synth;
pub mod text;
pub mod view;

pub use batch::{Batch, SparseFeature};
pub use batchfile::{read_batch_file, write_batch_file};
pub use error::DataError;
pub use schema::Schema;
pub use source::{BatchSource, SourceSpec, SourceStats, open_source};
pub use view::{BatchView, SparseView};

/// Result type of the data crate.
pub type Result<T> = std::result::Result<T, DataError>;
