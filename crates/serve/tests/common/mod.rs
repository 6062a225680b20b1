//! Shared helpers of the server's integration tests: small models, artifacts on disk, batches.
#![allow(dead_code)]

pub mod http;
pub mod monitor;

use std::path::{Path, PathBuf};

use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::formats::TableFormat;
use quantrec_kernels::rng::Rng;
use quantrec_model::config::{DotOrder, Interaction, Naming, PoolingMode, TableConfig};
use quantrec_model::plan::ActivationPlan;
use quantrec_model::{LayerPrecision, ModelConfig, Plan, Weights};
use quantrec_serve::proto::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use quantrec_serve::proto::{InferTensorContents, ModelInferRequest};

/// A small dot-interaction DLRM: 13 dense features, four tables of 16-wide rows.
pub fn small_config() -> ModelConfig {
    let rows = [50, 100, 200, 30];
    ModelConfig {
        dense_features: 13,
        bottom_mlp: vec![32, 16],
        tables: rows
            .iter()
            .map(|&rows| TableConfig {
                rows,
                dim: 16,
                pooling: PoolingMode::Sum,
            })
            .collect(),
        interaction: Interaction::Dot {
            order: DotOrder::LowerByRow,
            self_interaction: false,
        },
        top_mlp: vec![32, 1],
        naming: Naming::Dlrm,
    }
}

/// Static int8 activations with a fixed range (calibration quality does not matter here).
pub fn static_int8() -> LayerPrecision {
    LayerPrecision::Int8 {
        per_channel: true,
        activations: ActivationPlan::Static {
            scale: 0.02,
            zero_point: 100,
        },
    }
}

/// Named precision plans covering every dense precision and table format the server must batch
/// without changing a result.
pub fn plans(config: &ModelConfig) -> Vec<(&'static str, Plan)> {
    let u = |l, t| Plan::uniform(config, l, t);
    let mut mixed = Plan::f32(config);
    mixed.bottom[0] = static_int8();
    mixed.top[0] = LayerPrecision::F16;
    mixed.tables = vec![
        TableFormat::Fused8,
        TableFormat::Fused4,
        TableFormat::Fused2,
        TableFormat::Fused8Half,
    ];
    vec![
        ("f32", Plan::f32(config)),
        ("f16", u(LayerPrecision::F16, TableFormat::F16)),
        ("bf16", u(LayerPrecision::Bf16, TableFormat::Bf16)),
        ("int8-static", u(static_int8(), TableFormat::Fused8)),
        ("fused4", u(LayerPrecision::F32, TableFormat::Fused4)),
        ("mixed", mixed),
    ]
}

/// Serialized artifact bytes of `config` with random weights from `seed` under `plan`.
pub fn artifact_bytes(config: &ModelConfig, plan: &Plan, seed: u64) -> Vec<u8> {
    let weights = Weights::random(config, seed);
    quantrec_model::artifact::to_bytes(config, &weights, plan, &Default::default()).unwrap()
}

/// Writes `DIR/name/version/model.safetensors`.
pub fn write_version(dir: &Path, name: &str, version: u64, bytes: &[u8]) -> PathBuf {
    let d = dir.join(name).join(version.to_string());
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("model.safetensors");
    let tmp = d.join(".model.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    p
}

/// A fresh, empty directory under the temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("quantrec-serve-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `size` random one-hot samples for `config` (dense in [0, 3), ids in range).
pub fn random_batch(config: &ModelConfig, size: usize, seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let nd = config.dense_features;
    let dense = (0..size * nd).map(|_| rng.uniform() as f32 * 3.0).collect();
    let sparse = config
        .tables
        .iter()
        .map(|t| {
            SparseFeature::one_hot(
                (0..size)
                    .map(|_| (rng.next_u64() % t.rows as u64) as i64)
                    .collect(),
            )
        })
        .collect();
    Batch::unlabeled(size, nd, dense, sparse)
}

/// A KServe v2 JSON inference body for a one-hot batch (`sparse` INT64 `[B, n_tables]`).
pub fn infer_json(b: &Batch, id: &str) -> serde_json::Value {
    let nt = b.sparse.len();
    let sparse: Vec<i64> = (0..b.size)
        .flat_map(|r| b.sparse.iter().map(move |f| f.ids[r]))
        .collect();
    serde_json::json!({
        "id": id,
        "inputs": [
            {"name": "dense", "datatype": "FP32", "shape": [b.size, b.n_dense], "data": b.dense},
            {"name": "sparse", "datatype": "INT64", "shape": [b.size, nt], "data": sparse},
        ],
    })
}

/// Logits and probabilities of an answered JSON inference.
pub fn outputs_of(v: &serde_json::Value) -> (Vec<f32>, Vec<f32>) {
    let get = |name: &str| -> Vec<f32> {
        v["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("no output {name} in {v}"))["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    (get("logit"), get("probability"))
}

/// Bit patterns of f32 values (for exact comparisons that name the values on failure).
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Expected (logits, probabilities) of `b` alone under the server's padding rule.
pub fn expected(model: &quantrec_model::Model, b: &Batch) -> (Vec<f32>, Vec<f32>) {
    let mut p = b.clone();
    quantrec_serve::validate::pad_batch(
        &mut p,
        quantrec_serve::validate::canonical_rows(b.size, model.chunk_size()),
    );
    let l = model
        .predict_logits(&p, &mut quantrec_model::Scratch::new())
        .unwrap()[..b.size]
        .to_vec();
    let probs = l
        .iter()
        .map(|&x| quantrec_model::forward::sigmoid(x))
        .collect();
    (l, probs)
}

/// A ModelInfer request of model `dlrm` (id `g-1`) for a one-hot batch: raw input contents or
/// typed contents; asks for the `logit` output.
pub fn grpc_request(b: &Batch, raw: bool) -> ModelInferRequest {
    let nt = b.sparse.len();
    let ids: Vec<i64> = (0..b.size)
        .flat_map(|r| b.sparse.iter().map(move |f| f.ids[r]))
        .collect();
    let mut req = ModelInferRequest {
        model_name: "dlrm".into(),
        id: "g-1".into(),
        inputs: vec![
            InferInputTensor {
                name: "dense".into(),
                datatype: "FP32".into(),
                shape: vec![b.size as i64, b.n_dense as i64],
                ..Default::default()
            },
            InferInputTensor {
                name: "sparse".into(),
                datatype: "INT64".into(),
                shape: vec![b.size as i64, nt as i64],
                ..Default::default()
            },
        ],
        outputs: vec![InferRequestedOutputTensor {
            name: "logit".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    if raw {
        req.raw_input_contents = vec![
            b.dense
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
            ids.iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
        ];
    } else {
        req.inputs[0].contents = Some(InferTensorContents {
            fp32_contents: b.dense.clone(),
            ..Default::default()
        });
        req.inputs[1].contents = Some(InferTensorContents {
            int64_contents: ids,
            ..Default::default()
        });
    }
    req
}
