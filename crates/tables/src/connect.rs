//! Opening a store from what a command line gives (seed nodes, namespace, deadline, model name),
//! attaching its tables to a model, and the one-line texts of what the store did: the library
//! side of `quantrec tables`, `predict --tables-redis` and `bench model --tables-redis`.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quantrec_model::Model;

use crate::bench::{RemoteBenchLine, RemoteBenchOptions, run_remote_bench};
use crate::store::{GcReport, PushReport, VerifyReport};
use crate::{Cluster, ClusterOptions, Policy, RemoteTables, Result, Store};

/// Where a store is: the cluster's seed nodes, the key namespace and the fetch deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreAddress {
    /// Seed nodes, comma separated: `redis://HOST:PORT[,HOST:PORT...]`.
    pub urls: String,
    /// Key namespace.
    pub namespace: String,
    /// Deadline of one batch's row fetch (the cluster's default when `None`).
    pub deadline: Option<Duration>,
}

impl StoreAddress {
    /// Connects to the cluster and opens the namespace.
    pub fn open(&self) -> Result<Store> {
        let mut options = ClusterOptions::from_urls(&self.urls)?;
        if let Some(d) = self.deadline {
            options.deadline = d;
        }
        Store::new(Arc::new(Cluster::new(options)?), &self.namespace)
    }
}

/// The model name in the store: `name` when given, else the artifact's file stem (`model` when
/// the path has none).
pub fn model_name(artifact: &Path, name: Option<&str>) -> String {
    name.map(String::from).unwrap_or_else(|| {
        artifact
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().to_string())
    })
}

/// Remote tables of one model: where the store is, the model's name in it, the cache size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteTablesSpec {
    /// The store.
    pub store: StoreAddress,
    /// The model's name in the store.
    pub model: String,
    /// Bytes of the local hot-row cache (W-TinyLFU) in front of the store.
    pub cache_bytes: usize,
}

impl RemoteTablesSpec {
    /// Opens the tables and attaches them to `target` as its row source; returns them (for
    /// metrics, preloading and readiness).
    pub fn attach(&self, target: &mut Model) -> Result<Arc<RemoteTables>> {
        let tables = Arc::new(RemoteTables::open(
            self.store.open()?,
            &self.model,
            self.cache_bytes,
            Policy::WTinyLfu,
        )?);
        target.set_row_source(tables.clone())?;
        Ok(tables)
    }

    /// `bench model --tables-redis`: loads the artifact at `path` (tables copied into memory),
    /// then for each batch size times it against the store at cache sizes of 0%, 1% and 10% of
    /// the table bytes (and `cache_bytes` when non-zero) on Zipf ids, handing each line to `print`.
    pub fn bench_artifact(
        &self,
        path: &Path,
        batches: &[usize],
        quick: bool,
        mut print: impl FnMut(&RemoteBenchLine) -> std::io::Result<()>,
    ) -> Result<()> {
        let mut model = Model::load(path)?;
        model.load_tables_into_memory()?;
        let store = self.store.open()?;
        for &batch in batches {
            let options = RemoteBenchOptions {
                model: self.model.clone(),
                batch,
                batches: if quick { 50 } else { 300 },
                warmup: if quick { 20 } else { 100 },
                cache_fractions: vec![0.0, 0.01, 0.1],
                cache_bytes: if self.cache_bytes > 0 {
                    vec![self.cache_bytes]
                } else {
                    Vec::new()
                },
                zipf: 1.05,
                seed: 7,
            };
            for line in run_remote_bench(&model, &store, &options)? {
                print(&line).map_err(crate::TablesError::Output)?;
            }
        }
        Ok(())
    }
}

/// One line on remote tables' traffic so far: version, cache hit ratio, rows fetched, wire bytes.
pub struct TrafficSummary<'a>(pub &'a RemoteTables);

impl fmt::Display for TrafficSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0.metrics();
        let wire = m.wire_bytes.with_label_values(&["sent"]).get()
            + m.wire_bytes.with_label_values(&["received"]).get();
        write!(
            f,
            "remote tables version {}: cache hit ratio {:.1}%, {} rows fetched, {} bytes on the wire",
            self.0.version(),
            100.0 * m.hit_ratio().unwrap_or(0.0),
            m.fetched_rows.get(),
            wire
        )
    }
}

impl fmt::Display for PushReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "version {}: {} blocks, {} written ({} bytes), {} already there; {}",
            self.version,
            self.blocks,
            self.written,
            self.bytes_written,
            self.skipped,
            if self.complete {
                "manifest written"
            } else {
                "incomplete: no manifest yet (push again to resume)"
            }
        )
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "version {}: {} blocks, {} bytes, every checksum matches",
            self.version, self.blocks, self.bytes
        )
    }
}

impl fmt::Display for GcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kept {:?}; young (kept) {:?}; dropped {:?} ({} keys)",
            self.kept, self.young, self.dropped, self.keys_deleted
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_name_prefers_the_given_name_then_the_file_stem() {
        assert_eq!(model_name(Path::new("/a/b/day1.safetensors"), None), "day1");
        assert_eq!(
            model_name(Path::new("/a/b/day1.safetensors"), Some("m")),
            "m"
        );
        assert_eq!(model_name(Path::new("/"), None), "model");
    }

    #[test]
    fn reports_read_as_one_line() {
        let push = PushReport {
            version: "v1".into(),
            blocks: 4,
            written: 3,
            skipped: 1,
            bytes_written: 300,
            complete: false,
        };
        assert_eq!(
            push.to_string(),
            "version v1: 4 blocks, 3 written (300 bytes), 1 already there; incomplete: no \
             manifest yet (push again to resume)"
        );
        let gc = GcReport {
            kept: vec!["a".into()],
            young: vec![],
            dropped: vec!["b".into()],
            keys_deleted: 7,
        };
        assert_eq!(
            gc.to_string(),
            "kept [\"a\"]; young (kept) []; dropped [\"b\"] (7 keys)"
        );
    }

    #[test]
    fn a_bad_seed_list_is_an_error_not_a_panic() {
        let address = StoreAddress {
            urls: " , ".into(),
            namespace: "q".into(),
            deadline: None,
        };
        assert!(address.open().is_err());
    }
}
