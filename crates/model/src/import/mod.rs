//! Import of PyTorch state dicts: facebookresearch/dlrm `DLRM_Net` and TorchRec `DLRM` / `DLRM_DCN`
//! module names → [`ModelConfig`] + [`Weights`], with the whole architecture inferred from names and
//! shapes.
//!
//! - dlrm: `emb_l.{t}.weight`, `bot_l.{0,2,..}.{weight,bias}`, `top_l.{0,2,..}.{weight,bias}`; dot
//!   pairs in the lower-triangle order (or cat).
//! - TorchRec: `sparse_arch.embedding_bag_collection.embedding_bags.<table>.weight`,
//!   `dense_arch.model._mlp.{i}._linear.*`, `over_arch.model.0._mlp.{i}._linear.*`,
//!   `over_arch.model.1.*` (the over arch's MLP has a ReLU after every layer, then a plain linear),
//!   `inter_arch.crossnet.{V_kernels,W_kernels,bias}.{l}` for `DLRM_DCN`; dot pairs in the upper
//!   triangle order. Tables are ordered by name, numbers compared numerically (`t_cat_2` < `t_cat_10`).
//!
//! The interaction (dot with or without self-interaction, or cat) follows from the top-MLP input
//! width; when two kinds give the same width, an override must choose.
pub mod file;
mod infer;
mod parse;

use serde::{Deserialize, Serialize};

use crate::config::{Interaction, ModelConfig, Naming, PoolingMode, TableConfig};
use crate::state_dict::StateDict;
use crate::weights::Weights;
use crate::{ModelError, Result};

use infer::infer_interaction;
use parse::{Taker, parse_dlrm, parse_torchrec};

pub use file::{ImportFileOptions, ImportSummary, import_to_artifact};

/// What an import cannot infer from the weights, or a decision to force (`--config OVERRIDE.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportOverrides {
    /// The interaction (e.g. when dot and cat give the same top-MLP input width).
    #[serde(default)]
    pub interaction: Option<Interaction>,
    /// Pooling of every table (default: sum, both conventions' default).
    #[serde(default)]
    pub pooling: Option<PoolingMode>,
    /// Pooling per table (wins over `pooling`).
    #[serde(default)]
    pub poolings: Option<Vec<PoolingMode>>,
    /// TorchRec table names in feature order (default: by name, numbers compared numerically).
    #[serde(default)]
    pub table_order: Option<Vec<String>>,
}

impl ImportOverrides {
    /// Parses overrides from JSON (unknown fields are an error).
    pub fn from_json(s: &str) -> Result<Self> {
        serde_json::from_str(s).map_err(|source| ModelError::Json {
            what: "import overrides".into(),
            source,
        })
    }
}

/// The result of an import.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The inferred architecture.
    pub config: ModelConfig,
    /// The weights (tables in f32, `table_names` filled).
    pub weights: Weights,
}

pub(crate) const TORCHREC_TABLES: &str = "sparse_arch.embedding_bag_collection.embedding_bags.";
const WRAPPERS: [&str; 3] = ["model.", "module.", "_orig_mod."];

/// Removes wrapper prefixes (`model.` of TorchRec's `DLRMTrain`, `module.` of DDP, `_orig_mod.` of
/// `torch.compile`) shared by every tensor.
fn strip_wrappers(sd: &mut StateDict) {
    loop {
        let Some(p) = WRAPPERS
            .iter()
            .find(|p| !sd.tensors.is_empty() && sd.tensors.keys().all(|k| k.starts_with(**p)))
        else {
            return;
        };
        sd.tensors = std::mem::take(&mut sd.tensors)
            .into_iter()
            .map(|(k, v)| (k[p.len()..].to_string(), v))
            .collect();
        sd.other = std::mem::take(&mut sd.other)
            .into_iter()
            .map(|(k, v)| (k.strip_prefix(*p).unwrap_or(&k).to_string(), v))
            .collect();
    }
}

/// Which convention the names follow.
fn detect_naming(sd: &StateDict) -> Result<Naming> {
    let dlrm = sd.tensors.keys().any(|k| {
        ["emb_l.", "bot_l.", "top_l."]
            .iter()
            .any(|p| k.starts_with(p))
    });
    let trec = sd.tensors.keys().any(|k| {
        ["sparse_arch.", "dense_arch.", "over_arch.", "inter_arch."]
            .iter()
            .any(|p| k.starts_with(p))
    });
    match (dlrm, trec) {
        (true, false) => Ok(Naming::Dlrm),
        (false, true) => Ok(Naming::TorchRec),
        (true, true) => {
            let first = |prefixes: &[&str]| {
                sd.tensors
                    .keys()
                    .find(|k| prefixes.iter().any(|p| k.starts_with(p)))
                    .cloned()
                    .unwrap_or_default()
            };
            Err(ModelError::MixedNaming {
                dlrm: first(&["emb_l.", "bot_l.", "top_l."]),
                torchrec: first(&["sparse_arch.", "dense_arch.", "over_arch.", "inter_arch."]),
            })
        }
        (false, false) => Err(ModelError::UnknownNaming {
            examples: sd.tensors.keys().take(3).cloned().collect(),
        }),
    }
}

