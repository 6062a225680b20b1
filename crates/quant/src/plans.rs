//! Plan vocabulary of the tool chain: named units (one dense layer or one table), the precision
//! options the search tries, presets, widening one step, and the byte cost of a plan.

use quantrec_kernels::formats::TableFormat;
use quantrec_model::plan::{ActivationPlan, CrossPrecision, LayerPrecision};
use quantrec_model::{ModelConfig, Plan};

use crate::{QuantError, Result};

/// One unit of a plan: a dense layer or a table, named as the model's observer names it
/// (`bottom.{i}`, `top.{i}`, `cross.{l}.v`, `cross.{l}.w`, `table.{t}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Unit {
    /// Bottom-MLP layer `i`.
    Bottom(usize),
    /// Top-MLP layer `i`.
    Top(usize),
    /// `V` product of cross layer `l`.
    CrossV(usize),
    /// `W` product of cross layer `l`.
    CrossW(usize),
    /// Table `t`.
    Table(usize),
}

impl Unit {
    /// The observer / report name.
    pub fn name(self) -> String {
        match self {
            Unit::Bottom(i) => format!("bottom.{i}"),
            Unit::Top(i) => format!("top.{i}"),
            Unit::CrossV(l) => format!("cross.{l}.v"),
            Unit::CrossW(l) => format!("cross.{l}.w"),
            Unit::Table(t) => format!("table.{t}"),
        }
    }

    /// Parses [`Unit::name`].
    pub fn parse(s: &str) -> Option<Unit> {
        let num = |p: &str| s.strip_prefix(p)?.parse::<usize>().ok();
        if let Some(i) = num("bottom.") {
            return Some(Unit::Bottom(i));
        }
        if let Some(i) = num("top.") {
            return Some(Unit::Top(i));
        }
        if let Some(t) = num("table.") {
            return Some(Unit::Table(t));
        }
        let rest = s.strip_prefix("cross.")?;
        let (l, which) = rest.split_once('.')?;
        let l = l.parse().ok()?;
        match which {
            "v" => Some(Unit::CrossV(l)),
            "w" => Some(Unit::CrossW(l)),
            _ => None,
        }
    }

    /// Every unit of `config`, dense layers first.
    pub fn all(config: &ModelConfig) -> Vec<Unit> {
        let mut u: Vec<Unit> = (0..config.bottom_mlp.len()).map(Unit::Bottom).collect();
        for l in 0..config.cross_layers() {
            u.push(Unit::CrossV(l));
            u.push(Unit::CrossW(l));
        }
        u.extend((0..config.top_mlp.len()).map(Unit::Top));
        u.extend((0..config.tables.len()).map(Unit::Table));
        u
    }
}

/// A precision choice for a unit (hashable; static int8 parameters come from calibration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Choice {
    /// A dense-layer precision.
    Layer(LayerChoice),
    /// A table format.
    Table(#[serde(serialize_with = "ser_format")] TableFormat),
}

fn ser_format<S: serde::Serializer>(f: &TableFormat, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(f.name())
}

/// Dense-layer precisions the search tries (int8 always with per-channel weight scales).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum LayerChoice {
    /// f32.
    F32,
    /// f16 weights.
    F16,
    /// bf16 weights and activations.
    Bf16,
    /// int8 per-channel weights, dynamic activations with a range per row
    /// ([`ActivationPlan::DynamicPerRow`]: a row's score never depends on its batch).
    Int8Dynamic,
    /// int8 per-channel weights, calibrated static activations.
    Int8Static,
}

impl LayerChoice {
    /// The plan entry (static parameters are placeholders until [`crate::calibrate::Calibration::apply`]).
    pub fn precision(self) -> LayerPrecision {
        match self {
            LayerChoice::F32 => LayerPrecision::F32,
            LayerChoice::F16 => LayerPrecision::F16,
            LayerChoice::Bf16 => LayerPrecision::Bf16,
            LayerChoice::Int8Dynamic => LayerPrecision::Int8 {
                per_channel: true,
                activations: ActivationPlan::DynamicPerRow,
            },
            LayerChoice::Int8Static => LayerPrecision::Int8 {
                per_channel: true,
                activations: ActivationPlan::Static {
                    scale: 1.0,
                    zero_point: 0,
                },
            },
        }
    }

    /// The choice a plan entry corresponds to.
    pub fn of(p: LayerPrecision) -> LayerChoice {
        match p {
            LayerPrecision::F32 => LayerChoice::F32,
            LayerPrecision::F16 => LayerChoice::F16,
            LayerPrecision::Bf16 => LayerChoice::Bf16,
            LayerPrecision::Int8 {
                activations: ActivationPlan::Dynamic | ActivationPlan::DynamicPerRow,
                ..
            } => LayerChoice::Int8Dynamic,
            LayerPrecision::Int8 { .. } => LayerChoice::Int8Static,
        }
    }
}

