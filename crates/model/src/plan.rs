//! The precision plan: which arithmetic every dense layer runs in and how every table is stored.
//!
//! A plan never changes the model's API: [`Model::predict`](crate::Model::predict) is the same for an
//! all-f32 plan and a mixed int8/4-bit one. Plans serialize to JSON, e.g.
//! `{"bottom":[{"kind":"f32"},{"kind":"int8","per_channel":true,"activations":{"kind":"dynamic"}}], ...,
//! "tables":["fused4", ...]}`.

use serde::{Deserialize, Serialize};

use quantrec_kernels::formats::TableFormat;
use quantrec_kernels::gemm::{ActivationQuant, Int8Spec, Precision, QParams};

use crate::config::ModelConfig;
use crate::{ModelError, Result};

/// How an int8 layer quantizes its input activations (serializable mirror of [`ActivationQuant`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActivationPlan {
    /// Min/max of each call (PyTorch's per-tensor dynamic quantization: a row's result depends on
    /// the other rows of its batch).
    Dynamic,
    /// Min/max of each row on its own: every row gets its own scale and zero point, so its score
    /// never depends on the batch it arrives in (what the automatic plans use).
    DynamicPerRow,
    /// Calibrated, fixed parameters: `real = scale · (q − zero_point)`, `q` in `0..=255`.
    Static {
        /// Step between codes.
        scale: f32,
        /// The code of 0.0.
        zero_point: i32,
    },
}

/// The precision of one dense layer (serializable mirror of [`Precision`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LayerPrecision {
    /// f32 weights and activations.
    #[default]
    F32,
    /// f16 weights, f32 activations.
    F16,
    /// bf16 weights and activations.
    Bf16,
    /// s8 symmetric weights (scale `max|w| / 127`), u8 activations.
    Int8 {
        /// One weight scale per output channel rather than per tensor.
        per_channel: bool,
        /// How activations are quantized.
        activations: ActivationPlan,
    },
}

impl LayerPrecision {
    /// The kernel precision.
    pub fn to_kernel(self) -> Precision {
        match self {
            LayerPrecision::F32 => Precision::F32,
            LayerPrecision::F16 => Precision::F16,
            LayerPrecision::Bf16 => Precision::Bf16,
            LayerPrecision::Int8 {
                per_channel,
                activations,
            } => Precision::Int8(Int8Spec {
                per_channel,
                activations: match activations {
                    ActivationPlan::Dynamic => ActivationQuant::Dynamic,
                    ActivationPlan::DynamicPerRow => ActivationQuant::DynamicPerRow,
                    ActivationPlan::Static { scale, zero_point } => {
                        ActivationQuant::Static(QParams { scale, zero_point })
                    }
                },
            }),
        }
    }

    /// Short name for reports: `f32`, `f16`, `bf16`, `int8-dyn` (per-tensor), `int8-dynrow` (per-row),
    /// `int8-static`, with `/pc` for per-channel.
    pub fn short_name(self) -> String {
        match self {
            LayerPrecision::F32 => "f32".into(),
            LayerPrecision::F16 => "f16".into(),
            LayerPrecision::Bf16 => "bf16".into(),
            LayerPrecision::Int8 {
                per_channel,
                activations,
            } => format!(
                "int8-{}{}",
                match activations {
                    ActivationPlan::Dynamic => "dyn",
                    ActivationPlan::DynamicPerRow => "dynrow",
                    ActivationPlan::Static { .. } => "static",
                },
                if per_channel { "/pc" } else { "" }
            ),
        }
    }

    /// Bytes per stored weight.
    pub fn weight_bytes(self) -> usize {
        match self {
            LayerPrecision::F32 => 4,
            LayerPrecision::F16 | LayerPrecision::Bf16 => 2,
            LayerPrecision::Int8 { .. } => 1,
        }
    }

    fn check(self, name: &str) -> Result<()> {
        if let LayerPrecision::Int8 {
            activations: ActivationPlan::Static { scale, zero_point },
            ..
        } = self
            && !(scale.is_finite() && scale > 0.0 && (0..=255).contains(&zero_point))
        {
            return Err(ModelError::StaticActivation {
                layer: name.to_string(),
                scale,
                zero_point,
            });
        }
        Ok(())
    }
}

