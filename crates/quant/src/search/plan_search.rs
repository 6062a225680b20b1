//! Precision search on a real model: sensitivity of every unit at every candidate precision,
//! greedy assignment ([`greedy_walks`], up to [`SEARCH_WALKS`] walks) validating each combined
//! plan's measured accuracy with back-off, presets for comparison, every evaluated plan recorded,
//! Pareto frontier and the cheapest plan within the budget.

use std::collections::HashMap;
use std::time::Instant;

use quantrec_data::metrics::Metrics;
use quantrec_model::{Model, Plan};

use super::greedy::{Assignment, Candidate, EvalCache, SEARCH_WALKS, greedy_walks};
use super::pareto::{Objective, PlanPoint, pareto_front, scalar_costs};
use crate::builder::ModelBuilder;
use crate::calibrate::Calibration;
use crate::cost::CostModel;
use crate::eval::{Comparison, EvalSet, metrics_of, predictions};
use crate::plans::{Choice, LAYER_OPTIONS, Preset, TABLE_OPTIONS, Unit, plan_bytes, set_choice};
use crate::{QuantError, Result};

/// The accuracy gate.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Budget {
    /// Largest relative NE increase, in percent (0.02 = 0.02%).
    Ne(f64),
    /// Largest AUC drop, in AUC units (0.0005 = 0.05 points).
    Auc(f64),
    /// A ΔNE budget and MLPerf's accuracy criterion together: ΔNE at most `ne` percent **and**
    /// the quantized AUC at least `min_auc_ratio` × the f32 AUC (MLPerf's DLRM rule is 0.999).
    NeAucRatio {
        /// Largest relative NE increase, in percent.
        ne: f64,
        /// Smallest quantized / f32 AUC ratio.
        min_auc_ratio: f64,
    },
}

impl Budget {
    /// The gated quantity of a comparison (larger is worse): ΔNE %, the AUC drop, or for
    /// [`Budget::NeAucRatio`] `max(ΔNE %, ne + 100 · (min_auc_ratio − AUC / f32 AUC))` — the ΔNE
    /// while the AUC ratio holds, past the limit by the ratio's shortfall in percent when not.
    pub fn value(self, c: &Comparison) -> f64 {
        match self {
            Budget::Ne(_) => c.delta_ne_pct,
            Budget::Auc(_) => -c.delta_auc,
            Budget::NeAucRatio { ne, min_auc_ratio } => c
                .delta_ne_pct
                .max(ne + 100.0 * (min_auc_ratio - auc_ratio(c))),
        }
    }

    /// The limit.
    pub fn limit(self) -> f64 {
        match self {
            Budget::Ne(x) | Budget::Auc(x) => x,
            Budget::NeAucRatio { ne, .. } => ne,
        }
    }

    /// Whether `c` passes.
    pub fn passes(self, c: &Comparison) -> bool {
        match self {
            Budget::NeAucRatio { ne, min_auc_ratio } => {
                c.delta_ne_pct <= ne && auc_ratio(c) >= min_auc_ratio
            }
            _ => self.value(c) <= self.limit(),
        }
    }

    /// This budget with MLPerf's AUC-ratio criterion added (`None` leaves it unchanged). Only a
    /// ΔNE budget combines with it.
    pub fn with_min_auc_ratio(self, ratio: Option<f64>) -> Result<Budget> {
        let Some(r) = ratio else {
            return Ok(self);
        };
        if !(r.is_finite() && r > 0.0 && r <= 1.0) {
            return Err(QuantError::MinAucRatioOutOfRange { value: r });
        }
        match self {
            Budget::Ne(ne) | Budget::NeAucRatio { ne, .. } => Ok(Budget::NeAucRatio {
                ne,
                min_auc_ratio: r,
            }),
            Budget::Auc(_) => Err(QuantError::MinAucRatioWithAucBudget),
        }
    }