/// Dense-layer options the search tries, cheapest last.
pub const LAYER_OPTIONS: [LayerChoice; 3] = [
    LayerChoice::F16,
    LayerChoice::Int8Dynamic,
    LayerChoice::Int8Static,
];

/// Table formats the search tries, cheapest last. `fused8half` (8-bit codes with an f16 scale and
/// bias, FBGEMM's N-bit layout at N = 8) costs 20 bytes per 16-wide row against fused8's 24 for
/// nearly the same error, which matters once tables are small enough that 4-bit rows hurt.
pub const TABLE_OPTIONS: [TableFormat; 5] = [
    TableFormat::F16,
    TableFormat::Fused8,
    TableFormat::Fused8Half,
    TableFormat::Fused4,
    TableFormat::Fused2,
];

/// The choice `plan` makes for `unit`.
pub fn choice_of(plan: &Plan, unit: Unit) -> Choice {
    match unit {
        Unit::Bottom(i) => Choice::Layer(LayerChoice::of(plan.bottom[i])),
        Unit::Top(i) => Choice::Layer(LayerChoice::of(plan.top[i])),
        Unit::CrossV(l) => Choice::Layer(LayerChoice::of(plan.cross[l].v)),
        Unit::CrossW(l) => Choice::Layer(LayerChoice::of(plan.cross[l].w)),
        Unit::Table(t) => Choice::Table(plan.tables[t]),
    }
}

/// Sets `unit` to `choice` in `plan`. Refuses a table format for a layer and the reverse.
pub fn set_choice(plan: &mut Plan, unit: Unit, choice: Choice) -> Result<()> {
    let bad = || QuantError::ChoiceMismatch {
        unit: unit.name(),
        choice: format!("{choice:?}"),
    };
    match (unit, choice) {
        (Unit::Table(t), Choice::Table(f)) => {
            // One format for the whole table: any row tiers it had are dropped.
            plan.tables[t] = f;
            plan.tiers.remove(&t);
        }
        (Unit::Table(_), _) | (_, Choice::Table(_)) => return Err(bad()),
        (Unit::Bottom(i), Choice::Layer(c)) => plan.bottom[i] = c.precision(),
        (Unit::Top(i), Choice::Layer(c)) => plan.top[i] = c.precision(),
        (Unit::CrossV(l), Choice::Layer(c)) => plan.cross[l].v = c.precision(),
        (Unit::CrossW(l), Choice::Layer(c)) => plan.cross[l].w = c.precision(),
    }
    Ok(())
}

/// The next wider (more accurate) choice, or `None` at f32.
pub fn widen(choice: Choice) -> Option<Choice> {
    Some(match choice {
        Choice::Layer(c) => Choice::Layer(match c {
            LayerChoice::Int8Static => LayerChoice::Int8Dynamic,
            LayerChoice::Int8Dynamic => LayerChoice::F16,
            LayerChoice::F16 | LayerChoice::Bf16 => LayerChoice::F32,
            LayerChoice::F32 => return None,
        }),
        Choice::Table(f) => Choice::Table(match f {
            TableFormat::Fused2 => TableFormat::Fused4,
            TableFormat::Fused4 => TableFormat::Fused8,
            TableFormat::Fused8 | TableFormat::Fused8Half => TableFormat::F16,
            TableFormat::F16 | TableFormat::Bf16 => TableFormat::F32,
            TableFormat::F32 => return None,
        }),
    })
}

/// Named comparison plans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Preset {
    /// Every layer f16, every table f16.
    Fp16,
    /// The dlrm repository's recipe: int8 dynamic MLP (per-tensor weights) + 8-bit fused tables.
    Int8Dynamic,
    /// 4-bit fused tables, f32 MLP.
    Int4Tables,
    /// int8 static MLP + 4-bit tables (2-bit where the dimension allows and the table is large).
    Aggressive,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 4] = [
        Preset::Fp16,
        Preset::Int8Dynamic,
        Preset::Int4Tables,
        Preset::Aggressive,
    ];

    /// CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Fp16 => "fp16",
            Preset::Int8Dynamic => "int8-dynamic",
            Preset::Int4Tables => "int4-tables",
            Preset::Aggressive => "aggressive",
        }
    }

    /// Parses [`Preset::name`].
    pub fn parse(s: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == s)
    }

    /// The preset's plan for `config` (static int8 parameters still to be calibrated).
    pub fn plan(self, config: &ModelConfig) -> Plan {
        let fmt_or_f16 = |f: TableFormat, dim: usize| {
            if f.check_dim(dim).is_ok() {
                f
            } else {
                TableFormat::Fused8
            }
        };
        match self {
            Preset::Fp16 => Plan::uniform(config, LayerPrecision::F16, TableFormat::F16),
            Preset::Int8Dynamic => Plan::uniform(
                config,
                LayerPrecision::Int8 {
                    per_channel: false,
                    activations: ActivationPlan::Dynamic,
                },
                TableFormat::Fused8,
            ),
            Preset::Int4Tables => {
                let mut p = Plan::f32(config);
                for (f, t) in p.tables.iter_mut().zip(&config.tables) {
                    *f = fmt_or_f16(TableFormat::Fused4, t.dim);
                }
                p
            }
            Preset::Aggressive => {
                let mut p = Plan::uniform(
                    config,
                    LayerChoice::Int8Static.precision(),
                    TableFormat::Fused4,
                );
                let median_rows = {
                    let mut r: Vec<usize> = config.tables.iter().map(|t| t.rows).collect();
                    r.sort_unstable();
                    r.get(r.len() / 2).copied().unwrap_or(0)
                };
                for (f, t) in p.tables.iter_mut().zip(&config.tables) {
                    let want = if t.rows > median_rows {
                        TableFormat::Fused2
                    } else {
                        TableFormat::Fused4
                    };
                    *f = fmt_or_f16(want, t.dim);
                }
                p
            }
        }
    }
}