/// The precisions of one DCN cross layer's two products.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct CrossPrecision {
    /// `V_l x_l` (`rank × width`).
    pub v: LayerPrecision,
    /// `W_l (·) + b_l` (`width × rank`).
    pub w: LayerPrecision,
}

/// Precision per dense layer and storage format per table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// One per bottom-MLP layer.
    pub bottom: Vec<LayerPrecision>,
    /// One per DCN cross layer (empty for other interactions).
    #[serde(default)]
    pub cross: Vec<CrossPrecision>,
    /// One per top-MLP layer.
    pub top: Vec<LayerPrecision>,
    /// One per table.
    #[serde(with = "format_names")]
    pub tables: Vec<TableFormat>,
    /// Encode f32 tables with the least-squares refit of each N-bit row's scale and bias
    /// (`QuantizeOptions::refine`: FBGEMM's layout, less row error, not PyTorch's exact bytes).
    /// Recorded so that a refresh re-applies the same encoding; absent (false) in older plans.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub table_refit: bool,
    /// Re-round every N-bit table row in the log loss's curvature measured on the calibration
    /// data (`quantrec_quant::table_curvature`: FBGEMM's layout, less loss per row, not PyTorch's
    /// exact bytes). Recorded so that a refresh re-applies it; absent (false) in older plans.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub table_curvature: bool,
    /// Frequency-aware row tiers: table index → its tiers ([`TierPlan`], see [`crate::tiers`]).
    /// A tiered table is stored as one row-wise sub-table per tier plus a remap; its entry in
    /// `tables` is the format of its hottest tier. Absent (empty) in older plans.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tiers: std::collections::BTreeMap<usize, TierPlan>,
}

/// One tier of a tiered table: a format and how many rows it holds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TierLevel {
    /// Storage format of the tier's rows.
    #[serde(with = "format_name")]
    pub format: TableFormat,
    /// Rows in the tier.
    pub rows: usize,
}

/// The tiers of one table, hottest first: rows ranked by their lookups on calibration data go to
/// the first tier until it holds `levels[0].rows`, then to the next; the `pruned` rows that are
/// left (never seen) become the shared zero row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TierPlan {
    /// The recipe that chose the split (e.g. `8/4/2+prune`; re-applied by a refresh).
    pub recipe: String,
    /// Tiers, hottest first.
    pub levels: Vec<TierLevel>,
    /// Rows pruned to the zero row.
    pub pruned: usize,
}

impl TierPlan {
    /// Rows stored over all tiers.
    pub fn stored_rows(&self) -> usize {
        self.levels.iter().map(|l| l.rows).sum()
    }

    /// Bytes of one remap entry: 2 (i16) when every stored row index fits in an i16, else 4
    /// (i32, FBGEMM's width).
    pub fn remap_entry_bytes(&self) -> usize {
        if self.stored_rows() <= i16::MAX as usize {
            2
        } else {
            4
        }
    }

    /// Bytes of the table stored this way: every tier's rows plus the remap (`rows` entries).
    pub fn bytes(&self, rows: usize, dim: usize) -> usize {
        self.levels
            .iter()
            .map(|l| l.rows * l.format.row_bytes(dim))
            .sum::<usize>()
            + rows * self.remap_entry_bytes()
    }

    /// A short description: `8/4/2+prune: fused8 120, fused4 900, fused2 3000, pruned 500`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .levels
            .iter()
            .map(|l| format!("{} {}", l.format.name(), l.rows))
            .collect();
        parts.push(format!("pruned {}", self.pruned));
        format!("{}: {}", self.recipe, parts.join(", "))
    }
}

mod format_name {
    use quantrec_kernels::formats::TableFormat;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &TableFormat, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TableFormat, D::Error> {
        let n = String::deserialize(d)?;
        TableFormat::parse(&n).ok_or_else(|| {
            D::Error::custom(format!(
                "unknown table format {n:?}; expected one of {}",
                TableFormat::ALL.map(|f| f.name()).join(", ")
            ))
        })
    }
}

mod format_names {
    use quantrec_kernels::formats::TableFormat;
    use serde::{Deserialize, Deserializer, Serializer, de::Error, ser::SerializeSeq};

