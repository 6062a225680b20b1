//! The DLRM-family recommendation model of quantrec: architecture config, precision plan,
//! safetensors artifact, PyTorch/TorchRec import, forward pass, metrics and an fp32 trainer.
//!
//! - [`config`]: the architecture; [`plan`]: per-layer precision and per-table format.
//! - [`weights`]: f32 parameters independent of module names; [`state_dict`] / [`import`] /
//!   [`export`]: PyTorch state dicts with dlrm or TorchRec names.
//! - [`model`] + [`forward`]: [`Model`] (packed once, `predict(&self, ..)` from any thread) and its
//!   reusable [`Scratch`]; an [`Observer`] sees every layer when asked.
//! - [`artifact`]: the one-file safetensors artifact (memory-mapped tables).

pub mod artifact;
pub mod config;
pub mod convert;
pub mod error;
pub mod export;
pub mod forward;
pub mod import;
pub mod inputs;
pub mod inspect;
pub mod model;
pub mod parts;
pub mod plan;
pub mod remote;
pub mod score;
pub mod state_dict;
pub mod tables;
pub mod tiers;
pub mod weights;

pub use artifact::Artifact;
pub use config::ModelConfig;
pub use error::ModelError;
pub use forward::{Observer, Scratch, View};
pub use model::Model;
pub use plan::{LayerPrecision, Plan};
pub use weights::Weights;

/// Result type of the model crate.
pub type Result<T> = std::result::Result<T, ModelError>;
