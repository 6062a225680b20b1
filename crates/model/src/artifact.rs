//! The model artifact: one safetensors file holding every tensor in its stored precision, plus a
//! versioned JSON description under `__metadata__["quantrec"]`.
//!
//! Tensors (names independent of the source convention):
//! - `bottom.{i}.weight`, `top.{i}.weight`, `cross.{l}.v.weight`, `cross.{l}.w.weight`: `[out, in]`,
//!   F32 / F16 / BF16 for those precisions; for int8 layers I8 codes plus `<name>.weight_scale` F32
//!   (`[out]` per channel, `[1]` per tensor), value = code · scale, codes in −127..=127 with
//!   scale = max|w| / 127 (what the int8 kernels use).
//! - `bottom.{i}.bias`, `top.{i}.bias`, `cross.{l}.w.bias`: F32 `[out]`.
//! - `tables.{t}`: F32 / F16 / BF16 `[rows, dim]`, or for fused formats U8 `[rows, row_bytes]` in
//!   FBGEMM's byte layout (codes, then scale and bias).
//!
//! Loading memory-maps the file: tables stay in the mapping and page in on demand; dense layers are
//! decoded and packed for the running CPU (so the file assumes no ISA). Every inconsistency is a
//! typed error.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use quantrec_kernels::formats::TableFormat;

use crate::config::ModelConfig;
use crate::model::Model;
use crate::plan::{LayerPrecision, Plan};
use crate::state_dict::RawTensor;
use crate::tables::{StoredTable, TableBytes, encode_table};
use crate::weights::{CrossLayer, Linear, TableData, Weights};
use crate::{ModelError, Result};

/// The artifact format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The `__metadata__` key holding the JSON description.
pub const METADATA_KEY: &str = "quantrec";

/// Where a model came from and how it was quantized. Optional fields are absent when unknown.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The state dict or artifact it was made from.
    #[serde(default)]
    pub source_file: Option<String>,
    /// SHA-256 of that file, lowercase hex.
    #[serde(default)]
    pub source_sha256: Option<String>,
    /// How static activation ranges were calibrated (data, samples, range rule).
    #[serde(default)]
    pub calibration: Option<String>,
    /// Normalized entropy of the quantized model on the evaluation set at quantization time.
    #[serde(default)]
    pub ne: Option<f64>,
    /// Normalized entropy of the f32 reference on the same set.
    #[serde(default)]
    pub ne_reference: Option<f64>,
    /// Free-form notes (e.g. the command line).
    #[serde(default)]
    pub notes: Option<String>,
}

/// What the artifact assumes about the CPU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IsaInfo {
    /// Whether the stored tensors depend on the ISA (false: dense layers are packed at load).
    pub packed_for_isa: bool,
    /// `quantrec_kernels::isa::describe()` of the machine that wrote the file.
    pub written_on: String,
}

/// Quantization details of one int8 or reduced-precision layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerQuant {
    /// The plan's short name (`int8-dyn/pc`, `f16`, ...).
    pub precision: String,
    /// How weights were mapped to the stored type.
    pub scheme: String,
    /// Weights that had to saturate (f16 beyond ±65504).
    #[serde(default)]
    pub saturated: usize,
}

/// The JSON stored under `__metadata__["quantrec"]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    /// Must equal [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The architecture.
    pub config: ModelConfig,
    /// The precision plan.
    pub plan: Plan,
    /// Source names of the tables.
    #[serde(default)]
    pub table_names: Vec<String>,
    /// Per reduced-precision layer (by tensor prefix), how its weights were stored.
    #[serde(default)]
    pub quantization: BTreeMap<String, LayerQuant>,
    /// Where the model came from.
    #[serde(default)]
    pub provenance: Provenance,
    /// The quantrec version that wrote the file.
    pub quantrec_version: String,
    /// CPU assumptions.
    pub isa: IsaInfo,
    /// SHA-256 over every tensor's name and bytes in name order (checked by [`Artifact::verify`]).
    pub data_sha256: String,
}

/// A loaded artifact: the model and its metadata.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The model, ready to predict.
    pub model: Model,
    /// The description read from the file.
    pub meta: ArtifactMeta,
    /// Total file size in bytes.
    pub file_bytes: usize,
    /// Bytes of each tensor as stored.
    pub tensor_bytes: BTreeMap<String, usize>,
    backing: Backing,
}

