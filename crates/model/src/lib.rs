//! The DLRM-family recommendation model of quantrec: architecture config, precision plan,
//! safetensors artifact, PyTorch/TorchRec import, forward pass, metrics and an fp32 trainer.

pub mod batch;
pub mod config;
pub mod error;
pub mod train;

pub use batch::{Batch, SparseFeature};
pub use config::ModelConfig;
pub use error::ModelError;

/// Result type of the model crate.
pub type Result<T> = std::result::Result<T, ModelError>;