    pub fn serialize<S: Serializer>(v: &[TableFormat], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for f in v {
            seq.serialize_element(f.name())?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TableFormat>, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        names
            .iter()
            .map(|n| {
                TableFormat::parse(n).ok_or_else(|| {
                    D::Error::custom(format!(
                        "unknown table format {n:?}; expected one of {}",
                        TableFormat::ALL.map(|f| f.name()).join(", ")
                    ))
                })
            })
            .collect()
    }
}

impl Plan {
    /// Everything in f32 (the default).
    pub fn f32(config: &ModelConfig) -> Plan {
        Plan::uniform(config, LayerPrecision::F32, TableFormat::F32)
    }

    /// The same precision for every dense layer and the same format for every table.
    pub fn uniform(config: &ModelConfig, layer: LayerPrecision, table: TableFormat) -> Plan {
        Plan {
            bottom: vec![layer; config.bottom_mlp.len()],
            cross: vec![CrossPrecision { v: layer, w: layer }; config.cross_layers()],
            top: vec![layer; config.top_mlp.len()],
            tables: vec![table; config.tables.len()],
            table_refit: false,
            table_curvature: false,
            tiers: Default::default(),
        }
    }

    /// Checks the plan fits `config`: one entry per layer and table, usable static parameters, and
    /// table formats that can store each table's dimension.
    pub fn validate(&self, config: &ModelConfig) -> Result<()> {
        let count = |what: &'static str, expected: usize, found: usize| -> Result<()> {
            if expected != found {
                return Err(ModelError::PlanMismatch {
                    what,
                    expected,
                    found,
                });
            }
            Ok(())
        };
        count(
            "bottom-MLP layers",
            config.bottom_mlp.len(),
            self.bottom.len(),
        )?;
        count("top-MLP layers", config.top_mlp.len(), self.top.len())?;
        count("cross layers", config.cross_layers(), self.cross.len())?;
        count("tables", config.tables.len(), self.tables.len())?;
        for (i, p) in self.bottom.iter().enumerate() {
            p.check(&format!("bottom.{i}"))?;
        }
        for (i, p) in self.top.iter().enumerate() {
            p.check(&format!("top.{i}"))?;
        }
        for (i, c) in self.cross.iter().enumerate() {
            c.v.check(&format!("cross.{i}.v"))?;
            c.w.check(&format!("cross.{i}.w"))?;
        }
        for (t, (f, tc)) in self.tables.iter().zip(&config.tables).enumerate() {
            f.check_dim(tc.dim)
                .map_err(|source| ModelError::PlanTableFormat {
                    table: t,
                    source: Box::new(source),
                })?;
        }
        for (&t, tiers) in &self.tiers {
            let Some(tc) = config.tables.get(t) else {
                return Err(ModelError::TierPlan {
                    table: t,
                    reason: format!("the model has {} tables", config.tables.len()),
                });
            };
            let bad = |reason: String| ModelError::TierPlan { table: t, reason };
            if tiers.stored_rows() + tiers.pruned != tc.rows {
                return Err(bad(format!(
                    "{} stored + {} pruned rows != the table's {} rows",
                    tiers.stored_rows(),
                    tiers.pruned,
                    tc.rows
                )));
            }
            if tiers.stored_rows() > i32::MAX as usize {
                return Err(bad("more stored rows than an i32 remap holds".into()));
            }
            for l in &tiers.levels {
                l.format
                    .check_dim(tc.dim)
                    .map_err(|source| ModelError::PlanTableFormat {
                        table: t,
                        source: Box::new(source),
                    })?;
            }
            if let Some(first) = tiers.levels.first()
                && first.format != self.tables[t]
            {
                return Err(bad(format!(
                    "the plan's format {} is not its hottest tier's ({})",
                    self.tables[t].name(),
                    first.format.name()
                )));
            }
        }
        Ok(())
    }

    /// The tiers of table `t`, if it is tiered.
    pub fn tiers_of(&self, t: usize) -> Option<&TierPlan> {
        self.tiers.get(&t)
    }

    /// Bytes of table `t` stored under this plan (tiers and remap for a tiered table).
    pub fn table_bytes(&self, t: usize, rows: usize, dim: usize) -> usize {
        match self.tiers.get(&t) {
            Some(tiers) => tiers.bytes(rows, dim),
            None => rows * self.tables[t].row_bytes(dim),
        }
    }

    /// The plan as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan always serializes")
    }

    /// Parses a plan from JSON.
    pub fn from_json(s: &str) -> Result<Plan> {
        serde_json::from_str(s).map_err(|source| ModelError::Json {
            what: "precision plan".into(),
            source,
        })
    }
}
