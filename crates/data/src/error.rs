//! The one error type of the data crate.

/// Everything the data crate can refuse. Each variant says what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The model layer refused its inputs.
    #[error(transparent)]
    Model(#[from] quantrec_model::ModelError),
}
