//! Deciding the interaction from the top-MLP input width.

use quantrec_kernels::interaction::num_pairs;

use super::parse::Parts;
use crate::config::{DotOrder, Interaction, ModelConfig, Naming};
use crate::{ModelError, Result};

/// Decides the interaction from the top-MLP input width (or checks an override against it).
pub(crate) fn infer_interaction(
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
            return Err(ModelError::OverrideConflict {
                requested: o.clone(),
                found: dcn,
            });
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
        _ => Err(ModelError::AmbiguousInteraction { top_in, candidates }),
    }
}
