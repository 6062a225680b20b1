//! Export of the trained parameters as a state dict (facebookresearch/dlrm or TorchRec module names,
//! following `config.naming`) in safetensors, and resuming from one.
//!
//! Names: with [`Naming::Dlrm`](quantrec_model::config::Naming::Dlrm) `emb_l.{i}.weight` `[rows, dim]`,
//! `bot_l.{2i}.weight` `[out, in]` / `.bias`, `top_l.{2i}.weight` / `.bias` (what `DLRM_Net`'s
//! `load_state_dict` expects); with `TorchRec`
//! `sparse_arch.embedding_bag_collection.embedding_bags.t_cat_{i}.weight`,
//! `dense_arch.model._mlp.{i}._linear.*`, `over_arch.model.0._mlp.{i}._linear.*` and
//! `over_arch.model.1.*` for the last top layer. A DCN cross net is always
//! `inter_arch.crossnet.{V_kernels,W_kernels,bias}.{l}` (TorchRec's `LowRankCrossNet`).

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};

use crate::{Result, TrainError};
use quantrec_model::config::ModelConfig;

use crate::params::{Arch, Params};
use crate::{TrainOptions, Trainer};

/// One f32 tensor of a state dict.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// Module path, e.g. `bot_l.0.weight`.
    pub name: String,
    /// PyTorch shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl Trainer {
    /// Every parameter as a named tensor: dense tensors in layer order, then the tables.
    pub fn state_dict(&self) -> Vec<NamedTensor> {
        let naming = self.config.naming;
        let mut v: Vec<NamedTensor> = self
            .arch
            .dense_tensors(naming)
            .into_iter()
            .map(|(name, shape, off)| {
                let len: usize = shape.iter().product();
                NamedTensor {
                    name,
                    shape,
                    data: self.params.dense[off..off + len].to_vec(),
                }
            })
            .collect();
        for (t, ts) in self.arch.tables.iter().enumerate() {
            v.push(NamedTensor {
                name: Arch::table_name(naming, t),
                shape: vec![ts.rows, ts.dim],
                data: self.params.tables[t].clone(),
            });
        }
        v
    }

    /// The state dict as safetensors bytes (metadata: `format = pt` and the model config as JSON
    /// under `quantrec.config`).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let sd = self.state_dict();
        let bytes: Vec<Vec<u8>> = sd
            .iter()
            .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
            .collect();
        let mut views = Vec::with_capacity(sd.len());
        for (t, b) in sd.iter().zip(&bytes) {
            let view = TensorView::new(Dtype::F32, t.shape.clone(), b).map_err(|source| {
                TrainError::SafeTensors {
                    what: t.name.clone(),
                    source,
                }
            })?;
            views.push((t.name.clone(), view));
        }
        let config = serde_json::to_string(&self.config)
            .map_err(|source| TrainError::ConfigJson { source })?;
        let meta = HashMap::from([
            ("format".to_string(), "pt".to_string()),
            ("quantrec.config".to_string(), config),
        ]);
        safetensors::serialize(views, Some(meta)).map_err(|source| TrainError::SafeTensors {
            what: "serialize".into(),
            source,
        })
    }

    /// Writes [`Trainer::to_safetensors`] to `path`.
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let bytes = self.to_safetensors()?;
        std::fs::write(path, bytes).map_err(|source| TrainError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// A trainer starting from `tensors` (names per `config.naming`, as [`Trainer::state_dict`]
    /// writes them): every parameter must be present with its exact shape and finite values, and
    /// no other tensor may be given. Optimizer state starts fresh.
    pub fn from_state_dict(
        config: ModelConfig,
        options: TrainOptions,
        tensors: Vec<NamedTensor>,
    ) -> Result<Trainer> {
        let arch = Arch::new(&config)?;
        let mut by_name: HashMap<String, NamedTensor> = HashMap::with_capacity(tensors.len());
        for t in tensors {
            if t.shape.iter().product::<usize>() != t.data.len() {
                return Err(TrainError::StateDictValues {
                    values: t.data.len(),
                    name: t.name,
                    shape: t.shape,
                });
            }
            if let Some(index) = t.data.iter().position(|v| !v.is_finite()) {
                return Err(TrainError::StateDictNonFinite {
                    value: t.data[index],
                    name: t.name,
                    index,
                });
            }
            if let Some(prev) = by_name.insert(t.name.clone(), t) {
                return Err(TrainError::StateDictDuplicate { name: prev.name });
            }
        }
        let naming = config.naming;
        let mut take = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            match by_name.remove(name) {
                None => Err(TrainError::StateDictMissing {
                    name: name.into(),
                    shape: shape.to_vec(),
                }),
                Some(t) if t.shape != shape => Err(TrainError::StateDictTensor {
                    name: name.into(),
                    expected_shape: shape.to_vec(),
                    found_shape: t.shape,
                }),
                Some(t) => Ok(t.data),
            }
        };
        let mut dense = vec![0f32; arch.dense_len];
        for (name, shape, off) in arch.dense_tensors(naming) {
            let data = take(&name, &shape)?;
            dense[off..off + data.len()].copy_from_slice(&data);
        }
        let mut tables = Vec::with_capacity(arch.tables.len());
        for (t, ts) in arch.tables.iter().enumerate() {
            tables.push(take(&Arch::table_name(naming, t), &[ts.rows, ts.dim])?);
        }
        if let Some(extra) = by_name.keys().min() {
            return Err(TrainError::StateDictUnexpected {
                name: extra.clone(),
            });
        }
        Trainer::with_params(config, options, arch, Params { dense, tables })
    }
}

/// Every tensor of a safetensors buffer, converted to f32 (F32 as is; F16 and BF16 widened).
pub fn parse_safetensors(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    let st =
        safetensors::SafeTensors::deserialize(bytes).map_err(|source| TrainError::SafeTensors {
            what: "not a safetensors buffer".into(),
            source,
        })?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            dtype => return Err(TrainError::StateDictDtype { name, dtype }),
        };
        out.push(NamedTensor {
            name,
            shape: view.shape().to_vec(),
            data,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// [`parse_safetensors`] of a file.
pub fn read_safetensors(path: &Path) -> Result<Vec<NamedTensor>> {
    let bytes = std::fs::read(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_safetensors(&bytes)
}
