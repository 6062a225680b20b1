//! Reading the tensors of each naming convention into layers, tables and cross layers.

use std::collections::{BTreeMap, BTreeSet};

use super::TORCHREC_TABLES;
use crate::config::{Naming, PoolingMode, TableConfig};
use crate::state_dict::Tensor;
use crate::weights::{CrossLayer, Linear, TableData};
use crate::{ModelError, Result};

/// Takes tensors out of the state dict by name, remembering what was used.
pub(crate) struct Taker {
    pub(crate) tensors: BTreeMap<String, Tensor>,
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
    pub(crate) fn linear(&mut self, prefix: &str, inp: Option<usize>) -> Result<Linear> {
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
                return Err(ModelError::LayerIndex {
                    name: name.clone(),
                    found: *i,
                    expected: n * step,
                    hint: format!("layers are {prefix}0, {prefix}{step}, ... without gaps"),
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
pub(crate) fn natural_key(s: &str) -> Vec<(String, u128)> {
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
pub(crate) struct Parts {
    pub(crate) naming: Naming,
    pub(crate) bottom: Vec<Linear>,
    pub(crate) tables: Vec<(String, TableConfig, TableData)>,
    pub(crate) cross: Vec<CrossLayer>,
    pub(crate) top: Vec<Linear>,
    /// The tensor whose input width decides the interaction.
    pub(crate) top_first: String,
}

pub(crate) fn parse_dlrm(tk: &mut Taker) -> Result<Parts> {
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

pub(crate) fn parse_torchrec(tk: &mut Taker, order: Option<&[String]>) -> Result<Parts> {
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
            return Err(ModelError::TableOrder {
                order: order.to_vec(),
                tables: names,
            });
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
            return Err(ModelError::LayerIndex {
                name: name.clone(),
                found: *i,
                expected: n,
                hint: "cross layers are numbered 0, 1, ... without gaps".into(),
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
