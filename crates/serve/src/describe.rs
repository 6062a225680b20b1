//! What the metadata and config endpoints say about a model, for both protocols.
//!
//! Metadata (`/v2/models/<name>`, ModelMetadata) gives full shapes with `-1` for variable
//! dimensions: `dense` FP32 `[-1, n_dense]`, `sparse` INT64 `[-1, n_tables]`, `sparse_lengths`
//! INT32 `[n_tables, -1]`, `sparse_values` INT64 `[-1]` (and `sparse_weights` FP32 `[-1]` for
//! weighted tables); outputs `probability` and `logit` FP32 `[-1]`.
//!
//! The config (`.../config`, ModelConfig) is Triton's: `max_batch_size` > 0 with the batch
//! dimension implicit, so `dense` has dims `[n_dense]` and `sparse` `[n_tables]`; the jagged inputs
//! are `optional` and `allow_ragged_batch` with dims `[-1]` (their layout, table-major
//! `[n_tables, batch]` lengths, is in the config's `parameters`); outputs have dims `[]` (one
//! scalar per row, so a response's outputs have shape `[batch]`).

use crate::proto;
use crate::repository::Serving;
use crate::tensors::{Datatype, LOGIT, OUTPUTS, PROBABILITY, SPARSE, SPARSE_LENGTHS, Signature};
use crate::version::LoadedVersion;

/// Platform name reported for every model.
pub const PLATFORM: &str = "quantrec_dlrm";

/// Server name in the server metadata.
pub const SERVER_NAME: &str = "quantrec";

/// Protocol extensions the server supports.
pub const EXTENSIONS: [&str; 5] = [
    "binary_tensor_data",
    "model_repository",
    "statistics",
    "model_configuration",
    "schedule_policy",
];

/// One tensor of the metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorMeta {
    /// Name.
    pub name: &'static str,
    /// Element type.
    pub datatype: Datatype,
    /// Full shape, `-1` for variable dimensions.
    pub shape: Vec<i64>,
    /// Whether the input may be left out.
    pub optional: bool,
}

/// Inputs and outputs of a model.
pub fn tensors(sig: &Signature) -> (Vec<TensorMeta>, Vec<TensorMeta>) {
    let inputs = sig
        .inputs()
        .into_iter()
        .map(|(name, datatype, shape, optional)| TensorMeta {
            name,
            datatype,
            shape,
            optional,
        })
        .collect();
    let outputs = OUTPUTS
        .iter()
        .map(|&name| TensorMeta {
            name,
            datatype: Datatype::Fp32,
            shape: vec![-1],
            optional: false,
        })
        .collect();
    (inputs, outputs)
}

/// Versions of a model as strings, highest first.
pub fn version_list(s: &Serving) -> Vec<String> {
    s.versions.keys().rev().map(u64::to_string).collect()
}

/// The KServe v2 model metadata as JSON.
pub fn metadata_json(name: &str, versions: Vec<String>, v: &LoadedVersion) -> serde_json::Value {
    let (inputs, outputs) = tensors(&v.signature);
    let t = |m: &TensorMeta| serde_json::json!({"name": m.name, "datatype": m.datatype.name(), "shape": m.shape});
    serde_json::json!({
        "name": name,
        "versions": versions,
        "platform": PLATFORM,
        "inputs": inputs.iter().map(t).collect::<Vec<_>>(),
        "outputs": outputs.iter().map(t).collect::<Vec<_>>(),
    })
}

/// The KServe v2 model metadata as protobuf.
pub fn metadata_proto(
    name: &str,
    versions: Vec<String>,
    v: &LoadedVersion,
) -> proto::ModelMetadataResponse {
    let (inputs, outputs) = tensors(&v.signature);
    let t = |m: &TensorMeta| proto::model_metadata_response::TensorMetadata {
        name: m.name.into(),
        datatype: m.datatype.name().into(),
        shape: m.shape.clone(),
    };
    proto::ModelMetadataResponse {
        name: name.into(),
        versions,
        platform: PLATFORM.into(),
        inputs: inputs.iter().map(t).collect(),
        outputs: outputs.iter().map(t).collect(),
    }
}

/// Per-input config dims (batch dimension implicit) and ragged flag.
fn config_dims(m: &TensorMeta, sig: &Signature) -> (Vec<i64>, bool) {
    match m.name {
        "dense" => (vec![sig.n_dense as i64], false),
        SPARSE => (vec![sig.n_tables() as i64], false),
        _ => (vec![-1], true),
    }
}

