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

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use quantrec_kernels::interaction::num_pairs;

use crate::config::{DotOrder, Interaction, ModelConfig, Naming, PoolingMode, TableConfig};
use crate::state_dict::{StateDict, Tensor};
use crate::weights::{CrossLayer, Linear, TableData, Weights};
use crate::{ModelError, Result};

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

const TORCHREC_TABLES: &str = "sparse_arch.embedding_bag_collection.embedding_bags.";
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
        (true, true) => Err(ModelError::Ambiguous {
            what: "the naming convention".into(),
            reason: "the state dict mixes dlrm (emb_l/bot_l/top_l) and TorchRec (sparse_arch/dense_arch/over_arch) names".into(),
        }),
        (false, false) => Err(ModelError::Ambiguous {
            what: "the naming convention".into(),
            reason: format!(
                "no tensor starts with emb_l./bot_l./top_l. (dlrm) or sparse_arch./dense_arch./over_arch. (TorchRec); found e.g. {:?}",
                sd.tensors.keys().take(3).collect::<Vec<_>>()
            ),
        }),
    }
}

/// Takes tensors out of the state dict by name, remembering what was used.
struct Taker {
    tensors: BTreeMap<String, Tensor>,
}

impl Taker {
    fn take(&mut self, name: &str, expected: &str) -> Result<Tensor> {
        self.tensors
            .remove(name)
            .ok_or_else(|| ModelError::MissingTensor {
                name: name.into(),
                expected: expected.into(),
            })
    }

    /// Takes `{prefix}weight` and `{prefix}bias` as a linear layer with input width `inp` (when known).
    fn linear(&mut self, prefix: &str, inp: Option<usize>) -> Result<Linear> {
        let wname = format!("{prefix}weight");
        let w = self.take(&wname, "a Linear weight [out, in]")?;
        let (out, k) = match w.shape[..] {
            [o, k] if o > 0 && k > 0 => (o, k),
            _ => {
                return Err(ModelError::TensorShape {
                    name: wname,
                    expected: "a non-empty matrix [out, in]".into(),
                    found: w.shape,
                });
            }
        };
        if let Some(i) = inp
            && i != k
        {
            return Err(ModelError::TensorShape {
                name: wname,
                expected: format!(
                    "[{out}, {i}] (its input is the previous layer's output, {i} wide)"
                ),
                found: w.shape,
            });
        }
        let bname = format!("{prefix}bias");
        let b = self.take(&bname, &format!("the bias [{out}] of {wname}"))?;
        if b.shape != [out] {
            return Err(ModelError::TensorShape {
                name: bname,
                expected: format!("[{out}]"),
                found: b.shape,
            });
        }
        Ok(Linear {
            out,
            inp: k,
            weight: w.data,
            bias: b.data,
        })
    }

    /// The sorted indices `i` of names `{prefix}{i}{suffix}`.
    fn indices(&self, prefix: &str, suffix: &str) -> Vec<(usize, String)> {
        let mut v: Vec<(usize, String)> = self
            .tensors
            .keys()
            .filter_map(|k| {
                let i = k.strip_prefix(prefix)?.strip_suffix(suffix)?;
                Some((i.parse().ok()?, k.clone()))
            })
            .collect();
        v.sort();
        v
    }

    /// An MLP whose layers are `{prefix}{first + step·i}{mid}weight/bias`.
    fn mlp(
        &mut self,
        prefix: &str,
        mid: &str,
        step: usize,
        mut inp: Option<usize>,
    ) -> Result<Vec<Linear>> {
        let idx = self.indices(prefix, &format!("{mid}weight"));
        let mut layers = Vec::with_capacity(idx.len());
        for (n, (i, name)) in idx.iter().enumerate() {
            if *i != n * step {
                return Err(ModelError::UnexpectedTensor {
                    name: name.clone(),
                    reason: format!(
                        "layer index {i} where {} was expected (layers are {prefix}0, {prefix}{step}, ... without gaps)",
                        n * step
                    ),
                });
            }
            let l = self.linear(&format!("{prefix}{i}{mid}"), inp)?;
            inp = Some(l.out);
            layers.push(l);
        }
        Ok(layers)
    }
}

/// Natural order: digit runs compare as numbers.
fn natural_key(s: &str) -> Vec<(String, u128)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut num = c.to_digit(10).map_or(0, u128::from);
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                num = num.saturating_mul(10).saturating_add(u128::from(d));
                chars.next();
            }
            out.push((std::mem::take(&mut text), num));
        } else {
            text.push(c);
        }
    }
    out.push((text, 0));
    out
}

