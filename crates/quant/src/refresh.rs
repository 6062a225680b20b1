//! Refresh: re-apply a previous recipe (plan) to a new f32 snapshot, recalibrate on the new data,
//! re-validate; when the gate fails, widen the unit the debugger blames, one step at a time
//! (trying the worst-ranked few and keeping the widening that helps most; further down the
//! ranking while none of them improves the gate), until the plan passes or nothing is left to
//! widen.
//!
//! With [`RefreshRequest::keep_static`] the previous artifact's static activation parameters are
//! kept as they are instead of recalibrated (what swapping in new weights under an old artifact's
//! parameters does); the outcome then shows each static layer's previous input range next to the
//! range the new data needs, and widening a blamed static layer to dynamic activations is the
//! repair.

use quantrec_model::plan::{ActivationPlan, LayerPrecision};
use quantrec_model::{Model, ModelConfig, Plan, Weights};

use crate::builder::ModelBuilder;
use crate::calibrate::{Calibration, RangeMethod, calibrate};
use crate::debug::debug;
use crate::eval::{Comparison, EvalSet, metrics_of, predictions};
use crate::plans::{Unit, choice_of, diff, plan_bytes, set_choice, widen};
use crate::search::Budget;
use crate::{QuantError, Result};

/// Units the debugger ranks worst that are tried at once per widening step.
const TRY_PER_STEP: usize = 3;

/// Everything [`refresh`] needs.
#[derive(Clone, Debug)]
pub struct RefreshRequest {
    /// The previous artifact's plan (the recipe).
    pub previous_plan: Plan,
    /// ΔNE (%) the previous artifact recorded, if known.
    pub previous_delta_ne_pct: Option<f64>,
    /// Architecture of the new snapshot (must fit the previous plan).
    pub config: ModelConfig,
    /// f32 weights of the new snapshot.
    pub weights: Weights,
    /// New calibration samples.
    pub calib: EvalSet,
    /// New evaluation samples.
    pub eval: EvalSet,
    /// The gate.
    pub budget: Budget,
    /// Range rule of static activations.
    pub calib_method: RangeMethod,
    /// Keep the previous plan's static activation parameters instead of recalibrating them.
    pub keep_static: bool,
}

/// A unit the debugger ranked worst when the re-applied recipe failed the gate.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Blame {
    /// The unit.
    pub unit: String,
    /// Its precision in the recipe.
    pub precision: String,
    /// SQNR (dB) of the unit fed the reference input.
    pub sqnr_db: Option<f64>,
    /// Relative L2 error of its output on its own pipeline.
    pub rel_l2: f64,
}

/// A static int8 layer's input range: in the recipe, and as calibrated on the new data.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RangeShift {
    /// The layer.
    pub layer: String,
    /// `[lo, hi]` the recipe's parameters represent.
    pub previous: [f32; 2],
    /// `[lo, hi]` calibrated on the new data.
    pub new: [f32; 2],
}

fn u8_range(a: ActivationPlan) -> Option<[f32; 2]> {
    match a {
        ActivationPlan::Static { scale, zero_point } => Some([
            (0 - zero_point) as f32 * scale,
            (255 - zero_point) as f32 * scale,
        ]),
        ActivationPlan::Dynamic | ActivationPlan::DynamicPerRow => None,
    }
}

/// Static int8 layers of `previous` with their range there and in `recalibrated`.
fn range_shifts(previous: &Plan, recalibrated: &Plan) -> Vec<RangeShift> {
    let static_of = |p: LayerPrecision| match p {
        LayerPrecision::Int8 { activations, .. } => u8_range(activations),
        _ => None,
    };
    let layers = |p: &Plan| -> Vec<(String, LayerPrecision)> {
        let mut v: Vec<(String, LayerPrecision)> = Vec::new();
        v.extend(
            p.bottom
                .iter()
                .enumerate()
                .map(|(i, &x)| (format!("bottom.{i}"), x)),
        );
        for (l, c) in p.cross.iter().enumerate() {
            v.push((format!("cross.{l}.v"), c.v));
            v.push((format!("cross.{l}.w"), c.w));
        }
        v.extend(
            p.top
                .iter()
                .enumerate()
                .map(|(i, &x)| (format!("top.{i}"), x)),
        );
        v
    };
    layers(previous)
        .into_iter()
        .zip(layers(recalibrated))
        .filter_map(|((layer, a), (_, b))| {
            Some(RangeShift {
                layer,
                previous: static_of(a)?,
                new: static_of(b)?,
            })
        })
        .collect()
}

/// One widening.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct WidenStep {
    /// The unit widened.
    pub unit: String,
    /// Its precision before.
    pub from: String,
    /// Its precision after.
    pub to: String,
    /// Gate value after the step.
    pub gate_after: f64,
}

