//! Refresh: re-apply a previous recipe (plan) to a new f32 snapshot, recalibrate on the new data,
//! re-validate; when the gate fails, widen the unit the debugger blames, one step at a time
//! (trying the worst-ranked few and keeping the widening that helps most), until the plan passes
//! or nothing is left to widen.

use quantrec_model::{Model, ModelConfig, Plan, Weights};

use crate::builder::ModelBuilder;
use crate::calibrate::{Calibration, RangeMethod, calibrate};
use crate::debug::debug;
use crate::eval::{Comparison, EvalSet};
use crate::plans::{Unit, choice_of, diff, plan_bytes, set_choice, widen};
use crate::search::{Budget, Evaluator};
use crate::{QuantError, Result};

/// Units the debugger ranks worst that are tried per widening step.
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
    /// Gate value of the recipe as re-applied, before any widening.
    pub initial: Comparison,
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

/// Runs the refresh (see the module docs). An unusable recipe (wrong layer or table count) is an
/// error; a recipe that cannot be repaired is an outcome with `passed == false`.
pub fn refresh(req: &RefreshRequest) -> Result<RefreshOutcome> {
    req.previous_plan.validate(&req.config)?;
    let builder = ModelBuilder::new(req.config.clone(), req.weights.clone())?;
    let reference = builder.build(&Plan::f32(&req.config))?;
    let calibration = calibrate(&reference, &req.calib, req.calib_method)?;
    let mut ev = Evaluator::new(&builder, &calibration, &req.eval)?;
    let (mut plan, mut model, initial) = ev.evaluate_model(&req.previous_plan)?;
    let mut comparison = initial.clone();
    let mut steps = Vec::new();
    while !req.budget.passes(&comparison) {
        let report = debug(&model, &reference, &req.eval)?;
        let blamed: Vec<Unit> = report
            .ranked
            .iter()
            .filter_map(|r| Unit::parse(&r.name))
            .filter(|&u| widen(choice_of(&plan, u)).is_some())
            .take(TRY_PER_STEP)
            .collect();
        let mut best: Option<(Unit, Plan, Model, Comparison)> = None;
        for u in blamed {
            let mut trial = plan.clone();
            let wider = widen(choice_of(&plan, u)).expect("filtered on widenable");
            set_choice(&mut trial, u, wider)?;
            let (p, m, c) = ev.evaluate_model(&trial)?;
            let better = best
                .as_ref()
                .is_none_or(|b| req.budget.value(&c) < req.budget.value(&b.3));
            if better {
                best = Some((u, p, m, c));
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
        passed: req.budget.passes(&comparison),
        bytes: plan_bytes(&req.config, &plan),
        plan,
        model,
        initial,
        comparison,
        steps,
        calibration,
    })
}

impl RefreshOutcome {
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
        (!self.passed).then(|| QuantError::NoPlan {
            budget: budget.describe(),
            reason: format!(
                "the recipe could not be repaired: gate {:.4} after widening {}",
                budget.value(&self.comparison),
                self.steps
                    .iter()
                    .map(|s| format!("{} to {}", s.unit, s.to))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }
}
