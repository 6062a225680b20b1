//! quantrec's model server.

/// The generated protocol types.
#[allow(missing_docs)]
pub mod proto {
    tonic::include_proto!("inference");
}
