//! The DLRM-family recommendation model of quantrec: architecture config, precision plan,
//! safetensors artifact, PyTorch/TorchRec import, forward pass, metrics and an fp32 trainer.

pub mod error;

pub use error::ModelError;

/// Result type of the model crate.
pub type Result<T> = std::result::Result<T, ModelError>;