fn table_from(name: &str, t: Tensor) -> Result<(TableConfig, TableData)> {
    match t.shape[..] {
        [rows, dim] if rows > 0 && dim > 0 => Ok((
            TableConfig {
                rows,
                dim,
                pooling: PoolingMode::Sum,
            },
            TableData::F32(t.data),
        )),
        _ => Err(ModelError::TensorShape {
            name: name.into(),
            expected: "an embedding table [rows, dim]".into(),
            found: t.shape,
        }),
    }
}

/// Parsed parts before the interaction is decided.
struct Parts {
    naming: Naming,
    bottom: Vec<Linear>,
    tables: Vec<(String, TableConfig, TableData)>,
    cross: Vec<CrossLayer>,
    top: Vec<Linear>,
    /// The tensor whose input width decides the interaction.
    top_first: String,
}

fn parse_dlrm(tk: &mut Taker) -> Result<Parts> {
    let mut tables = Vec::new();
    for (n, (i, name)) in tk.indices("emb_l.", ".weight").into_iter().enumerate() {
        if i != n {
            return Err(ModelError::MissingTensor {
                name: format!("emb_l.{n}.weight"),
                expected: format!("table {n} (found {name} after it)"),
            });
        }
        let (tc, data) = table_from(&name, tk.take(&name, "")?)?;
        tables.push((format!("emb_l.{i}"), tc, data));
    }
    let bottom = tk.mlp("bot_l.", ".", 2, None)?;
    let top = tk.mlp("top_l.", ".", 2, None)?;
    Ok(Parts {
        naming: Naming::Dlrm,
        bottom,
        tables,
        cross: Vec::new(),
        top,
        top_first: "top_l.0.weight".into(),
    })
}

fn parse_torchrec(tk: &mut Taker, order: Option<&[String]>) -> Result<Parts> {
    let mut names: Vec<String> = tk
        .tensors
        .keys()
        .filter_map(|k| k.strip_prefix(TORCHREC_TABLES)?.strip_suffix(".weight"))
        .map(str::to_string)
        .collect();
    names.sort_by_key(|n| natural_key(n));
    if let Some(order) = order {
        let have: BTreeSet<&String> = names.iter().collect();
        let want: BTreeSet<&String> = order.iter().collect();
        if have != want || order.len() != names.len() {
            return Err(ModelError::Config(format!(
                "table_order {order:?} must list each table of the state dict once: {names:?}"
            )));
        }
        names = order.to_vec();
    }
    let mut tables = Vec::new();
    for n in names {
        let key = format!("{TORCHREC_TABLES}{n}.weight");
        let (tc, data) = table_from(&key, tk.take(&key, "")?)?;
        tables.push((n, tc, data));
    }
    let bottom = tk.mlp("dense_arch.model._mlp.", "._linear.", 1, None)?;
    let mut top = tk.mlp("over_arch.model.0._mlp.", "._linear.", 1, None)?;
    if top.is_empty() {
        return Err(ModelError::MissingTensor {
            name: "over_arch.model.0._mlp.0._linear.weight".into(),
            expected: "the first layer of the over arch's MLP".into(),
        });
    }
    let last_in = top.last().map(|l| l.out);
    top.push(tk.linear("over_arch.model.1.", last_in)?);

    let mut cross = Vec::new();
    let layers = tk.indices("inter_arch.crossnet.V_kernels.", "");
    for (n, (i, name)) in layers.iter().enumerate() {
        if *i != n {
            return Err(ModelError::UnexpectedTensor {
                name: name.clone(),
                reason: format!("cross layer {i} where {n} was expected"),
            });
        }
        let v = tk.take(name, "")?;
        let wname = format!("inter_arch.crossnet.W_kernels.{i}");
        let w = tk.take(&wname, "the cross layer's W kernel [width, rank]")?;
        let bname = format!("inter_arch.crossnet.bias.{i}");
        let b = tk.take(&bname, "the cross layer's bias [width]")?;
        let (rank, width) = match v.shape[..] {
            [r, w] if r > 0 && w > 0 => (r, w),
            _ => {
                return Err(ModelError::TensorShape {
                    name: name.clone(),
                    expected: "[rank, width]".into(),
                    found: v.shape,
                });
            }
        };
        if w.shape != [width, rank] {
            return Err(ModelError::TensorShape {
                name: wname,
                expected: format!("[{width}, {rank}] (from {name})"),
                found: w.shape,
            });
        }
        if b.shape != [width] {
            return Err(ModelError::TensorShape {
                name: bname,
                expected: format!("[{width}] (from {name})"),
                found: b.shape,
            });
        }
        cross.push(CrossLayer {
            v: v.data,
            w: w.data,
            bias: b.data,
        });
    }
    Ok(Parts {
        naming: Naming::TorchRec,
        bottom,
        tables,
        cross,
        top,
        top_first: "over_arch.model.0._mlp.0._linear.weight".into(),
    })
}