/// Imports a parsed state dict.
pub fn import_state_dict(mut sd: StateDict, ov: &ImportOverrides) -> Result<Imported> {
    strip_wrappers(&mut sd);
    for (name, t) in &sd.tensors {
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite {
                name: name.clone(),
                index: i,
                value: t.data[i],
            });
        }
    }
    if let Some((name, dtype)) = sd.other.iter().find(|(n, _)| !n.ends_with("triu_indices")) {
        return Err(ModelError::TensorDtype {
            name: name.clone(),
            expected: "a float type (F32, F16, BF16, F64)".into(),
            found: dtype.clone(),
        });
    }
    let naming = detect_naming(&sd)?;
    let mut tk = Taker {
        tensors: std::mem::take(&mut sd.tensors),
    };
    let parts = match naming {
        Naming::Dlrm => parse_dlrm(&mut tk)?,
        Naming::TorchRec => parse_torchrec(&mut tk, ov.table_order.as_deref())?,
    };
    if let Some(name) = tk.tensors.keys().next() {
        return Err(ModelError::UnexpectedTensor {
            name: name.clone(),
            reason: format!("not part of a {naming:?} DLRM / DLRM_DCN this importer understands"),
        });
    }
    if parts.bottom.is_empty() {
        return Err(ModelError::MissingTensor {
            name: match naming {
                Naming::Dlrm => "bot_l.0.weight",
                Naming::TorchRec => "dense_arch.model._mlp.0._linear.weight",
            }
            .into(),
            expected: "the first bottom-MLP layer (the dense input width comes from it)".into(),
        });
    }
    if parts.top.is_empty() {
        return Err(ModelError::MissingTensor {
            name: parts.top_first.clone(),
            expected: "the first top-MLP layer".into(),
        });
    }
    if parts.tables.is_empty() {
        return Err(ModelError::MissingTensor {
            name: match naming {
                Naming::Dlrm => "emb_l.0.weight".into(),
                Naming::TorchRec => format!("{TORCHREC_TABLES}<table>.weight"),
            },
            expected: "at least one embedding table".into(),
        });
    }
    let n_tables = parts.tables.len();
    let poolings: Vec<PoolingMode> = match (&ov.poolings, ov.pooling) {
        (Some(p), _) if p.len() != n_tables => {
            return Err(ModelError::OverrideCount {
                what: "poolings",
                expected: n_tables,
                found: p.len(),
            });
        }
        (Some(p), _) => p.clone(),
        (None, Some(p)) => vec![p; n_tables],
        (None, None) => vec![PoolingMode::Sum; n_tables],
    };
    let mut config = ModelConfig {
        dense_features: parts.bottom[0].inp,
        bottom_mlp: parts.bottom.iter().map(|l| l.out).collect(),
        tables: parts
            .tables
            .iter()
            .zip(&poolings)
            .map(|((_, t, _), &pooling)| TableConfig {
                pooling,
                ..t.clone()
            })
            .collect(),
        interaction: Interaction::Cat,
        top_mlp: parts.top.iter().map(|l| l.out).collect(),
        naming,
    };
    config.interaction = infer_interaction(&parts, ov.interaction.as_ref(), &config)?;
    if config.top_mlp.last() != Some(&1) {
        let last = parts.top.len() - 1;
        return Err(ModelError::TensorShape {
            name: match naming {
                Naming::Dlrm => format!("top_l.{}.weight", 2 * last),
                Naming::TorchRec => "over_arch.model.1.weight".into(),
            },
            expected: "[1, in] (the model's single logit)".into(),
            found: vec![parts.top[last].out, parts.top[last].inp],
        });
    }
    let (table_names, tables) = parts.tables.into_iter().map(|(n, _, d)| (n, d)).unzip();
    let weights = Weights {
        bottom: parts.bottom,
        tables,
        table_names,
        cross: parts.cross,
        top: parts.top,
    };
    weights.check(&config)?;
    Ok(Imported { config, weights })
}

/// Reads and imports a safetensors state dict.
pub fn import_file(path: &std::path::Path, ov: &ImportOverrides) -> Result<Imported> {
    import_state_dict(StateDict::load(path)?, ov)
}

#[cfg(test)]
mod tests {
    use super::parse::natural_key;

    #[test]
    fn natural_order_compares_numbers_as_numbers() {
        let mut v = vec![
            "t_cat_10", "t_cat_2", "t_cat_1", "b", "a10b2", "a10b10", "a9",
        ];
        v.sort_by_key(|s| natural_key(s));
        assert_eq!(
            v,
            [
                "a9", "a10b2", "a10b10", "b", "t_cat_1", "t_cat_2", "t_cat_10"
            ]
        );
    }
}
