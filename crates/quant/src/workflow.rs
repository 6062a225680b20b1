//! The automatic workflow: calibrate → search (or apply a given plan / preset) → validate on the
//! evaluation set → the quantized model with its plan and provenance. [`quantize`] works on
//! in-memory data (the demo calls it directly); the CLI reads files into [`EvalSet`]s first.

use quantrec_data::metrics::Metrics;
use quantrec_model::artifact::Provenance;
use quantrec_model::{Model, ModelConfig, Plan, Weights};

use crate::builder::ModelBuilder;
use crate::calibrate::{Calibration, RangeMethod, calibrate};
use crate::debug::debug;
use crate::eval::{Comparison, EvalSet};
use crate::plans::{Preset, plan_bytes, summary};
use crate::search::{Budget, Evaluator, SearchOptions, SearchOutcome, search};
use crate::{QuantError, Result};

/// Which plan to use.
#[derive(Clone, Debug, PartialEq)]
pub enum PlanRequest {
    /// Search for the cheapest plan within the budget.
    Auto,
    /// A named preset.
    Preset(Preset),
    /// A given plan (static parameters are recalibrated).
    Given(Plan),
}

impl PlanRequest {
    /// Parses `auto`, a preset name, or reads a plan JSON file.
    pub fn parse(s: &str) -> Result<PlanRequest> {
        if s == "auto" {
            return Ok(PlanRequest::Auto);
        }
        if let Some(p) = Preset::parse(s) {
            return Ok(PlanRequest::Preset(p));
        }
        let text = std::fs::read_to_string(s).map_err(|source| QuantError::PlanSpec {
            spec: s.to_string(),
            source,
        })?;
        Ok(PlanRequest::Given(Plan::from_json(&text)?))
    }
}

/// Everything [`quantize`] needs.
#[derive(Clone, Debug)]
pub struct QuantizeRequest {
    /// The architecture.
    pub config: ModelConfig,
    /// The f32 weights.
    pub weights: Weights,
    /// Calibration samples.
    pub calib: EvalSet,
    /// Evaluation samples (labelled).
    pub eval: EvalSet,
    /// Plan choice.
    pub plan: PlanRequest,
    /// Budget, objective, latency batch.
    pub search: SearchOptions,
    /// Range rule of static activations.
    pub calib_method: RangeMethod,
}

/// What [`quantize`] produced.
#[derive(Debug, Clone)]
pub struct QuantizeOutcome {
    /// The plan (static parameters calibrated).
    pub plan: Plan,
    /// The quantized model, ready to run.
    pub model: Model,
    /// Its weights as they are to be saved (tables encoded in the plan's formats, e.g. with the
    /// curvature-aware rounding, which needs the calibration data and so cannot be redone from
    /// the plan alone).
    pub weights: Weights,
    /// Its accuracy against the f32 model on the evaluation set.
    pub comparison: Comparison,
    /// The f32 model's metrics on the evaluation set.
    pub reference: Metrics,
    /// Bytes of the f32 parameters.
    pub bytes_f32: u64,
    /// Bytes of the quantized parameters.
    pub bytes_quantized: u64,
    /// The search, when the plan was searched.
    pub search: Option<SearchOutcome>,
    /// The calibration.
    pub calibration: Calibration,
    /// The gate the plan was validated against (searched, preset or given).
    pub budget: Budget,
}

impl QuantizeOutcome {
    /// Provenance for the artifact: calibration, NE, and a JSON note with rows, ΔNE, ΔAUC, bytes
    /// and `data` (e.g. the data files' SHA-256).
    pub fn provenance(
        &self,
        source: Option<(String, String)>,
        data: serde_json::Value,
    ) -> Provenance {
        let c = &self.comparison;
        let notes = serde_json::json!({
            "tool": "quantrec quantize",
            "data": data,
            "calibration_rows": self.calibration.rows,
            "delta_ne_pct": c.delta_ne_pct,
            "delta_auc": c.delta_auc,
            "auc": c.auc,
            "auc_reference": c.auc_reference,
            "auc_ratio": crate::search::plan_search::auc_ratio(c),
            "calibration": c.calibration,
            "bytes_f32": self.bytes_f32,
            "bytes_quantized": self.bytes_quantized,
            "budget": self.budget.describe(),
        });
        provenance_of(source, &self.calibration, c, notes)
    }
}