    /// E.g. `ΔNE <= 0.02%`, `ΔNE <= 0.02% and AUC >= 0.999 × f32 AUC`.
    pub fn describe(self) -> String {
        match self {
            Budget::Ne(x) => format!("ΔNE <= {x}%"),
            Budget::Auc(x) => format!("AUC drop <= {x}"),
            Budget::NeAucRatio { ne, min_auc_ratio } => {
                format!("ΔNE <= {ne}% and AUC >= {min_auc_ratio} × f32 AUC")
            }
        }
    }
}

/// Quantized AUC / f32 AUC (1 when the reference AUC is 0).
pub fn auc_ratio(c: &Comparison) -> f64 {
    if c.auc_reference > 0.0 {
        c.auc / c.auc_reference
    } else {
        1.0
    }
}

/// One evaluated plan.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Evaluated {
    /// `f32`, a preset name, `sens:table.3=fused4`, or `greedy#k`.
    pub name: String,
    /// The plan (static parameters calibrated).
    pub plan: Plan,
    /// Bytes of its parameters.
    pub bytes: u64,
    /// Predicted latency of one benchmark batch (s).
    pub latency_s: f64,
    /// Accuracy against the f32 reference.
    pub comparison: Comparison,
    /// Whether it meets the budget.
    pub within_budget: bool,
    /// Whether it was measured on the whole evaluation set (sensitivity points use a subset and
    /// are not eligible as the choice).
    pub full_set: bool,
}

/// The standalone cost of one option for one unit.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Sensitivity {
    /// The unit (`table.3`, `bottom.0`, ...).
    pub unit: String,
    /// The option (`fused4`, `int8-static/pc`, ...).
    pub option: String,
    /// Gate value (ΔNE % or AUC drop) with only this option applied.
    pub gate: f64,
    /// ΔNE % with only this option applied.
    pub delta_ne_pct: f64,
    /// Bytes saved against f32.
    pub bytes_saved: u64,
    /// Predicted seconds saved per benchmark batch.
    pub latency_saved_s: f64,
}

/// How to search.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchOptions {
    /// The accuracy gate.
    pub budget: Budget,
    /// Which cost to minimize.
    pub objective: Objective,
    /// Samples per batch of the latency model.
    pub latency_batch: usize,
    /// Also evaluate the presets (they compete for the choice).
    pub presets: bool,
    /// Samples the one-unit-at-a-time sensitivity runs on (the first pooled batches covering at
    /// least this many; combined plans are always validated on the whole set).
    pub sensitivity_rows: usize,
    /// Encode N-bit tables with the least-squares refit of their scale and bias (`Plan::table_refit`;
    /// applied by [`crate::workflow::quantize`]'s model builder).
    pub table_refit: bool,
    /// Re-round N-bit table rows in the loss's curvature on the calibration data
    /// (`Plan::table_curvature`, [`crate::table_curvature`]; applied by
    /// [`crate::workflow::quantize`]'s model builder).
    pub table_curvature: bool,
    /// After the greedy walks (bytes objective), try frequency-aware row tiers on the chosen
    /// plan's tables ([`super::tiers`]; needs the builder's row ranking).
    pub tiers: bool,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            budget: Budget::Ne(0.02),
            objective: Objective::Bytes,
            latency_batch: 256,
            presets: true,
            sensitivity_rows: 16_384,
            table_refit: false,
            table_curvature: true,
            tiers: true,
        }
    }
}

/// What the search found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SearchOutcome {
    /// Every evaluated plan (index 0 is the f32 baseline).
    pub evaluated: Vec<Evaluated>,
    /// Index of the chosen plan (cheapest within budget; the baseline if nothing else is).
    pub chosen: usize,
    /// Indices of the Pareto frontier under the objective.
    pub front: Vec<usize>,
    /// Standalone measurements.
    pub sensitivity: Vec<Sensitivity>,
    /// The budget.
    pub budget: Budget,
    /// The objective.
    pub objective: Objective,
    /// Model evaluations made (cache misses).
    pub model_evaluations: usize,
    /// Evaluations answered by the cache.
    pub cache_hits: usize,
    /// Wall time of the search (s).
    pub seconds: f64,
    /// The measured cost model.
    pub cost_model: CostModel,
}

