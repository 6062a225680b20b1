//! Bytes per part of a model under a plan: the one count of stored bytes, shared by `inspect`,
//! the precision search's byte objective and every report. A part's bytes are exactly what the
//! artifact stores for it: weights in their precision, f32 biases (DCN `v` layers have none),
//! int8 scales (one per output channel, or one per tensor), and table rows in their format (for a
//! tiered table: every tier's rows plus the remap, [`crate::plan::TierPlan::bytes`]).

use quantrec_kernels::formats::TableFormat;

use crate::config::{Interaction, ModelConfig, PoolingMode};
use crate::plan::{LayerPrecision, Plan};

/// What a part holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PartKind {
    /// A dense layer `[out, inp]` in its precision.
    Dense(LayerPrecision),
    /// An embedding table `[rows, dim]` in its format.
    Table(TableFormat, PoolingMode),
}

/// One part of a model: a dense layer or a table.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// Tensor prefix in the artifact: `bottom.0`, `cross.0.v`, `top.1`, `tables.3`.
    pub name: String,
    /// What it holds.
    pub kind: PartKind,
    /// `(out, inp)` of a dense layer, `(rows, dim)` of a table.
    pub shape: (usize, usize),
    /// Whether a dense layer stores an f32 bias (all but DCN `v` layers).
    pub bias: bool,
    /// Bytes stored.
    pub bytes: u64,
}

/// Bytes of a dense layer `[out, inp]` in precision `p`: weights, f32 bias when `bias`, and int8
/// scales (per channel or per tensor).
pub fn layer_bytes(out: usize, inp: usize, bias: bool, p: LayerPrecision) -> u64 {
    let scales = match p {
        LayerPrecision::Int8 {
            per_channel: true, ..
        } => out * 4,
        LayerPrecision::Int8 { .. } => 4,
        _ => 0,
    };
    let bias = if bias { out * 4 } else { 0 };
    (out * inp * p.weight_bytes() + bias + scales) as u64
}

/// Bytes of a `rows × dim` table in `format`.
pub fn table_bytes(rows: usize, dim: usize, format: TableFormat) -> u64 {
    (rows * format.row_bytes(dim)) as u64
}

fn dense(name: String, (out, inp): (usize, usize), bias: bool, p: LayerPrecision) -> Part {
    Part {
        name,
        kind: PartKind::Dense(p),
        shape: (out, inp),
        bias,
        bytes: layer_bytes(out, inp, bias, p),
    }
}

/// Bottom-MLP layer `i`.
pub fn bottom_part(config: &ModelConfig, plan: &Plan, i: usize) -> Part {
    dense(
        format!("bottom.{i}"),
        config.bottom_shapes()[i],
        true,
        plan.bottom[i],
    )
}

/// Top-MLP layer `i`.
pub fn top_part(config: &ModelConfig, plan: &Plan, i: usize) -> Part {
    dense(
        format!("top.{i}"),
        config.top_shapes()[i],
        true,
        plan.top[i],
    )
}

/// DCN layer `l`'s `v` (`[rank, width]`, no bias) or, with `w`, its `w` (`[width, rank]`).
pub fn cross_part(config: &ModelConfig, plan: &Plan, l: usize, w: bool) -> Part {
    let width = config.concat_width();
    let rank = match config.interaction {
        Interaction::Dcn { rank, .. } => rank,
        _ => 0,
    };
    if w {
        dense(format!("cross.{l}.w"), (width, rank), true, plan.cross[l].w)
    } else {
        dense(
            format!("cross.{l}.v"),
            (rank, width),
            false,
            plan.cross[l].v,
        )
    }
}

/// Table `t`.
pub fn table_part(config: &ModelConfig, plan: &Plan, t: usize) -> Part {
    let tc = &config.tables[t];
    Part {
        name: format!("tables.{t}"),
        kind: PartKind::Table(plan.tables[t], tc.pooling),
        shape: (tc.rows, tc.dim),
        bias: false,
        bytes: plan.table_bytes(t, tc.rows, tc.dim) as u64,
    }
}

/// Every part in artifact order: bottom, cross (`v`, `w`), top, tables.
pub fn parts(config: &ModelConfig, plan: &Plan) -> Vec<Part> {
    let mut out: Vec<Part> = (0..plan.bottom.len())
        .map(|i| bottom_part(config, plan, i))
        .collect();
    for l in 0..plan.cross.len() {
        out.push(cross_part(config, plan, l, false));
        out.push(cross_part(config, plan, l, true));
    }
    out.extend((0..plan.top.len()).map(|i| top_part(config, plan, i)));
    out.extend((0..plan.tables.len()).map(|t| table_part(config, plan, t)));
    out
}

/// Bytes of every part.
pub fn total_bytes(config: &ModelConfig, plan: &Plan) -> u64 {
    parts(config, plan).iter().map(|p| p.bytes).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ActivationPlan;

    #[test]
    fn layer_bytes_count_weights_bias_and_scales() {
        assert_eq!(layer_bytes(2, 3, true, LayerPrecision::F32), 4 * 6 + 8);
        assert_eq!(layer_bytes(2, 3, false, LayerPrecision::F16), 2 * 6);
        let int8 = |per_channel| LayerPrecision::Int8 {
            per_channel,
            activations: ActivationPlan::Dynamic,
        };
        assert_eq!(layer_bytes(2, 3, true, int8(true)), 6 + 8 + 8);
        assert_eq!(layer_bytes(2, 3, true, int8(false)), 6 + 8 + 4);
        assert_eq!(table_bytes(10, 8, TableFormat::Fused4), 10 * 8);
    }
}