/// What [`refresh`] produced.
#[derive(Clone, Debug)]
pub struct RefreshOutcome {
    /// The final plan.
    pub plan: Plan,
    /// Its model.
    pub model: Model,
    /// Its weights as they are to be saved (tables encoded in the plan's formats).
    pub weights: Weights,
    /// Gate value of the recipe as re-applied, before any widening.
    pub initial: Comparison,
    /// Why the re-applied recipe failed: the units the debugger ranked worst (empty when it
    /// passed).
    pub blame: Vec<Blame>,
    /// Every static int8 layer of the recipe: its input range then and on the new data.
    pub ranges: Vec<RangeShift>,
    /// Accuracy of the final plan.
    pub comparison: Comparison,
    /// Whether the final plan passes the gate.
    pub passed: bool,
    /// Widenings made, in order.
    pub steps: Vec<WidenStep>,
    /// Bytes of the final plan.
    pub bytes: u64,
    /// The calibration on the new data.
    pub calibration: Calibration,
}

/// The ΔNE (%) an artifact recorded in its provenance notes (`delta_ne_pct`), if any.
pub fn recorded_delta_ne_pct(p: &quantrec_model::artifact::Provenance) -> Option<f64> {
    let notes: serde_json::Value = serde_json::from_str(p.notes.as_deref()?).ok()?;
    notes.get("delta_ne_pct")?.as_f64()
}

/// Runs the refresh (see the module docs). An unusable recipe (wrong layer or table count) is an
/// error; a recipe that cannot be repaired is an outcome with `passed == false`.
pub fn refresh(req: &RefreshRequest) -> Result<RefreshOutcome> {
    req.previous_plan.validate(&req.config)?;
    let builder = ModelBuilder::new(req.config.clone(), req.weights.clone())?
        .with_table_refit(req.previous_plan.table_refit)
        .with_curvature_measured_on(req.previous_plan.table_curvature, &req.calib)?
        .with_row_ranking_measured_on(&req.calib)?;
    // Row tiers are re-split by their recipes on the new calibration data's row frequencies.
    let previous = match builder.row_ranking() {
        Some(r) if !req.previous_plan.tiers.is_empty() => {
            crate::search::tiers::resplit(&req.previous_plan, &req.config, r)?
        }
        _ => req.previous_plan.clone(),
    };
    let reference = builder.build(&Plan::f32(&req.config))?;
    let calibration = calibrate(&reference, &req.calib, req.calib_method)?;
    let ref_metrics = metrics_of(&predictions(&reference, &req.eval)?, &req.eval)?;
    let evaluate = |plan: &Plan| -> Result<(Plan, Model, Comparison)> {
        let plan = if req.keep_static {
            plan.clone()
        } else {
            calibration.apply(plan)?
        };
        let model = builder.build(&plan)?;
        let m = metrics_of(&predictions(&model, &req.eval)?, &req.eval)?;
        Ok((plan, model, Comparison::new(&m, &ref_metrics)?))
    };
    let ranges = range_shifts(&previous, &calibration.apply(&previous)?);
    let (mut plan, mut model, initial) = evaluate(&previous)?;
    let mut comparison = initial.clone();
    let mut steps = Vec::new();
    let mut blame = Vec::new();
    while !req.budget.passes(&comparison) {
        let report = debug(&model, &reference, &req.eval)?;
        if steps.is_empty() {
            blame = report
                .ranked
                .iter()
                .filter(|r| r.precision != "f32")
                .take(TRY_PER_STEP)
                .map(|r| Blame {
                    unit: r.name.clone(),
                    precision: r.precision.clone(),
                    sqnr_db: r.isolated.map(|e| e.sqnr_db).filter(|x| x.is_finite()),
                    rel_l2: r.propagated.rel_l2,
                })
                .collect();
        }
        let blamed: Vec<Unit> = report
            .ranked
            .iter()
            .filter_map(|r| Unit::parse(&r.name))
            .filter(|&u| widen(choice_of(&plan, u)).is_some())
            .collect();
        let current = req.budget.value(&comparison);
        let mut best: Option<(Unit, Plan, Model, Comparison)> = None;
        // The worst-ranked few first; further down the ranking only while none of them improves
        // the gate (quantization errors of different units partly cancel, so widening one can
        // make the model worse).
        for chunk in blamed.chunks(TRY_PER_STEP) {
            for &u in chunk {
                let mut trial = plan.clone();
                let wider = widen(choice_of(&plan, u)).expect("filtered on widenable");
                set_choice(&mut trial, u, wider)?;
                let (p, m, c) = evaluate(&trial)?;
                let better = best
                    .as_ref()
                    .is_none_or(|b| req.budget.value(&c) < req.budget.value(&b.3));
                if better {
                    best = Some((u, p, m, c));
                }
            }
            if best
                .as_ref()
                .is_some_and(|b| req.budget.value(&b.3) < current)
            {
                break;
            }
        }
        let Some((u, p, m, c)) = best else {
            break;
        };
        let name = |pl: &Plan| {
            diff(pl, &Plan::f32(&req.config))
                .into_iter()
                .find(|d| d.0 == u.name())
                .map_or_else(|| "f32".to_string(), |d| d.1)
        };
        steps.push(WidenStep {
            unit: u.name(),
            from: name(&plan),
            to: name(&p),
            gate_after: req.budget.value(&c),
        });
        (plan, model, comparison) = (p, m, c);
    }
    Ok(RefreshOutcome {
        weights: builder.weights_for(&plan)?,
        passed: req.budget.passes(&comparison),
        bytes: plan_bytes(&req.config, &plan),
        plan,
        model,
        initial,
        blame,
        ranges,
        comparison,
        steps,
        calibration,
    })
}