#[derive(Debug, Clone)]
enum Backing {
    Mapped(Arc<memmap2::Mmap>),
    Owned(Arc<Vec<u8>>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn data_digest<'a>(tensors: impl Iterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut sorted: Vec<_> = tensors.collect();
    sorted.sort_by_key(|(n, _)| *n);
    let mut h = Sha256::new();
    for (n, b) in sorted {
        h.update((n.len() as u64).to_le_bytes());
        h.update(n.as_bytes());
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    }
    hex(&h.finalize())
}

/// Symmetric int8 codes and scales, exactly as the int8 kernels quantize (`scale = max|w| / 127`,
/// 1 for an all-zero row, codes rounded to nearest even).
pub fn quantize_int8(w: &[f32], n: usize, k: usize, per_channel: bool) -> (Vec<i8>, Vec<f32>) {
    let amax = |s: &[f32]| s.iter().fold(0f32, |a, v| a.max(v.abs()));
    let raw: Vec<f32> = if per_channel {
        (0..n).map(|j| amax(&w[j * k..(j + 1) * k])).collect()
    } else {
        vec![amax(w)]
    };
    let scales: Vec<f32> = raw
        .into_iter()
        .map(|a| if a > 0.0 { a / 127.0 } else { 1.0 })
        .collect();
    let mut q = vec![0i8; n * k];
    for j in 0..n {
        let s = if per_channel { scales[j] } else { scales[0] };
        for p in 0..k {
            q[j * k + p] = (w[j * k + p] / s).round_ties_even().clamp(-127.0, 127.0) as i8;
        }
    }
    (q, scales)
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
            let (q, scales) = quantize_int8(&l.weight, l.out, l.inp, per_channel);
            out.insert(
                format!("{prefix}.weight_scale"),
                raw(Dtype::F32, vec![scales.len()], f32_bytes(&scales)),
            );
            (
                raw(Dtype::I8, shape, q.iter().map(|&c| c as u8).collect()),
                Some(if per_channel {
                    "symmetric s8 codes in -127..=127, one scale = max|w|/127 per output channel"
                } else {
                    "symmetric s8 codes in -127..=127, one scale = max|w|/127 per tensor"
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
        let bytes = match data {
            TableData::F32(v) => encode_table(t, format, tc.rows, tc.dim, v)?,
            TableData::Encoded { format: f, bytes } if *f == format => bytes.clone(),
            TableData::Encoded { format: f, .. } => {
                return Err(ModelError::Plan(format!(
                    "table {t} is supplied encoded as {f} but the plan stores it as {format}"
                )));
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

/// Writes an artifact file.
pub fn save(
    path: &Path,
    config: &ModelConfig,
    weights: &Weights,
    plan: &Plan,
    provenance: &Provenance,
) -> Result<()> {
    let bytes = to_bytes(config, weights, plan, provenance)?;
    std::fs::write(path, bytes).map_err(|e| ModelError::io(path, e))
}

/// The safetensors dtype and shape a table is stored with.
pub fn table_tensor_shape(format: TableFormat, rows: usize, dim: usize) -> (Dtype, Vec<usize>) {
    match format {
        TableFormat::F32 => (Dtype::F32, vec![rows, dim]),
        TableFormat::F16 => (Dtype::F16, vec![rows, dim]),
        TableFormat::Bf16 => (Dtype::BF16, vec![rows, dim]),
        _ => (Dtype::U8, vec![rows, format.row_bytes(dim)]),
    }
}

/// Reads tensors of a parsed file by name, checking dtype and shape.
struct Reader<'a> {
    what: &'a str,
    st: SafeTensors<'a>,
    /// Start of the data section in the whole buffer.
    data_start: usize,
    buf: &'a [u8],
    used: Vec<String>,
}

impl<'a> Reader<'a> {
    fn bad(&self, reason: String) -> ModelError {
        ModelError::Artifact {
            what: self.what.into(),
            reason,
        }
    }

    /// The bytes of `name` after checking its dtype and shape.
    fn get(&mut self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<&'a [u8]> {
        let t = self
            .st
            .tensor(name)
            .map_err(|_| self.bad(format!("tensor {name} is missing")))?;
        if t.dtype() != dtype || t.shape() != shape {
            return Err(self.bad(format!(
                "tensor {name} is {:?} {:?}, expected {dtype:?} {shape:?}",
                t.dtype(),
                t.shape()
            )));
        }
        self.used.push(name.to_string());
        Ok(t.data())
    }

    fn f32s(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let b = self.get(name, Dtype::F32, shape)?;
        let v: Vec<f32> = b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(ModelError::NonFinite {
                name: name.into(),
                index: i,
                value: v[i],
            });
        }
        Ok(v)
    }

    /// A dense layer stored in precision `p`.
    fn layer(
        &mut self,
        prefix: &str,
        out: usize,
        inp: usize,
        bias: bool,
        p: LayerPrecision,
    ) -> Result<Linear> {
        let wname = format!("{prefix}.weight");
        let shape = [out, inp];
        let weight: Vec<f32> = match p {
            LayerPrecision::F32 => self.f32s(&wname, &shape)?,
            LayerPrecision::F16 => self
                .get(&wname, Dtype::F16, &shape)?
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            LayerPrecision::Bf16 => self
                .get(&wname, Dtype::BF16, &shape)?
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            LayerPrecision::Int8 { per_channel, .. } => {
                let codes = self.get(&wname, Dtype::I8, &shape)?;
                let sname = format!("{prefix}.weight_scale");
                let scales = self.f32s(&sname, &[if per_channel { out } else { 1 }])?;
                if let Some(s) = scales.iter().find(|&&s| s <= 0.0) {
                    return Err(self.bad(format!("{sname} holds the scale {s}, must be > 0")));
                }
                codes
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| {
                        let s = if per_channel {
                            scales[i / inp]
                        } else {
                            scales[0]
                        };
                        f32::from(c as i8) * s
                    })
                    .collect()
            }
        };
        if let Some(i) = weight.iter().position(|x| !x.is_finite()) {
            return Err(ModelError::NonFinite {
                name: wname,
                index: i,
                value: weight[i],
            });
        }
        let bias = if bias {
            self.f32s(&format!("{prefix}.bias"), &[out])?
        } else {
            vec![0.0; out]
        };
        Ok(Linear {
            out,
            inp,
            weight,
            bias,
        })
    }
}

impl Artifact {
    /// Memory-maps and loads an artifact file.
    pub fn load(path: &Path) -> Result<Artifact> {
        let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
        // SAFETY: the file is opened read-only and the mapping is only read. The usual caveat of
        // file mappings applies: another process truncating or rewriting the file while it is
        // mapped is undefined behaviour, which is why artifacts are written to a new file and
        // never modified in place.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))?;
        Artifact::parse(&path.display().to_string(), Backing::Mapped(Arc::new(map)))
    }

    /// Loads an artifact from bytes in memory (tables are copied out of them).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Artifact> {
        Artifact::parse("<memory>", Backing::Owned(Arc::new(bytes)))
    }

    fn parse(what: &str, backing: Backing) -> Result<Artifact> {
        let buf = backing.bytes();
        let bad = |reason: String| ModelError::Artifact {
            what: what.into(),
            reason,
        };
        let (n, header) =
            SafeTensors::read_metadata(buf).map_err(|e| ModelError::safetensors(what, e))?;
        let json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(METADATA_KEY))
            .ok_or_else(|| {
                bad(format!(
                    "no __metadata__[\"{METADATA_KEY}\"]: not a quantrec artifact"
                ))
            })?;
        let version: serde_json::Value =
            serde_json::from_str(json).map_err(|source| ModelError::Json {
                what: format!("{what}: artifact metadata"),
                source,
            })?;
        match version
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
        {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(ModelError::ArtifactVersion {
                    what: what.into(),
                    found: u32::try_from(v).unwrap_or(u32::MAX),
                    supported: FORMAT_VERSION,
                });
            }
            None => return Err(bad("the metadata has no integer format_version".into())),
        }
        let meta: ArtifactMeta =
            serde_json::from_value(version).map_err(|source| ModelError::Json {
                what: format!("{what}: artifact metadata"),
                source,
            })?;
        let config = &meta.config;
        config
            .validate()
            .map_err(|e| bad(format!("stored config: {e}")))?;
        meta.plan
            .validate(config)
            .map_err(|e| bad(format!("stored plan: {e}")))?;
        if !meta.table_names.is_empty() && meta.table_names.len() != config.tables.len() {
            return Err(bad(format!(
                "{} table names for {} tables",
                meta.table_names.len(),
                config.tables.len()
            )));
        }
        let st = SafeTensors::deserialize(buf).map_err(|e| ModelError::safetensors(what, e))?;
        let mut r = Reader {
            what,
            st,
            data_start: 8 + n,
            buf,
            used: Vec::new(),
        };
        let plan = &meta.plan;
        let bottom = config
            .bottom_shapes()
            .into_iter()
            .zip(&plan.bottom)
            .enumerate()
            .map(|(i, ((o, k), &p))| r.layer(&format!("bottom.{i}"), o, k, true, p))
            .collect::<Result<Vec<_>>>()?;
        let top = config
            .top_shapes()
            .into_iter()
            .zip(&plan.top)
            .enumerate()
            .map(|(i, ((o, k), &p))| r.layer(&format!("top.{i}"), o, k, true, p))
            .collect::<Result<Vec<_>>>()?;
        let width = config.concat_width();
        let rank = match config.interaction {
            crate::config::Interaction::Dcn { rank, .. } => rank,
            _ => 0,
        };
        let mut cross = Vec::new();
        for (l, p) in plan.cross.iter().enumerate() {
            let v = r.layer(&format!("cross.{l}.v"), rank, width, false, p.v)?;
            let w = r.layer(&format!("cross.{l}.w"), width, rank, true, p.w)?;
            cross.push(CrossLayer {
                v: v.weight,
                w: w.weight,
                bias: w.bias,
            });
        }
        let mut tables = Vec::with_capacity(config.tables.len());
        for (t, (tc, &format)) in config.tables.iter().zip(&plan.tables).enumerate() {
            let (dtype, shape) = table_tensor_shape(format, tc.rows, tc.dim);
            let name = format!("tables.{t}");
            let data = r.get(&name, dtype, &shape)?;
            let start = data.as_ptr() as usize - r.buf.as_ptr() as usize;
            debug_assert!(start >= r.data_start);
            let bytes = match &backing {
                Backing::Mapped(m) => TableBytes::Mapped {
                    map: Arc::clone(m),
                    start,
                    len: data.len(),
                },
                Backing::Owned(_) => TableBytes::Owned(data.to_vec()),
            };
            tables.push(StoredTable::new(format, tc.rows, tc.dim, bytes)?);
        }
        let mut tensor_bytes = BTreeMap::new();
        for (name, t) in r.st.iter() {
            if !r.used.iter().any(|u| u == name) {
                return Err(bad(format!(
                    "unexpected tensor {name}: the stored config and plan do not use it"
                )));
            }
            tensor_bytes.insert(name.to_string(), t.data().len());
        }
        let model = Model::assemble(
            meta.config.clone(),
            meta.plan.clone(),
            meta.table_names.clone(),
            &bottom,
            &cross,
            &top,
            tables,
        )?;
        let file_bytes = buf.len();
        Ok(Artifact {
            model,
            meta,
            file_bytes,
            tensor_bytes,
            backing,
        })
    }

    /// Recomputes the data digest (reads every byte, paging in all tables) and compares it with
    /// the one stored at save time.
    pub fn verify(&self) -> Result<()> {
        let buf = self.backing.bytes();
        let st =
            SafeTensors::deserialize(buf).map_err(|e| ModelError::safetensors("artifact", e))?;
        let digest = data_digest(st.iter().map(|(n, t)| (n, t.data())));
        if digest != self.meta.data_sha256 {
            return Err(ModelError::Artifact {
                what: "data".into(),
                reason: format!(
                    "tensor bytes hash to {digest}, the metadata records {}",
                    self.meta.data_sha256
                ),
            });
        }
        Ok(())
    }
}

impl Model {
    /// Loads an artifact file (memory-mapped); see [`Artifact::load`] for the metadata too.
    pub fn load(path: &Path) -> Result<Model> {
        Ok(Artifact::load(path)?.model)
    }
}
