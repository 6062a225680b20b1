//! quantrec's model server: KServe v2 / Open Inference Protocol over HTTP/JSON (with Triton's
//! binary tensor data extension) and gRPC (`inference.GRPCInferenceService`), shaped so that
//! Triton's own clients work unchanged; a dynamic batcher per model version on a dedicated compute
//! pool; a Triton-layout model repository with hot reload; Prometheus metrics.
//!
//! - [`server`]: [`ServeOptions`], [`Server`] (in-process, for tests and embedding) and [`run`]
//!   (what `quantrec serve` calls: serves until SIGTERM/SIGINT, then shuts down gracefully).
//! - [`repository`] + [`config`] + [`version`]: models, versions, load validation and hot reload.
//! - [`batcher`] + [`validate`]: merging requests without changing any row's score.
//! - [`tensors`], [`kserve_json`], [`rank`], [`describe`]: the protocol's tensors and documents.
//! - [`http`], [`grpc`]: the two front ends. [`metrics`], [`stats`]: what they report.
//! - [`client`]: an async client of both protocols; [`loadgen`]: the open-loop load generator of
//!   `quantrec loadgen`.
//! - [`monitor`]: the continuous accuracy monitor (labels fed back, live NE per version, fp32
//!   shadow, canary promote/rollback; [`monitor::live`] wires it into the server).
//! - [`remote_tables`]: versions whose tables live in a Redis Cluster (`serve --tables-redis`).
//! - [`demo_online`]: the demo's online day (`quantrec demo`).

pub mod batcher;
pub mod client;
pub mod config;
pub mod demo_online;
pub mod describe;
pub mod error;
pub mod grpc;
pub mod http;
pub mod kserve_json;
pub mod loadgen;
pub mod metrics;
pub mod monitor;
pub mod rank;
pub mod remote_tables;
pub mod repository;
pub mod server;
pub mod stats;
pub mod tensors;
pub mod validate;
pub mod version;

pub use error::{Result, ServeError};
pub use server::{ServeOptions, Server, init_logging, run};

/// The KServe v2 / Triton protocol types generated from `proto/` (server and client).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("inference");
}