/// Bytes of `unit`'s parameters under `plan`, as the artifact stores them
/// ([`quantrec_model::parts`], the one count).
pub fn unit_bytes(config: &ModelConfig, plan: &Plan, unit: Unit) -> u64 {
    use quantrec_model::parts;
    match unit {
        Unit::Bottom(i) => parts::bottom_part(config, plan, i).bytes,
        Unit::Top(i) => parts::top_part(config, plan, i).bytes,
        Unit::CrossV(l) => parts::cross_part(config, plan, l, false).bytes,
        Unit::CrossW(l) => parts::cross_part(config, plan, l, true).bytes,
        Unit::Table(t) => parts::table_part(config, plan, t).bytes,
    }
}

/// Bytes of every parameter under `plan`.
pub fn plan_bytes(config: &ModelConfig, plan: &Plan) -> u64 {
    Unit::all(config)
        .into_iter()
        .map(|u| unit_bytes(config, plan, u))
        .sum()
}

/// A one-line summary such as `bottom f32,f16 | top int8-static/pc,f32 | tables 20×fused4 6×fused8`.
pub fn summary(plan: &Plan) -> String {
    let layers = |v: &[LayerPrecision]| {
        v.iter()
            .map(|p| p.short_name())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in &plan.tables {
        *counts.entry(f.name()).or_default() += 1;
    }
    let tables = counts
        .iter()
        .map(|(f, n)| format!("{n}×{f}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut s = format!(
        "bottom {} | top {}",
        layers(&plan.bottom),
        layers(&plan.top)
    );
    if !plan.cross.is_empty() {
        let c: Vec<LayerPrecision> = plan.cross.iter().flat_map(|c| [c.v, c.w]).collect();
        s.push_str(&format!(" | cross {}", layers(&c)));
    }
    let tiers = if plan.tiers.is_empty() {
        String::new()
    } else {
        format!(" ({} in row tiers)", plan.tiers.len())
    };
    s + &format!(" | tables {tables}{tiers}")
}

/// The plan's entry for every unit that differs from `other`, as `(unit, this, other)` names.
pub fn diff(plan: &Plan, other: &Plan) -> Vec<(String, String, String)> {
    let name = |c: Choice, p: Option<LayerPrecision>| match (c, p) {
        (Choice::Table(f), _) => f.name().to_string(),
        (_, Some(p)) => match p {
            LayerPrecision::Int8 {
                activations: ActivationPlan::Static { scale, zero_point },
                ..
            } => format!("{} (scale {scale:.4e}, zp {zero_point})", p.short_name()),
            _ => p.short_name(),
        },
        _ => format!("{c:?}"),
    };
    let entry = |p: &Plan, u: Unit| -> Option<LayerPrecision> {
        match u {
            Unit::Bottom(i) => p.bottom.get(i).copied(),
            Unit::Top(i) => p.top.get(i).copied(),
            Unit::CrossV(l) => p.cross.get(l).map(|c: &CrossPrecision| c.v),
            Unit::CrossW(l) => p.cross.get(l).map(|c| c.w),
            Unit::Table(_) => None,
        }
    };
    let units = units_of(plan);
    units
        .into_iter()
        .filter_map(|u| {
            let (a, b) = (entry(plan, u), entry(other, u));
            let (ca, cb) = (choice_of(plan, u), choice_of(other, u));
            let same = match u {
                Unit::Table(_) => ca == cb,
                _ => a == b,
            };
            (!same).then(|| (u.name(), name(ca, a), name(cb, b)))
        })
        .collect()
}

/// The units a plan has entries for.
pub fn units_of(plan: &Plan) -> Vec<Unit> {
    let mut u: Vec<Unit> = (0..plan.bottom.len()).map(Unit::Bottom).collect();
    for l in 0..plan.cross.len() {
        u.push(Unit::CrossV(l));
        u.push(Unit::CrossW(l));
    }
    u.extend((0..plan.top.len()).map(Unit::Top));
    u.extend((0..plan.tables.len()).map(Unit::Table));
    u
}