/// An artifact's provenance: its source (file, SHA-256), the calibration it used, its NE and the
/// f32 reference's, and the tool's notes (JSON).
pub fn provenance_of(
    source: Option<(String, String)>,
    calibration: &Calibration,
    c: &Comparison,
    notes: serde_json::Value,
) -> Provenance {
    Provenance {
        source_file: source.as_ref().map(|s| s.0.clone()),
        source_sha256: source.map(|s| s.1),
        calibration: Some(format!(
            "{} samples, range rule {:?}",
            calibration.rows, calibration.method
        )),
        ne: Some(c.ne),
        ne_reference: Some(c.ne_reference),
        notes: Some(notes.to_string()),
    }
}

/// Names the units that keep a plan from meeting `budget`: the debugger's worst units.
pub fn blame(
    builder: &ModelBuilder,
    model: &Model,
    data: &EvalSet,
    budget: Budget,
    c: &Comparison,
) -> Result<String> {
    Ok(format!(
        "the plan reaches {:.4} against {}; {}",
        budget.value(c),
        budget.describe(),
        blamed(builder, model, data)?
    ))
}

/// `the debugger blames <up to three layers with their SQNR>`, worst first.
fn blamed(builder: &ModelBuilder, model: &Model, data: &EvalSet) -> Result<String> {
    let reference = builder.build(&Plan::f32(builder.config()))?;
    let report = debug(model, &reference, data)?;
    let worst: Vec<String> = report
        .ranked
        .iter()
        .filter(|r| r.isolated.is_some_and(|e| e.sqnr_db.is_finite()))
        .take(3)
        .map(|r| {
            format!(
                "{} ({}, SQNR {:.1} dB)",
                r.name,
                r.precision,
                r.isolated.map_or(f64::NAN, |e| e.sqnr_db)
            )
        })
        .collect();
    Ok(format!("the debugger blames {}", worst.join(", ")))
}

/// Runs the workflow (see the module docs). Fails with [`QuantError::NoPlan`] when no plan
/// (other than f32 itself, for `auto`) meets the budget, naming the problem layers.
pub fn quantize(req: &QuantizeRequest) -> Result<QuantizeOutcome> {
    let refit =
        req.search.table_refit || matches!(&req.plan, PlanRequest::Given(p) if p.table_refit);
    let curved = req.search.table_curvature
        || matches!(&req.plan, PlanRequest::Given(p) if p.table_curvature);
    let builder = ModelBuilder::new(req.config.clone(), req.weights.clone())?
        .with_table_refit(refit)
        .with_curvature_measured_on(curved, &req.calib)?
        .with_row_ranking_measured_on(&req.calib)?;
    let f32_plan = Plan::f32(&req.config);
    let f32_model = builder.build(&f32_plan)?;
    let calibration = calibrate(&f32_model, &req.calib, req.calib_method)?;
    let budget = req.search.budget;
    let (plan, search_outcome) = match &req.plan {
        PlanRequest::Auto => {
            let s = search(&builder, &calibration, &req.eval, &req.search)?;
            if s.chosen().plan == f32_plan {
                let mut worst: Vec<(String, f64)> = Vec::new();
                for sens in &s.sensitivity {
                    match worst.iter_mut().find(|w| w.0 == sens.unit) {
                        Some(w) => w.1 = w.1.min(sens.gate),
                        None => worst.push((sens.unit.clone(), sens.gate)),
                    }
                }
                worst.sort_by(|a, b| b.1.total_cmp(&a.1));
                worst.truncate(8);
                return Err(QuantError::NoPlan {
                    budget,
                    over_budget: worst,
                });
            }
            (s.chosen().plan.clone(), Some(s))
        }
        PlanRequest::Preset(p) => (p.plan(&req.config), None),
        PlanRequest::Given(p) => (p.clone(), None),
    };
    // A given plan's tiers are re-split on this calibration data by their recorded recipes.
    let plan = match builder.row_ranking() {
        Some(r) if !plan.tiers.is_empty() && search_outcome.is_none() => {
            crate::search::tiers::resplit(&plan, &req.config, r)?
        }
        _ => plan,
    };
    let mut plan = plan;
    plan.table_refit = refit;
    plan.table_curvature = curved;
    let mut ev = Evaluator::new(&builder, &calibration, &req.eval)?;
    let (plan, model, comparison) = ev.evaluate_model(&plan)?;
    if !budget.passes(&comparison) {
        return Err(QuantError::PlanOverBudget {
            budget,
            plan: summary(&plan),
            gate: budget.value(&comparison),
            blame: blamed(&builder, &model, &req.eval)?,
        });
    }
    Ok(QuantizeOutcome {
        weights: builder.weights_for(&plan)?,
        bytes_f32: plan_bytes(&req.config, &f32_plan),
        bytes_quantized: plan_bytes(&req.config, &plan),
        reference: ev.reference.clone(),
        plan,
        model,
        comparison,
        search: search_outcome,
        calibration,
        budget,
    })
}
