//! Reading artifacts: header and metadata checks, tensors checked against the stored config and
//! plan, dense layers decoded for packing, tables left in the mapping.

use std::collections::BTreeMap;
use std::sync::Arc;

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};

use super::{
    Artifact, ArtifactMeta, Backing, FORMAT_VERSION, METADATA_KEY, remap_tensor_name,
    table_tensor_shape, tier_tensor_name,
};
use quantrec_kernels::gemm::{PackedLinear, Precision};

use crate::model::{Model, PackedCross, pack};
use crate::plan::LayerPrecision;
use crate::tables::{StoredTable, TableBytes};
use crate::tiers::{Remap, Tiers};
use crate::weights::{CrossLayer, Linear};
use crate::{ModelError, Result};

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
    /// The bytes of `name` after checking its dtype and shape.
    fn get(&mut self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<&'a [u8]> {
        let t = self
            .st
            .tensor(name)
            .map_err(|_| ModelError::ArtifactTensorMissing {
                file: self.what.into(),
                tensor: name.into(),
                dtype,
                shape: shape.to_vec(),
            })?;
        if t.dtype() != dtype || t.shape() != shape {
            return Err(ModelError::ArtifactTensor {
                file: self.what.into(),
                tensor: name.into(),
                expected_dtype: dtype,
                expected_shape: shape.to_vec(),
                found_dtype: t.dtype(),
                found_shape: t.shape().to_vec(),
            });
        }
        self.used.push(name.to_string());
        Ok(t.data())
    }

    /// A table tensor's bytes: a range of the mapping, or a copy held in memory.
    fn table_bytes(
        &mut self,
        name: &str,
        dtype: Dtype,
        shape: &[usize],
        backing: &Backing,
    ) -> Result<TableBytes> {
        let data = self.get(name, dtype, shape)?;
        let start = data.as_ptr() as usize - self.buf.as_ptr() as usize;
        debug_assert!(start >= self.data_start);
        Ok(match backing {
            Backing::Mapped(m) => TableBytes::Mapped {
                map: Arc::clone(m),
                start,
                len: data.len(),
            },
            Backing::Owned(_) => TableBytes::in_memory(data.to_vec())?,
        })
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

    /// A dense layer stored in precision `p`: its values widened to f32, and the layer packed for
    /// the kernels from what is stored (int8 layers run exactly the stored codes and scales; f16
    /// and bf16 values widen and narrow back exactly).
    fn layer(
        &mut self,
        prefix: &str,
        out: usize,
        inp: usize,
        bias: bool,
        p: LayerPrecision,
    ) -> Result<(Linear, PackedLinear)> {
        let mut int8: Option<(Vec<i8>, Vec<f32>)> = None;
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
                if let Some(&scale) = scales.iter().find(|&&s| s <= 0.0) {
                    return Err(ModelError::ArtifactScale {
                        file: self.what.into(),
                        tensor: sname,
                        scale,
                    });
                }
                let codes: Vec<i8> = codes.iter().map(|&c| c as i8).collect();
                let values = codes
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| {
                        let s = if per_channel {
                            scales[i / inp.max(1)]
                        } else {
                            scales[0]
                        };
                        f32::from(c) * s
                    })
                    .collect();
                int8 = Some((codes, scales));
                values
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
        let linear = Linear {
            out,
            inp,
            weight,
            bias,
        };
        let packed = match (int8, p.to_kernel()) {
            (Some((codes, scales)), Precision::Int8(spec)) => {
                PackedLinear::from_int8_codes(&codes, &scales, Some(&linear.bias), out, inp, spec)
                    .map_err(|source| ModelError::ArtifactPack {
                    file: self.what.into(),
                    layer: prefix.into(),
                    source: Box::new(source),
                })?
            }
            _ => pack(&linear, p, prefix)?,
        };
        Ok((linear, packed))
    }
}

