//! Shared helpers of the tables crate's cluster tests.
#![allow(dead_code)]

use std::sync::Arc;

use quantrec_data::Batch;
use quantrec_kernels::formats::TableFormat;
use quantrec_model::import::{ImportOverrides, import_file};
use quantrec_model::inputs::load_inputs;
use quantrec_model::{LayerPrecision, Model, Plan};
use quantrec_tables::testing::namespace;
use quantrec_tables::{Cluster, ClusterOptions, Store};

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
