//! The architecture of a DLRM-family model (what `import` infers and the artifact stores).

use serde::{Deserialize, Serialize};

use quantrec_kernels::embedding_bag::Pooling;
use quantrec_kernels::interaction::PairOrder;

/// One embedding table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableConfig {
    /// Number of rows (ids are in `0..rows`).
    pub rows: usize,
    /// Embedding dimension.
    pub dim: usize,
    /// How the rows of one bag are combined.
    pub pooling: PoolingMode,
}

/// Serializable mirror of [`Pooling`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolingMode {
    /// Sum of rows.
    Sum,
    /// Mean of rows.
    Mean,
    /// Sum weighted by per-sample weights.
    WeightedSum,
}

impl From<PoolingMode> for Pooling {
    fn from(p: PoolingMode) -> Pooling {
        match p {
            PoolingMode::Sum => Pooling::Sum,
            PoolingMode::Mean => Pooling::Mean,
            PoolingMode::WeightedSum => Pooling::WeightedSum,
        }
    }
}

/// Serializable mirror of [`PairOrder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DotOrder {
    /// facebookresearch/dlrm: (i, j) with j < i, by i then j.
    LowerByRow,
    /// TorchRec: (i, j) with i < j, by i then j.
    UpperByRow,
}

impl From<DotOrder> for PairOrder {
    fn from(o: DotOrder) -> PairOrder {
        match o {
            DotOrder::LowerByRow => PairOrder::LowerByRow,
            DotOrder::UpperByRow => PairOrder::UpperByRow,
        }
    }
}

/// How the bottom-MLP output and the pooled tables are combined before the top MLP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Interaction {
    /// Pairwise dot products of [bottom output, table 0, table 1, ...], after the bottom output.
    Dot {
        /// Pair order.
        order: DotOrder,
        /// Whether each vector's dot with itself is included.
        self_interaction: bool,
    },
    /// Plain concatenation of [bottom output, tables...].
    Cat,
    /// DCN-v2 low-rank cross net over the concatenation: `x_{l+1} = x0 ⊙ (W_l (V_l x_l) + b_l) + x_l`.
    Dcn {
        /// Number of cross layers.
        layers: usize,
        /// Rank of `V_l` (`rank × width`) and `W_l` (`width × rank`).
        rank: usize,
    },
}

/// Whose module names a state dict uses (for import and export).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Naming {
    /// facebookresearch/dlrm `DLRM_Net`: `emb_l.{i}.weight`, `bot_l.{2i}.*`, `top_l.{2i}.*`.
    Dlrm,
    /// torchrec.models.dlrm `DLRM` / `DLRM_DCN`.
    TorchRec,
}

/// The whole architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Number of dense input features (13 for Criteo).
    pub dense_features: usize,
    /// Output width of each bottom-MLP layer (ReLU after every one); the last must equal the
    /// embedding dimension for dot interaction.
    pub bottom_mlp: Vec<usize>,
    /// One embedding table per sparse feature.
    pub tables: Vec<TableConfig>,
    /// Feature interaction.
    pub interaction: Interaction,
    /// Output width of each top-MLP layer (ReLU between layers, none after the last); the last is 1.
    pub top_mlp: Vec<usize>,
    /// Module-name convention of the source state dict.
    pub naming: Naming,
}

impl ModelConfig {
    /// Width of the bottom-MLP output (`dense_features` when the bottom MLP is empty).
    pub fn bottom_out(&self) -> usize {
        self.bottom_mlp
            .last()
            .copied()
            .unwrap_or(self.dense_features)
    }

    /// Width of the interaction output, i.e. the top-MLP input. Saturates at `usize::MAX` (a width
    /// no tensor can have, so a config read from an untrusted file with absurd dimensions fails
    /// the shape checks instead of overflowing).
    pub fn interaction_out(&self) -> usize {
        let d = self.bottom_out();
        let cat = self.tables.iter().fold(d, |w, t| w.saturating_add(t.dim));
        match &self.interaction {
            Interaction::Dot {
                self_interaction, ..
            } => d.saturating_add(quantrec_kernels::interaction::num_pairs(
                self.tables.len().saturating_add(1),
                *self_interaction,
            )),
            Interaction::Cat | Interaction::Dcn { .. } => cat,
        }
    }
}