impl SearchOutcome {
    /// The chosen plan's record.
    pub fn chosen(&self) -> &Evaluated {
        &self.evaluated[self.chosen]
    }

    /// The cheapest whole-set plan within the budget that stores every table in one format (no
    /// row tiers): what the tiers are measured against.
    pub fn best_untiered(&self) -> Option<&Evaluated> {
        self.evaluated
            .iter()
            .filter(|e| e.within_budget && e.full_set && e.plan.tiers.is_empty())
            .min_by_key(|e| e.bytes)
    }

    /// Every evaluated plan as a point for the Pareto tools (the gate value as ΔNE for an AUC
    /// budget).
    pub fn points(&self) -> Vec<PlanPoint> {
        points_of(&self.evaluated, self.budget)
    }
}

/// Evaluates plans against one reference on one evaluation set, caching by plan.
pub struct Evaluator<'a> {
    /// Builds candidate models.
    pub builder: &'a ModelBuilder,
    /// Static activation parameters.
    pub calibration: &'a Calibration,
    /// Evaluation samples.
    pub data: &'a EvalSet,
    /// The f32 reference's metrics on `data`.
    pub reference: Metrics,
    cache: HashMap<String, Comparison>,
    /// Evaluations that ran a model.
    pub runs: usize,
}

impl<'a> Evaluator<'a> {
    /// Evaluates the f32 model of `builder` on `data` as the reference.
    pub fn new(
        builder: &'a ModelBuilder,
        calibration: &'a Calibration,
        data: &'a EvalSet,
    ) -> Result<Evaluator<'a>> {
        let f32_model = builder.build(&Plan::f32(builder.config()))?;
        let reference = metrics_of(&predictions(&f32_model, data)?, data)?;
        Ok(Evaluator {
            builder,
            calibration,
            data,
            reference,
            cache: HashMap::new(),
            runs: 0,
        })
    }

    /// The plan with calibrated static parameters, its model, and its comparison.
    pub fn evaluate_model(&mut self, plan: &Plan) -> Result<(Plan, Model, Comparison)> {
        let plan = self.calibration.apply(plan)?;
        let model = self.builder.build(&plan)?;
        let c = Comparison::new(
            &metrics_of(&predictions(&model, self.data)?, self.data)?,
            &self.reference,
        )?;
        self.runs += 1;
        self.cache.insert(plan.to_json(), c.clone());
        Ok((plan, model, c))
    }

    /// The plan with calibrated static parameters and its comparison (cached).
    pub fn evaluate(&mut self, plan: &Plan) -> Result<(Plan, Comparison)> {
        let plan = self.calibration.apply(plan)?;
        if let Some(c) = self.cache.get(&plan.to_json()) {
            return Ok((plan, c.clone()));
        }
        let (p, _, c) = self.evaluate_model(&plan)?;
        Ok((p, c))
    }
}

fn points_of(evaluated: &[Evaluated], budget: Budget) -> Vec<PlanPoint> {
    evaluated
        .iter()
        .map(|e| PlanPoint {
            name: e.name.clone(),
            bytes: e.bytes,
            latency_s: e.latency_s,
            delta_ne_pct: budget.value(&e.comparison),
        })
        .collect()
}

/// The cheapest whole-set plan within the budget (ties: smaller gate value, then earlier); the
/// f32 baseline (index 0) when none is.
fn choose(evaluated: &[Evaluated], budget: Budget, objective: Objective) -> usize {
    let points = points_of(evaluated, budget);
    let costs = scalar_costs(&points, objective);
    (0..evaluated.len())
        .filter(|&i| evaluated[i].within_budget && evaluated[i].full_set)
        .min_by(|&a, &b| {
            costs[a]
                .total_cmp(&costs[b])
                .then(points[a].delta_ne_pct.total_cmp(&points[b].delta_ne_pct))
                .then(a.cmp(&b))
        })
        .unwrap_or(0)
}

