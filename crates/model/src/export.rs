//! Export of f32 weights as a PyTorch state dict with dlrm (`DLRM_Net`) or TorchRec module names, so
//! `load_state_dict` accepts it. The interaction must be one the target convention can express.

use crate::config::{DotOrder, Interaction, ModelConfig, Naming};
use crate::state_dict::{StateDict, Tensor};
use crate::weights::{Linear, TableData, Weights};
use crate::{ModelError, Result};
use quantrec_kernels::formats::TableFormat;

fn put_linear(sd: &mut StateDict, prefix: &str, l: &Linear) {
    sd.tensors.insert(
        format!("{prefix}weight"),
        Tensor::new(vec![l.out, l.inp], l.weight.clone()),
    );
    sd.tensors.insert(
        format!("{prefix}bias"),
        Tensor::new(vec![l.out], l.bias.clone()),
    );
}

/// Builds the state dict of `weights` with `naming`'s module names. Tables must be f32.
/// TorchRec table names come from `weights.table_names` (or `t_cat_{t}` when empty).
pub fn export_state_dict(
    config: &ModelConfig,
    weights: &Weights,
    naming: Naming,
) -> Result<StateDict> {
    weights.check(config)?;
    match (&config.interaction, naming) {
        (
            Interaction::Dot {
                order: DotOrder::LowerByRow,
                ..
            }
            | Interaction::Cat,
            Naming::Dlrm,
        )
        | (
            Interaction::Dot {
                order: DotOrder::UpperByRow,
                self_interaction: false,
            }
            | Interaction::Dcn { .. },
            Naming::TorchRec,
        ) => {}
        (i, n) => {
            return Err(ModelError::ExportInteraction {
                naming: n,
                interaction: i.clone(),
            });
        }
    }
    let mut sd = StateDict::default();
    let mut names = Vec::with_capacity(config.tables.len());
    for (t, (data, tc)) in weights.tables.iter().zip(&config.tables).enumerate() {
        let v = match data {
            TableData::F32(v) => v,
            TableData::Encoded { format, .. } => {
                return Err(ModelError::ExportEncodedTable {
                    naming,
                    table: t,
                    format: *format,
                });
            }
            TableData::Tiered(d) => {
                return Err(ModelError::ExportEncodedTable {
                    naming,
                    table: t,
                    format: d.tiers.first().map_or(TableFormat::F32, |k| k.format),
                });
            }
        };
        let name = match naming {
            Naming::Dlrm => format!("emb_l.{t}.weight"),
            Naming::TorchRec => format!(
                "sparse_arch.embedding_bag_collection.embedding_bags.{}.weight",
                weights
                    .table_names
                    .get(t)
                    .cloned()
                    .unwrap_or_else(|| format!("t_cat_{t}"))
            ),
        };
        if names.contains(&name) {
            return Err(ModelError::ExportDuplicateName { naming, name });
        }
        names.push(name.clone());
        sd.tensors
            .insert(name, Tensor::new(vec![tc.rows, tc.dim], v.clone()));
    }
    match naming {
        Naming::Dlrm => {
            for (i, l) in weights.bottom.iter().enumerate() {
                put_linear(&mut sd, &format!("bot_l.{}.", 2 * i), l);
            }
            for (i, l) in weights.top.iter().enumerate() {
                put_linear(&mut sd, &format!("top_l.{}.", 2 * i), l);
            }
        }
        Naming::TorchRec => {
            if weights.top.len() < 2 {
                return Err(ModelError::ExportTopMlp {
                    naming,
                    layers: weights.top.len(),
                });
            }
            for (i, l) in weights.bottom.iter().enumerate() {
                put_linear(&mut sd, &format!("dense_arch.model._mlp.{i}._linear."), l);
            }
            let (last, mlp) = weights.top.split_last().expect("two layers or more");
            for (i, l) in mlp.iter().enumerate() {
                put_linear(&mut sd, &format!("over_arch.model.0._mlp.{i}._linear."), l);
            }
            put_linear(&mut sd, "over_arch.model.1.", last);
            let width = config.concat_width();
            for (l, c) in weights.cross.iter().enumerate() {
                let rank = c.v.len() / width;
                sd.tensors.insert(
                    format!("inter_arch.crossnet.V_kernels.{l}"),
                    Tensor::new(vec![rank, width], c.v.clone()),
                );
                sd.tensors.insert(
                    format!("inter_arch.crossnet.W_kernels.{l}"),
                    Tensor::new(vec![width, rank], c.w.clone()),
                );
                sd.tensors.insert(
                    format!("inter_arch.crossnet.bias.{l}"),
                    Tensor::new(vec![width], c.bias.clone()),
                );
            }
        }
    }
    Ok(sd)
}