/// Decides the interaction from the top-MLP input width (or checks an override against it).
fn infer_interaction(
    p: &Parts,
    ov: Option<&Interaction>,
    cfg: &ModelConfig,
) -> Result<Interaction> {
    let top_in = p.top[0].inp;
    let d = cfg.bottom_out();
    let f = cfg.tables.len() + 1;
    let cat = cfg.concat_width();
    if !p.cross.is_empty() {
        let rank = p.cross[0].v.len() / cat.max(1);
        let width = p.cross[0].bias.len();
        if width != cat {
            return Err(ModelError::TensorShape {
                name: "inter_arch.crossnet.bias.0".into(),
                expected: format!("[{cat}] (bottom output {d} + table dims {})", cat - d),
                found: vec![width],
            });
        }
        for (l, c) in p.cross.iter().enumerate() {
            if c.v.len() != rank * cat {
                return Err(ModelError::TensorShape {
                    name: format!("inter_arch.crossnet.V_kernels.{l}"),
                    expected: format!("[{rank}, {cat}] (the rank of layer 0)"),
                    found: vec![c.v.len() / cat, cat],
                });
            }
        }
        let dcn = Interaction::Dcn {
            layers: p.cross.len(),
            rank,
        };
        if let Some(o) = ov
            && *o != dcn
        {
            return Err(ModelError::Config(format!(
                "the override asks for {o:?} but the state dict holds a DCN ({dcn:?})"
            )));
        }
        if top_in != cat {
            return Err(ModelError::TensorShape {
                name: p.top_first.clone(),
                expected: format!("input width {cat} (the DCN output)"),
                found: vec![p.top[0].out, top_in],
            });
        }
        return Ok(dcn);
    }
    let order = match p.naming {
        Naming::Dlrm => DotOrder::LowerByRow,
        Naming::TorchRec => DotOrder::UpperByRow,
    };
    let equal_dims = cfg.tables.iter().all(|t| t.dim == d);
    let mut candidates = Vec::new();
    for self_interaction in [false, true] {
        if equal_dims && top_in == d + num_pairs(f, self_interaction) {
            candidates.push(Interaction::Dot {
                order,
                self_interaction,
            });
        }
    }
    if top_in == cat {
        candidates.push(Interaction::Cat);
    }
    if let Some(o) = ov {
        let mut probe = cfg.clone();
        probe.interaction = o.clone();
        if probe.interaction_out() != top_in || probe.validate().is_err() {
            return Err(ModelError::TensorShape {
                name: p.top_first.clone(),
                expected: format!(
                    "input width {} for the override's interaction {o:?}",
                    probe.interaction_out()
                ),
                found: vec![p.top[0].out, top_in],
            });
        }
        return Ok(o.clone());
    }
    match candidates.len() {
        1 => Ok(candidates.remove(0)),
        0 => Err(ModelError::TensorShape {
            name: p.top_first.clone(),
            expected: format!(
                "input width {} (dot), {} (dot with self-interaction) or {cat} (cat) for a bottom output of {d} and {} tables{}",
                d + num_pairs(f, false),
                d + num_pairs(f, true),
                f - 1,
                if equal_dims {
                    ""
                } else {
                    " (dot needs every table dimension equal to the bottom output)"
                }
            ),
            found: vec![p.top[0].out, top_in],
        }),
        _ => Err(ModelError::Ambiguous {
            what: "the interaction".into(),
            reason: format!(
                "top-MLP input width {top_in} fits {candidates:?}; pass an override such as {{\"interaction\": {{\"kind\": \"cat\"}}}}"
            ),
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
            return Err(ModelError::Config(format!(
                "{} poolings for {n_tables} tables",
                p.len()
            )));
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
    use super::natural_key;

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