/// Runs the whole search (see the module docs).
pub fn search(
    builder: &ModelBuilder,
    calibration: &Calibration,
    data: &EvalSet,
    options: &SearchOptions,
) -> Result<SearchOutcome> {
    let start = Instant::now();
    let config = builder.config();
    let first = data.batches.first().ok_or_else(|| QuantError::Empty {
        what: "evaluation set".into(),
    })?;
    let cost = CostModel::measure(builder, first, options.latency_batch)?;
    let mut ev = Evaluator::new(builder, calibration, data)?;
    let base = Plan::f32(config);
    let bytes_f32 = plan_bytes(config, &base);
    let mut evaluated: Vec<Evaluated> = Vec::new();
    let budget = options.budget;
    let record = |evaluated: &mut Vec<Evaluated>, name: String, plan: Plan, c: Comparison| {
        evaluated.push(Evaluated {
            full_set: !name.starts_with("sens:"),
            name,
            bytes: plan_bytes(config, &plan),
            latency_s: cost.latency(&plan),
            within_budget: budget.passes(&c),
            plan,
            comparison: c,
        });
    };
    let (p, c) = ev.evaluate(&base)?;
    record(&mut evaluated, "f32".into(), p, c);

    // Sensitivity: every unit alone at every option, on a subset.
    let mut subset = EvalSet::default();
    for b in &data.batches {
        if subset.rows >= options.sensitivity_rows {
            break;
        }
        subset.rows += b.size;
        subset.batches.push(b.clone());
    }
    let mut sens_ev = Evaluator::new(builder, calibration, &subset)?;
    let mut candidates: Vec<Candidate<Unit, Choice>> = Vec::new();
    let mut sensitivity = Vec::new();
    for unit in Unit::all(config) {
        let options_of: Vec<Choice> = match unit {
            Unit::Table(t) => TABLE_OPTIONS
                .iter()
                .filter(|f| f.check_dim(config.tables[t].dim).is_ok())
                .map(|&f| Choice::Table(f))
                .collect(),
            _ => LAYER_OPTIONS.iter().map(|&c| Choice::Layer(c)).collect(),
        };
        // Cheapest first; for the bytes objective f16 is skipped when the 8-bit option is smaller
        // and nearly free alone (under a quarter of the budget), since it could then only lose.
        let mut eight_bit_gate = f64::INFINITY;
        for choice in options_of.into_iter().rev() {
            let is_f16 = matches!(
                choice,
                Choice::Table(quantrec_kernels::formats::TableFormat::F16)
                    | Choice::Layer(crate::plans::LayerChoice::F16)
            );
            if is_f16
                && options.objective == Objective::Bytes
                && eight_bit_gate <= 0.25 * budget.limit()
            {
                continue;
            }
            let mut plan = base.clone();
            set_choice(&mut plan, unit, choice)?;
            let (p, c) = sens_ev.evaluate(&plan)?;
            let bytes_saved = bytes_f32 - plan_bytes(config, &p);
            let latency_saved_s = cost.saving(unit, choice);
            let cost_saved = match options.objective {
                Objective::Bytes => bytes_saved as f64,
                Objective::Latency => latency_saved_s,
                Objective::Both => {
                    bytes_saved as f64 / bytes_f32 as f64 + latency_saved_s / cost.base_latency_s
                }
            };
            let option = match choice {
                Choice::Table(f) => f.name().to_string(),
                Choice::Layer(l) => l.precision().short_name(),
            };
            sensitivity.push(Sensitivity {
                unit: unit.name(),
                option: option.clone(),
                gate: budget.value(&c),
                delta_ne_pct: c.delta_ne_pct,
                bytes_saved,
                latency_saved_s,
            });
            if matches!(
                choice,
                Choice::Table(quantrec_kernels::formats::TableFormat::Fused8)
                    | Choice::Layer(crate::plans::LayerChoice::Int8Dynamic)
            ) {
                eight_bit_gate = budget.value(&c);
            }
            candidates.push(Candidate {
                unit,
                option: choice,
                cost_saved,
                delta_ne_alone: budget.value(&c),
            });
            record(
                &mut evaluated,
                format!("sens:{}={option}", unit.name()),
                p,
                c,
            );
        }
    }

    // Greedy over the candidates, each combination measured.
    let mut cache = EvalCache::new();
    let mut greedy_plans: Vec<(Plan, Comparison)> = Vec::new();
    let to_plan = |a: &Assignment<Unit, Choice>| -> Result<Plan> {
        let mut plan = base.clone();
        for (&u, &c) in a {
            set_choice(&mut plan, u, c)?;
        }
        Ok(plan)
    };
    let outcome = greedy_walks(&candidates, budget.limit(), SEARCH_WALKS, &mut cache, |a| {
        let (p, c) = ev.evaluate(&to_plan(a)?)?;
        let v = budget.value(&c);
        greedy_plans.push((p, c));
        Ok::<f64, QuantError>(v)
    })?;
    for (k, (p, c)) in greedy_plans.into_iter().enumerate() {
        record(&mut evaluated, format!("greedy#{}", k + 1), p, c);
    }
    if options.presets {
        for preset in Preset::ALL {
            let plan = preset.plan(config);
            if plan.validate(config).is_err() {
                continue;
            }
            let (p, c) = ev.evaluate(&plan)?;
            record(&mut evaluated, format!("preset:{}", preset.name()), p, c);
        }
    }
    let mut cache_hits = outcome.cache_hits;
    if let (true, Objective::Bytes, Some(ranking)) =
        (options.tiers, options.objective, builder.row_ranking())
    {
        let best = choose(&evaluated, budget, options.objective);
        let base_plan = evaluated[best].plan.clone();
        let (trials, hits) =
            super::tiers::tier_phase(&mut ev, &mut sens_ev, config, ranking, &base_plan, budget)?;
        cache_hits += hits;
        for t in trials {
            record(&mut evaluated, t.name, t.plan, t.comparison);
        }
    }
    let points: Vec<PlanPoint> = points_of(&evaluated, budget);
    let chosen = choose(&evaluated, budget, options.objective);
    let front = pareto_front(&points, options.objective)?;
    Ok(SearchOutcome {
        evaluated,
        chosen,
        front,
        sensitivity,
        budget,
        objective: options.objective,
        model_evaluations: ev.runs + sens_ev.runs,
        cache_hits,
        seconds: start.elapsed().as_secs_f64(),
        cost_model: cost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comparison(delta_ne_pct: f64, auc: f64) -> Comparison {
        Comparison {
            ne_reference: 0.8,
            ne: 0.8 * (1.0 + delta_ne_pct / 100.0),
            delta_ne_pct,
            auc_reference: 0.8,
            auc,
            delta_auc: auc - 0.8,
            calibration: 1.0,
        }
    }

    #[test]
    fn the_auc_ratio_gate_needs_both_criteria() {
        let b = Budget::Ne(0.02).with_min_auc_ratio(Some(0.999)).unwrap();
        assert_eq!(
            b,
            Budget::NeAucRatio {
                ne: 0.02,
                min_auc_ratio: 0.999
            }
        );
        // Within ΔNE, AUC ratio 0.9995: passes, and the gate value is the ΔNE.
        let ok = comparison(0.01, 0.8 * 0.9995);
        assert!(b.passes(&ok));
        assert!((b.value(&ok) - 0.01).abs() < 1e-9);
        // Within ΔNE but AUC ratio 0.998: fails by the shortfall (0.1 percent past the limit).
        let low_auc = comparison(0.0, 0.8 * 0.998);
        assert!(!b.passes(&low_auc));
        assert!((b.value(&low_auc) - (0.02 + 0.1)).abs() < 1e-6);
        // Past ΔNE with a perfect AUC: fails.
        assert!(!b.passes(&comparison(0.03, 0.8)));
        assert!(b.describe().contains("AUC >= 0.999"));
        assert_eq!(
            Budget::Ne(0.02).with_min_auc_ratio(None).unwrap(),
            Budget::Ne(0.02)
        );
        for bad in [0.0, 1.5, f64::NAN] {
            assert!(Budget::Ne(0.02).with_min_auc_ratio(Some(bad)).is_err());
        }
        assert!(Budget::Auc(0.001).with_min_auc_ratio(Some(0.999)).is_err());
    }
}