impl Artifact {
    pub(super) fn parse(what: &str, backing: Backing) -> Result<Artifact> {
        let buf = backing.bytes();
        let (n, header) =
            SafeTensors::read_metadata(buf).map_err(|e| ModelError::safetensors(what, e))?;
        let json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(METADATA_KEY))
            .ok_or_else(|| ModelError::NotAnArtifact {
                file: what.into(),
                key: METADATA_KEY,
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
            None => return Err(ModelError::ArtifactNoVersion { file: what.into() }),
        }
        let meta: ArtifactMeta =
            serde_json::from_value(version).map_err(|source| ModelError::Json {
                what: format!("{what}: artifact metadata"),
                source,
            })?;
        let config = &meta.config;
        let stored = |part: &'static str| {
            move |e: ModelError| ModelError::ArtifactMeta {
                file: what.into(),
                part,
                source: Box::new(e),
            }
        };
        config.validate().map_err(stored("config"))?;
        meta.plan.validate(config).map_err(stored("plan"))?;
        if !meta.table_names.is_empty() && meta.table_names.len() != config.tables.len() {
            return Err(ModelError::ArtifactTableNames {
                file: what.into(),
                expected: config.tables.len(),
                found: meta.table_names.len(),
            });
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
            .collect::<Result<(Vec<_>, Vec<_>)>>()?;
        let top = config
            .top_shapes()
            .into_iter()
            .zip(&plan.top)
            .enumerate()
            .map(|(i, ((o, k), &p))| r.layer(&format!("top.{i}"), o, k, true, p))
            .collect::<Result<(Vec<_>, Vec<_>)>>()?;
        let width = config.concat_width();
        let rank = match config.interaction {
            crate::config::Interaction::Dcn { rank, .. } => rank,
            _ => 0,
        };
        let mut cross = Vec::new();
        let mut packed_cross = Vec::new();
        for (l, p) in plan.cross.iter().enumerate() {
            let (v, pv) = r.layer(&format!("cross.{l}.v"), rank, width, false, p.v)?;
            let (w, pw) = r.layer(&format!("cross.{l}.w"), width, rank, true, p.w)?;
            cross.push(CrossLayer {
                v: v.weight,
                w: w.weight,
                bias: w.bias,
            });
            packed_cross.push(PackedCross { v: pv, w: pw });
        }
        let mut tables = Vec::with_capacity(config.tables.len());
        for (t, (tc, &format)) in config.tables.iter().zip(&plan.tables).enumerate() {
            if let Some(tiers) = plan.tiers_of(t) {
                let mut subs = Vec::with_capacity(tiers.levels.len());
                for (k, level) in tiers.levels.iter().enumerate() {
                    let (dtype, shape) = table_tensor_shape(level.format, level.rows, tc.dim);
                    let bytes = r.table_bytes(&tier_tensor_name(t, k), dtype, &shape, &backing)?;
                    subs.push(StoredTable::new(level.format, level.rows, tc.dim, bytes)?);
                }
                let width = tiers.remap_entry_bytes();
                let dtype = if width == 2 { Dtype::I16 } else { Dtype::I32 };
                let remap =
                    Remap::from_le_bytes(r.get(&remap_tensor_name(t), dtype, &[tc.rows])?, width);
                let stored = Tiers::new(t, tc.rows, tc.dim, tiers, subs, remap)?;
                tables.push(crate::tiers::stored(format, tc.rows, tc.dim, stored));
                continue;
            }
            let (dtype, shape) = table_tensor_shape(format, tc.rows, tc.dim);
            let bytes = r.table_bytes(&format!("tables.{t}"), dtype, &shape, &backing)?;
            tables.push(StoredTable::new(format, tc.rows, tc.dim, bytes)?);
        }
        let mut tensor_bytes = BTreeMap::new();
        for (name, t) in r.st.iter() {
            if !r.used.iter().any(|u| u == name) {
                return Err(ModelError::ArtifactUnexpectedTensor {
                    file: what.into(),
                    tensor: name.to_string(),
                });
            }
            tensor_bytes.insert(name.to_string(), t.data().len());
        }
        let model = Model::assemble(
            meta.config.clone(),
            meta.plan.clone(),
            meta.table_names.clone(),
            bottom.1,
            packed_cross,
            top.1,
            tables,
        )?;
        let file_bytes = buf.len();
        Ok(Artifact {
            model,
            meta,
            file_bytes,
            tensor_bytes,
            backing,
            bottom: bottom.0,
            cross,
            top: top.0,
        })
    }
}
