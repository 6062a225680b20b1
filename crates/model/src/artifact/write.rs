//! Writing artifacts: every tensor converted to its planned precision, metadata, digest.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use half::{bf16, f16};
use quantrec_kernels::gemm::int8::quantize_weights;
use safetensors::Dtype;

use super::{
    ArtifactMeta, FORMAT_VERSION, IsaInfo, LayerQuant, METADATA_KEY, Provenance, data_digest,
    remap_tensor_name, table_tensor_shape, tier_tensor_name,
};
use crate::config::ModelConfig;
use crate::plan::{LayerPrecision, Plan};
use crate::state_dict::RawTensor;
use crate::tables::encode_planned_table;
use crate::weights::{Linear, TableData, Weights};
use crate::{ModelError, Result};

/// Symmetric int8 codes (row-major `n×k`) and scales (`n` per channel, else 1), exactly as the
/// int8 kernels quantize: this is [`quantize_weights`], PyTorch's weight observer
/// (`scale = max(max|w| / 127.5, f32::EPSILON)`, codes rounded to nearest even in −128..=127).
pub fn quantize_int8(w: &[f32], n: usize, k: usize, per_channel: bool) -> (Vec<i8>, Vec<f32>) {
    quantize_weights(w, n, k, per_channel)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn raw(dtype: Dtype, shape: Vec<usize>, bytes: Vec<u8>) -> RawTensor {
    RawTensor {
        dtype,
        shape,
        bytes,
    }
}

/// Adds the tensors of one dense layer stored in precision `p`.
fn put_layer(
    out: &mut BTreeMap<String, RawTensor>,
    quant: &mut BTreeMap<String, LayerQuant>,
    prefix: &str,
    l: &Linear,
    bias: bool,
    p: LayerPrecision,
) {
    let shape = vec![l.out, l.inp];
    let wname = format!("{prefix}.weight");
    let mut saturated = 0;
    let (tensor, scheme) = match p {
        LayerPrecision::F32 => (raw(Dtype::F32, shape, f32_bytes(&l.weight)), None),
        LayerPrecision::F16 => {
            let bytes = l
                .weight
                .iter()
                .flat_map(|&v| {
                    if v.abs() > 65504.0 {
                        saturated += 1;
                    }
                    f16::from_f32(v.clamp(-65504.0, 65504.0)).to_le_bytes()
                })
                .collect();
            (
                raw(Dtype::F16, shape, bytes),
                Some("IEEE f16, round to nearest even, saturating at ±65504"),
            )
        }
        LayerPrecision::Bf16 => {
            let bytes = l
                .weight
                .iter()
                .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
                .collect();
            (
                raw(Dtype::BF16, shape, bytes),
                Some("bfloat16, round to nearest even"),
            )
        }
        LayerPrecision::Int8 { per_channel, .. } => {
            let (q, scales) = quantize_weights(&l.weight, l.out, l.inp, per_channel);
            out.insert(
                format!("{prefix}.weight_scale"),
                raw(Dtype::F32, vec![scales.len()], f32_bytes(&scales)),
            );
            (
                raw(Dtype::I8, shape, q.iter().map(|&c| c as u8).collect()),
                Some(if per_channel {
                    "symmetric s8 codes in -128..=127, one scale = max(max|w|/127.5, eps) per output channel (PyTorch's per-channel symmetric observer)"
                } else {
                    "symmetric s8 codes in -128..=127, one scale = max(max|w|/127.5, eps) per tensor (PyTorch's per-tensor symmetric observer)"
                }),
            )
        }
    };
    out.insert(wname, tensor);
    if bias {
        out.insert(
            format!("{prefix}.bias"),
            raw(Dtype::F32, vec![l.out], f32_bytes(&l.bias)),
        );
    }
    if let Some(scheme) = scheme {
        quant.insert(
            prefix.to_string(),
            LayerQuant {
                precision: p.short_name(),
                scheme: scheme.into(),
                saturated,
            },
        );
    }
}

/// Serializes a model (f32 weights, or pre-encoded tables) under `plan` into artifact bytes.
pub fn to_bytes(
    config: &ModelConfig,
    weights: &Weights,
    plan: &Plan,
    provenance: &Provenance,
) -> Result<Vec<u8>> {
    weights.check(config)?;
    plan.validate(config)?;
    let mut tensors = BTreeMap::new();
    let mut quant = BTreeMap::new();
    for (i, (l, &p)) in weights.bottom.iter().zip(&plan.bottom).enumerate() {
        put_layer(&mut tensors, &mut quant, &format!("bottom.{i}"), l, true, p);
    }
    for (i, (l, &p)) in weights.top.iter().zip(&plan.top).enumerate() {
        put_layer(&mut tensors, &mut quant, &format!("top.{i}"), l, true, p);
    }
    let width = config.concat_width();
    for (i, (c, p)) in weights.cross.iter().zip(&plan.cross).enumerate() {
        let rank = c.v.len() / width;
        let v = Linear {
            out: rank,
            inp: width,
            weight: c.v.clone(),
            bias: Vec::new(),
        };
        let w = Linear {
            out: width,
            inp: rank,
            weight: c.w.clone(),
            bias: c.bias.clone(),
        };
        put_layer(
            &mut tensors,
            &mut quant,
            &format!("cross.{i}.v"),
            &v,
            false,
            p.v,
        );
        put_layer(
            &mut tensors,
            &mut quant,
            &format!("cross.{i}.w"),
            &w,
            true,
            p.w,
        );
    }
    for (t, (data, tc)) in weights.tables.iter().zip(&config.tables).enumerate() {
        let format = plan.tables[t];
        if let (Some(tiers), TableData::Tiered(d)) = (plan.tiers_of(t), data) {
            d.check(t, tc.rows, tc.dim, tiers)?;
            for (k, tier) in d.tiers.iter().enumerate() {
                let (dtype, shape) = table_tensor_shape(tier.format, tier.rows, tc.dim);
                tensors.insert(
                    tier_tensor_name(t, k),
                    raw(dtype, shape, tier.bytes.clone()),
                );
            }
            let dtype = if d.remap.entry_bytes() == 2 {
                Dtype::I16
            } else {
                Dtype::I32
            };
            tensors.insert(
                remap_tensor_name(t),
                raw(dtype, vec![tc.rows], d.remap.to_le_bytes()),
            );
            continue;
        }
        let bytes = match data {
            TableData::F32(v) => encode_planned_table(plan, t, tc.rows, tc.dim, v)?,
            TableData::Encoded { format: f, bytes } if *f == format => bytes.clone(),
            TableData::Encoded { format: f, .. } => {
                return Err(ModelError::TableFormatMismatch {
                    table: t,
                    supplied: *f,
                    planned: format,
                });
            }
            TableData::Tiered(_) => {
                return Err(ModelError::TierData {
                    table: t,
                    reason: "supplied in tiers the plan does not have".into(),
                });
            }
        };
        let (dtype, shape) = table_tensor_shape(format, tc.rows, tc.dim);
        tensors.insert(format!("tables.{t}"), raw(dtype, shape, bytes));
    }
    let meta = ArtifactMeta {
        format_version: FORMAT_VERSION,
        config: config.clone(),
        plan: plan.clone(),
        table_names: weights.table_names.clone(),
        quantization: quant,
        provenance: provenance.clone(),
        quantrec_version: env!("CARGO_PKG_VERSION").into(),
        isa: IsaInfo {
            packed_for_isa: false,
            written_on: quantrec_kernels::isa::describe(),
        },
        data_sha256: data_digest(tensors.iter().map(|(n, t)| (n.as_str(), &t.bytes[..]))),
    };
    let json = serde_json::to_string(&meta).map_err(|source| ModelError::Json {
        what: "artifact metadata".into(),
        source,
    })?;
    let md = HashMap::from([(METADATA_KEY.to_string(), json)]);
    safetensors::serialize(tensors, Some(md)).map_err(|e| ModelError::safetensors("artifact", e))
}

/// Writes an artifact file: to a temporary file beside it, then renamed over `path`, so a file
/// another process has memory-mapped is replaced, never rewritten in place.
pub fn save(
    path: &Path,
    config: &ModelConfig,
    weights: &Weights,
    plan: &Plan,
    provenance: &Provenance,
) -> Result<()> {
    let bytes = to_bytes(config, weights, plan, provenance)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| ModelError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ModelError::io(path, e)
    })
}
