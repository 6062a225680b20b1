//! Shared helpers of the tables crate's cluster tests.
#![allow(dead_code)]

use std::sync::Arc;

use quantrec_data::Batch;
use quantrec_kernels::formats::TableFormat;
use quantrec_model::import::{ImportOverrides, import_file};
use quantrec_model::inputs::load_inputs;
use quantrec_model::{LayerPrecision, Model, Plan};
use quantrec_tables::{Cluster, ClusterOptions, Store};

/// The cluster's seed URLs from `QUANTREC_REDIS_CLUSTER`. Without it: a panic under CI
/// (`CI=true`), else a printed notice and `None` (the caller returns: the test is skipped).
pub fn cluster_urls(test: &str) -> Option<String> {
    match std::env::var("QUANTREC_REDIS_CLUSTER") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{test}: QUANTREC_REDIS_CLUSTER is not set: CI must start the Redis Cluster \
                     (scripts/redis-cluster.sh start DIR) and export its URLs"
                );
            }
            eprintln!(
                "SKIPPED {test}: no Redis Cluster (set QUANTREC_REDIS_CLUSTER=redis://127.0.0.1:7101,... \
                 after scripts/redis-cluster.sh start DIR)"
            );
            None
        }
    }
}

/// The cluster's directory (for the script's kill/revive) from `QUANTREC_REDIS_CLUSTER_DIR`,
/// with the same CI rule as [`cluster_urls`].
pub fn cluster_dir(test: &str) -> Option<String> {
    match std::env::var("QUANTREC_REDIS_CLUSTER_DIR") {
        Ok(d) if !d.trim().is_empty() => Some(d),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: QUANTREC_REDIS_CLUSTER_DIR is not set (CI must export it)");
            }
            eprintln!("SKIPPED {test}: QUANTREC_REDIS_CLUSTER_DIR not set");
            None
        }
    }
}

/// A namespace no other test (or earlier run) uses.
pub fn namespace(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("qrtest-{tag}-{}-{nanos}", std::process::id())
}

/// A store on `urls` in a fresh namespace.
pub fn store(urls: &str, tag: &str) -> Store {
    let cluster = Arc::new(Cluster::new(ClusterOptions::from_urls(urls).unwrap()).unwrap());
    Store::new(cluster, &namespace(tag)).unwrap()
}

/// Path of a shared fixture.
pub fn fixture(name: &str) -> std::path::PathBuf {
    quantrec_testkit::fixture(env!("CARGO_MANIFEST_DIR"), name)
}

/// The `dlrm_dot` fixture model with every table in `format`.
pub fn model(format: TableFormat) -> Model {
    let imp = import_file(
        &fixture("dlrm_dot.safetensors"),
        &ImportOverrides::default(),
    )
    .unwrap();
    let plan = Plan::uniform(&imp.config, LayerPrecision::F32, format);
    Model::from_parts(&imp.config, &imp.weights, &plan).unwrap()
}

/// The fixture's one-hot inputs.
pub fn inputs() -> Batch {
    load_inputs(&fixture("dlrm_dot.inputs.safetensors"))
        .unwrap()
        .batch
}

/// Logits as bits.
pub fn logit_bits(m: &Model, b: &Batch) -> quantrec_model::Result<Vec<u32>> {
    let mut s = quantrec_model::Scratch::new();
    Ok(m.predict_logits(b, &mut s)?
        .iter()
        .map(|x| x.to_bits())
        .collect())
}
