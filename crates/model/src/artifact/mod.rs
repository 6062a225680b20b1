//! The model artifact: one safetensors file holding every tensor in its stored precision, plus a
//! versioned JSON description under `__metadata__["quantrec"]`.
//!
//! Tensors (names independent of the source convention):
//! - `bottom.{i}.weight`, `top.{i}.weight`, `cross.{l}.v.weight`, `cross.{l}.w.weight`: `[out, in]`,
//!   F32 / F16 / BF16 for those precisions; for int8 layers I8 codes plus `<name>.weight_scale` F32
//!   (`[out]` per channel, `[1]` per tensor), value = code · scale, codes in −128..=127 with
//!   scale = max(max|w| / 127.5, f32::EPSILON) (PyTorch's symmetric weight observer, which is how
//!   the int8 kernels quantize). Loading packs the stored codes as they are, so a loaded model
//!   runs exactly the codes in the file.
//! - `bottom.{i}.bias`, `top.{i}.bias`, `cross.{l}.w.bias`: F32 `[out]`.
//! - `tables.{t}`: F32 / F16 / BF16 `[rows, dim]`, or for fused formats U8 `[rows, row_bytes]` in
//!   FBGEMM's byte layout (codes, then scale and bias).
//! - A table in frequency tiers (the plan's `tiers`, [`crate::tiers`]) has no `tables.{t}`, but
//!   `tables.{t}.tier{k}` for each tier `k` (hottest first; each laid out like a `tables.{t}` of
//!   its format and rows) and `tables.{t}.remap`: I16 or I32 `[rows]`, original id → row of the
//!   concatenated tiers, -1 = pruned (the zero row).
//!
//! Loading memory-maps the file: tables stay in the mapping and page in on demand; dense layers are
//! decoded and packed for the running CPU (so the file assumes no ISA). Every inconsistency is a
//! typed error.

mod read;
mod write;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use quantrec_kernels::formats::TableFormat;

use crate::config::ModelConfig;
use crate::model::Model;
use crate::plan::Plan;
use crate::tables::StoredTable;
use crate::weights::{CrossLayer, Linear, TableData, Weights};
use crate::{ModelError, Result};

pub use write::{quantize_int8, save, to_bytes};

/// The tensor of tier `k` of table `t`.
pub fn tier_tensor_name(t: usize, k: usize) -> String {
    format!("tables.{t}.tier{k}")
}

/// The remap tensor of tiered table `t`.
pub fn remap_tensor_name(t: usize) -> String {
    format!("tables.{t}.remap")
}

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
    /// Dense layers as stored (reduced precisions widened to f32, int8 as `code · scale`).
    bottom: Vec<Linear>,
    cross: Vec<CrossLayer>,
    top: Vec<Linear>,
}

#[derive(Debug, Clone)]
pub(crate) enum Backing {
    Mapped(Arc<memmap2::Mmap>),
    Owned(Arc<Vec<u8>>),
}

impl Backing {
    pub(crate) fn bytes(&self) -> &[u8] {
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

pub(crate) fn data_digest<'a>(tensors: impl Iterator<Item = (&'a str, &'a [u8])>) -> String {
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

/// The safetensors dtype and shape a table is stored with.
pub fn table_tensor_shape(format: TableFormat, rows: usize, dim: usize) -> (Dtype, Vec<usize>) {
    match format {
        TableFormat::F32 => (Dtype::F32, vec![rows, dim]),
        TableFormat::F16 => (Dtype::F16, vec![rows, dim]),
        TableFormat::Bf16 => (Dtype::BF16, vec![rows, dim]),
        _ => (Dtype::U8, vec![rows, format.row_bytes(dim)]),
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
    /// Recomputes the data digest (reads every byte, paging in all tables) and compares it with
    /// the one stored at save time.
    pub fn verify(&self) -> Result<()> {
        let buf = self.backing.bytes();
        let st =
            SafeTensors::deserialize(buf).map_err(|e| ModelError::safetensors("artifact", e))?;
        let digest = data_digest(st.iter().map(|(n, t)| (n, t.data())));
        if digest != self.meta.data_sha256 {
            return Err(ModelError::ArtifactDigest {
                file: "data".into(),
                computed: digest,
                recorded: self.meta.data_sha256.clone(),
            });
        }
        Ok(())
    }
}

impl Artifact {
    /// The parameters as stored, e.g. to quantize an f32 artifact under a new plan: dense layers in
    /// f32 (values of reduced-precision layers are their stored values widened, `code · scale` for
    /// int8), f32 tables decoded, other tables as their stored bytes ([`TableData::Encoded`]).
    /// Re-quantizing `code · scale` to int8 does not in general give back the same codes (the
    /// observer's scale depends on the largest code, ±127 or −128), so for int8 layers use
    /// [`Artifact::model`], which runs the stored codes exactly.
    pub fn weights(&self) -> Weights {
        let tables = self
            .model
            .tables()
            .iter()
            .map(|t: &StoredTable| {
                let bytes = t.bytes.as_slice();
                if let Some(tiers) = &t.tiers {
                    TableData::Tiered(tiers.to_data())
                } else if t.format == TableFormat::F32 {
                    TableData::F32(
                        bytes
                            .chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                            .collect(),
                    )
                } else {
                    TableData::Encoded {
                        format: t.format,
                        bytes: bytes.to_vec(),
                    }
                }
            })
            .collect();
        Weights {
            bottom: self.bottom.clone(),
            tables,
            table_names: self.meta.table_names.clone(),
            cross: self.cross.clone(),
            top: self.top.clone(),
        }
    }
}

impl Model {
    /// Loads an artifact file (memory-mapped); see [`Artifact::load`] for the metadata too.
    pub fn load(path: &Path) -> Result<Model> {
        Ok(Artifact::load(path)?.model)
    }
}