/// Free-form parameters of the config.
fn parameters(v: &LoadedVersion) -> Vec<(&'static str, String)> {
    vec![
        (
            "sparse_layout",
            format!(
                "{SPARSE} INT64 [batch, {n}] one id per table, or {SPARSE_LENGTHS} INT32 [{n}, batch] + sparse_values INT64 table-major",
                n = v.signature.n_tables()
            ),
        ),
        (
            "outputs",
            format!("{PROBABILITY} and {LOGIT}, FP32 [batch]"),
        ),
        ("merges_requests", v.warm.mergeable.to_string()),
        (
            "table_rows",
            v.signature
                .table_rows
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
    ]
}

/// Triton's model config as JSON.
pub fn config_json(v: &LoadedVersion, s: &Serving, threads: usize) -> serde_json::Value {
    let (inputs, outputs) = tensors(&v.signature);
    let policy = match &s.config.version_policy {
        crate::config::VersionPolicy::Latest(n) => {
            serde_json::json!({"latest": {"num_versions": n}})
        }
        crate::config::VersionPolicy::Specific(vs) => {
            serde_json::json!({"specific": {"versions": vs}})
        }
        crate::config::VersionPolicy::All => serde_json::json!({"all": {}}),
    };
    let input = inputs
        .iter()
        .map(|m| {
            let (dims, ragged) = config_dims(m, &v.signature);
            serde_json::json!({
                "name": m.name,
                "data_type": m.datatype.triton_name(),
                "format": "FORMAT_NONE",
                "dims": dims,
                "is_shape_tensor": false,
                "allow_ragged_batch": ragged,
                "optional": m.optional,
            })
        })
        .collect::<Vec<_>>();
    let output = outputs
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "data_type": m.datatype.triton_name(),
                "dims": Vec::<i64>::new(),
                "label_filename": "",
                "is_shape_tensor": false,
            })
        })
        .collect::<Vec<_>>();
    let params: serde_json::Map<String, serde_json::Value> = parameters(v)
        .into_iter()
        .map(|(k, val)| (k.to_string(), serde_json::json!({"string_value": val})))
        .collect();
    serde_json::json!({
        "name": v.name(),
        "platform": PLATFORM,
        "backend": "quantrec",
        "version_policy": policy,
        "max_batch_size": v.limits.max_request_rows,
        "input": input,
        "output": output,
        "dynamic_batching": {
            "preferred_batch_size": [v.limits.max_batch],
            "max_queue_delay_microseconds": v.limits.max_delay.as_micros() as u64,
            "preserve_ordering": false,
            "default_queue_policy": {
                "timeout_action": "REJECT",
                "default_timeout_microseconds": 0,
                "allow_timeout_override": true,
                "max_queue_size": v.limits.queue,
            },
        },
        "instance_group": [{"name": format!("{}_cpu", v.name()), "kind": "KIND_CPU", "count": threads}],
        "default_model_filename": crate::repository::ARTIFACT,
        "parameters": params,
    })
}

/// Triton's model config as protobuf.
pub fn config_proto(v: &LoadedVersion, s: &Serving, threads: usize) -> proto::ModelConfig {
    use proto::model_version_policy::{All, Latest, PolicyChoice, Specific};
    let (inputs, outputs) = tensors(&v.signature);
    let policy = match &s.config.version_policy {
        crate::config::VersionPolicy::Latest(n) => {
            PolicyChoice::Latest(Latest { num_versions: *n })
        }
        crate::config::VersionPolicy::Specific(vs) => PolicyChoice::Specific(Specific {
            versions: vs.iter().map(|&x| x as i64).collect(),
        }),
        crate::config::VersionPolicy::All => PolicyChoice::All(All {}),
    };
    proto::ModelConfig {
        name: v.name().into(),
        platform: PLATFORM.into(),
        backend: "quantrec".into(),
        version_policy: Some(proto::ModelVersionPolicy {
            policy_choice: Some(policy),
        }),
        max_batch_size: v.limits.max_request_rows.min(i32::MAX as usize) as i32,
        input: inputs
            .iter()
            .map(|m| {
                let (dims, ragged) = config_dims(m, &v.signature);
                proto::ModelInput {
                    name: m.name.into(),
                    data_type: m.datatype.triton_enum(),
                    format: 0,
                    dims,
                    is_shape_tensor: false,
                    allow_ragged_batch: ragged,
                    optional: m.optional,
                }
            })
            .collect(),
        output: outputs
            .iter()
            .map(|m| proto::ModelOutput {
                name: m.name.into(),
                data_type: m.datatype.triton_enum(),
                dims: Vec::new(),
                label_filename: String::new(),
                is_shape_tensor: false,
            })
            .collect(),
        instance_group: vec![proto::ModelInstanceGroup {
            name: format!("{}_cpu", v.name()),
            count: threads.min(i32::MAX as usize) as i32,
            kind: proto::model_instance_group::Kind::Cpu as i32,
        }],
        default_model_filename: crate::repository::ARTIFACT.into(),
        scheduling_choice: Some(proto::model_config::SchedulingChoice::DynamicBatching(
            proto::ModelDynamicBatching {
                preferred_batch_size: vec![v.limits.max_batch.min(i32::MAX as usize) as i32],
                max_queue_delay_microseconds: v.limits.max_delay.as_micros() as u64,
                preserve_ordering: false,
                default_queue_policy: Some(proto::ModelQueuePolicy {
                    timeout_action: 0,
                    default_timeout_microseconds: 0,
                    allow_timeout_override: true,
                    max_queue_size: v.limits.queue.min(u32::MAX as usize) as u32,
                }),
            },
        )),
        parameters: parameters(v)
            .into_iter()
            .map(|(k, val)| (k.to_string(), proto::ModelParameter { string_value: val }))
            .collect(),
    }
}