impl RefreshOutcome {
    /// The refreshed artifact's provenance: the snapshot it came from (`snapshot`, its SHA-256),
    /// the calibration, NE against f32, and in its notes the previous artifact, the data (as
    /// [`crate::load::data_provenance`] describes it), ΔNE/ΔAUC, bytes, widenings and blame.
    pub fn provenance(
        &self,
        req: &RefreshRequest,
        previous: &std::path::Path,
        snapshot: (&std::path::Path, &str),
        data: serde_json::Value,
    ) -> quantrec_model::artifact::Provenance {
        let c = &self.comparison;
        let notes = serde_json::json!({
            "tool": "quantrec refresh",
            "previous": previous.display().to_string(),
            "data": data,
            "delta_ne_pct": c.delta_ne_pct,
            "delta_auc": c.delta_auc,
            "bytes_quantized": self.bytes,
            "widened": self.steps,
            "blamed": self.blame,
            "kept_static_parameters": req.keep_static,
        });
        crate::workflow::provenance_of(
            Some((snapshot.0.display().to_string(), snapshot.1.to_string())),
            &self.calibration,
            c,
            notes,
        )
    }

    /// A readable diff against the previous artifact: plan entries that changed (static
    /// parameters included), bytes, and ΔNE.
    pub fn diff_text(&self, req: &RefreshRequest) -> String {
        let mut s = String::new();
        let d = diff(&self.plan, &req.previous_plan);
        if d.is_empty() {
            s.push_str("plan: unchanged\n");
        }
        for (u, new, old) in d {
            s.push_str(&format!("plan: {u}: {old} -> {new}\n"));
        }
        let old_bytes = plan_bytes(&req.config, &req.previous_plan);
        s.push_str(&format!("bytes: {old_bytes} -> {}\n", self.bytes));
        let prev = req
            .previous_delta_ne_pct
            .map_or_else(|| "unknown".to_string(), |x| format!("{x:+.4}%"));
        s.push_str(&format!(
            "ΔNE: previous artifact {prev}; recipe on the new snapshot {:+.4}%; final {:+.4}% ({})\n",
            self.initial.delta_ne_pct,
            self.comparison.delta_ne_pct,
            if self.passed { "passes" } else { "FAILS" }
        ));
        if req.keep_static {
            s.push_str("static activation parameters: kept from the previous artifact\n");
        }
        for r in &self.ranges {
            s.push_str(&format!(
                "input range of {}: previous [{:.4}, {:.4}], new data [{:.4}, {:.4}]\n",
                r.layer, r.previous[0], r.previous[1], r.new[0], r.new[1]
            ));
        }
        for b in &self.blame {
            s.push_str(&format!(
                "blamed {} ({}): SQNR {}, relative L2 error {:.4}\n",
                b.unit,
                b.precision,
                b.sqnr_db
                    .map_or_else(|| "n/a".to_string(), |x| format!("{x:.1} dB")),
                b.rel_l2
            ));
        }
        for st in &self.steps {
            s.push_str(&format!(
                "widened {}: {} -> {} (gate {:.4})\n",
                st.unit, st.from, st.to, st.gate_after
            ));
        }
        s
    }

    /// The failure as an error (for callers that must not write anything).
    pub fn failure(&self, budget: Budget) -> Option<QuantError> {
        (!self.passed).then(|| QuantError::Unrepairable {
            budget,
            gate: budget.value(&self.comparison),
            widened: self
                .steps
                .iter()
                .map(|s| (s.unit.clone(), s.to.clone()))
                .collect(),
        })
    }
}
