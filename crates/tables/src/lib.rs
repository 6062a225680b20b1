//! Embedding tables of quantrec models in a Redis Cluster, with a local hot-row cache.
//!
//! - [`layout`]: row blocks, slot groups (hash tags), checksums, the manifest written last.
//! - [`cluster`]: the `redis` crate's async cluster client on a small runtime of its own, and
//!   blocking calls with a deadline.
//! - [`connect`]: a store from seed nodes, namespace and deadline; remote tables attached to a
//!   model; the one-line texts of push, verify, gc and of the tables' traffic.
//! - [`store`]: `push` (idempotent, resumable), `verify`, `gc`.
//! - [`remote`]: [`RemoteTables`], the model's [`quantrec_model::remote::RowSource`]: the
//!   batch's missing rows in one pipeline per slot group, all in flight at once, under a deadline.
//! - [`router`]: slot routing of the fetch path (per-node connections, `MOVED`/`ASK`).
//! - [`cache`]: the byte-bounded W-TinyLFU hot-row cache (and a plain LRU to compare with).
//! - [`metrics`]: Prometheus families for the server's `/metrics`; [`collector`]: those of many
//!   model versions in one registry, labelled.
//! - [`health`]: the cluster's reachability, pinged in the background (a server's readiness).
//! - [`bench`]: rows/s, p99 and bytes on the wire with remote tables against in-memory ones.
//! - [`zipf`]: Zipf-distributed ids for the benchmark and the tests.
//! - [`testing`]: helpers of the tests against a live cluster (this crate's and the server's).

pub mod bench;
pub mod cache;
pub mod cluster;
pub mod collector;
pub mod connect;
pub mod error;
pub mod health;
pub mod layout;
pub mod metrics;
pub mod remote;
pub mod router;
pub mod store;
pub mod testing;
pub mod zipf;

pub use cache::{Policy, RowCache};
pub use cluster::{Cluster, ClusterOptions};
pub use collector::{Registration, TablesCollector};
pub use connect::{RemoteTablesSpec, StoreAddress, TrafficSummary, model_name};
pub use error::TablesError;
pub use health::{Health, HealthState};
pub use remote::RemoteTables;
pub use store::{PushOptions, Store};

/// Result type of the tables crate.
pub type Result<T> = std::result::Result<T, TablesError>;

use quantrec_model::Model;
use quantrec_model::remote::TableShape;

/// Shapes and stored bytes of every table of `model`, in model order (what [`Store::push`] takes).
pub fn model_tables(model: &Model) -> Vec<(TableShape, &[u8])> {
    model
        .tables()
        .iter()
        .map(|t| {
            (
                TableShape {
                    format: t.format,
                    rows: t.rows,
                    dim: t.dim,
                },
                t.bytes.as_slice(),
            )
        })
        .collect()
}
