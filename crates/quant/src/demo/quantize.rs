//! The demo's quantization stages: the automatic (size-optimal) plan under the NE budget, the
//! f32-vs-quantized comparison, and the latency-optimal plan within the same budget.

use std::time::Instant;

use quantrec_model::{LayerPrecision, Model, ModelConfig, Plan};

use super::data::Trained;
use super::report::LatencyOptimal;
use super::{DemoOptions, Story};
use crate::builder::ModelBuilder;
use crate::calibrate::RangeMethod;
use crate::plans::summary;
use crate::search::pareto::Objective;
use crate::search::{Budget, SearchOptions, SearchOutcome};
use crate::workflow::{PlanRequest, QuantizeOutcome, QuantizeRequest, quantize};
use crate::{QuantError, Result};

/// The search an automatic plan records.
pub fn recorded_search(outcome: &QuantizeOutcome) -> Result<&SearchOutcome> {
    outcome.search.as_ref().ok_or_else(|| QuantError::Empty {
        what: "the search record of the automatic plan".into(),
    })
}

/// The quantization request of the demo: automatic plan, L2 calibration, `search` options.
fn request(trained: &Trained, search: SearchOptions) -> QuantizeRequest {
    QuantizeRequest {
        config: trained.config.clone(),
        weights: trained.weights.clone(),
        calib: trained.calib.clone(),
        eval: trained.eval.clone(),
        plan: PlanRequest::Auto,
        search,
        calib_method: RangeMethod::L2 { bits: 8 },
    }
}

/// Stage 3: the size-optimal plan under the budget, told layer by layer.
pub fn automatic(
    options: &DemoOptions,
    trained: &Trained,
    story: &mut Story<'_>,
) -> Result<QuantizeOutcome> {
    let req = request(
        trained,
        SearchOptions {
            budget: Budget::Ne(options.budget_ne),
            ..SearchOptions::default()
        },
    );
    let outcome = story.busy(
        "calibrating, measuring sensitivities, searching plans",
        || quantize(&req),
    )?;
    for line in plan_lines(&trained.config, &outcome) {
        story.line(line);
    }
    Ok(outcome)
}

/// The chosen precision of every layer and table, and the search's effort.
pub fn plan_lines(config: &ModelConfig, outcome: &QuantizeOutcome) -> Vec<String> {
    let plan = &outcome.plan;
    let layers = |v: &[LayerPrecision]| {
        v.iter()
            .map(|p| p.short_name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = vec![format!("bottom MLP: {}", layers(&plan.bottom))];
    if !plan.cross.is_empty() {
        let cross: Vec<String> = plan
            .cross
            .iter()
            .map(|c| format!("{}/{}", c.v.short_name(), c.w.short_name()))
            .collect();
        out.push(format!("cross:      {}", cross.join(", ")));
    }
    out.push(format!("top MLP:    {}", layers(&plan.top)));
    let tables: Vec<String> = plan
        .tables
        .iter()
        .zip(&config.tables)
        .enumerate()
        .map(|(t, (f, tc))| format!("t{t}({}×{})={f}", tc.rows, tc.dim))
        .collect();
    for chunk in tables.chunks(6) {
        out.push(format!("tables:     {}", chunk.join("  ")));
    }
    if let Some(s) = &outcome.search {
        out.push(format!(
            "search: {} plans evaluated ({} model runs, {} cache hits) in {:.1} s; chosen {}",
            s.evaluated.len(),
            s.model_evaluations,
            s.cache_hits,
            s.seconds,
            s.chosen().name
        ));
        let c = s.chosen();
        if let (false, Some(u)) = (c.plan.tiers.is_empty(), s.best_untiered()) {
            let f32b = s.evaluated[0].bytes.max(1) as f64;
            out.push(format!(
                "row tiers on {} tables: {:.1}% of f32 bytes against {:.1}% with one precision per table ({} → {} bytes)",
                c.plan.tiers.len(),
                100.0 * c.bytes as f64 / f32b,
                100.0 * u.bytes as f64 / f32b,
                u.bytes,
                c.bytes
            ));
        }
    }
    out
}

/// Stage 4: f32 vs quantized on the evaluation rows (and against the teacher, when known).
pub fn tell_comparison(
    options: &DemoOptions,
    trained: &Trained,
    outcome: &QuantizeOutcome,
    story: &mut Story<'_>,
) {
    let c = &outcome.comparison;
    story.line(format!(
        "{:<12} {:>10} {:>10} {:>12} {:>14}",
        "model", "NE", "AUC", "calibration", "bytes"
    ));
    story.line(format!(
        "{:<12} {:>10.5} {:>10.5} {:>12.4} {:>14}",
        "f32",
        c.ne_reference,
        c.auc_reference,
        outcome.reference.calibration.unwrap_or(f64::NAN),
        outcome.bytes_f32
    ));
    story.line(format!(
        "{:<12} {:>10.5} {:>10.5} {:>12.4} {:>14}",
        "quantized", c.ne, c.auc, c.calibration, outcome.bytes_quantized
    ));
    story.line(format!(
        "ΔNE {:+.4}% (budget {}%), ΔAUC {:+.5}, size {:.1}% of f32",
        c.delta_ne_pct,
        options.budget_ne,
        c.delta_auc,
        100.0 * outcome.bytes_quantized as f64 / outcome.bytes_f32 as f64
    ));
    if let Some(t) = trained.teacher_ne {
        story.line(format!(
            "teacher (attainable optimum) NE {t:.5}; f32 model / teacher = {:.4}",
            c.ne_reference / t
        ));
    }
}

/// The latency-optimal plan within the budget and its model.
pub struct LatencyPlan {
    /// The plan.
    pub plan: Plan,
    /// Its model.
    pub model: Model,
    /// Its ΔNE (%).
    pub delta_ne_pct: f64,
    /// Its bytes.
    pub bytes: u64,
    /// How it was found.
    pub how: &'static str,
    /// Seconds it took to find.
    pub seconds: f64,
}

impl LatencyPlan {
    /// The report's `latency_optimal` object.
    pub fn summary(&self, same_as_size_optimal: bool) -> LatencyOptimal {
        LatencyOptimal {
            plan: summary(&self.plan),
            same_as_size_optimal,
            delta_ne_pct: self.delta_ne_pct,
            bytes: self.bytes,
            how: self.how.to_string(),
            seconds: self.seconds,
        }
    }
}

/// The plan above minimizes bytes. The latency-optimal plan under the same budget: a second search
/// minimizing the predicted latency of a 1024-sample batch (with `quick`, the plan of least
/// predicted latency among those the first search validated on the whole set). Tells both.
pub fn latency_optimal(
    options: &DemoOptions,
    trained: &Trained,
    outcome: &QuantizeOutcome,
    story: &mut Story<'_>,
) -> Result<LatencyPlan> {
    let lat = find_latency_optimal(options, trained, outcome, story)?;
    story.line(format!(
        "size-optimal plan:    {} (ΔNE {:+.4}%, {} bytes)",
        summary(&outcome.plan),
        outcome.comparison.delta_ne_pct,
        outcome.bytes_quantized
    ));
    story.line(format!(
        "latency-optimal plan: {} (ΔNE {:+.4}%, {} bytes; {}){}",
        summary(&lat.plan),
        lat.delta_ne_pct,
        lat.bytes,
        lat.how,
        if lat.plan == outcome.plan {
            " — the same plan"
        } else {
            ""
        }
    ));
    Ok(lat)
}

fn find_latency_optimal(
    options: &DemoOptions,
    trained: &Trained,
    outcome: &QuantizeOutcome,
    story: &mut Story<'_>,
) -> Result<LatencyPlan> {
    let t0 = Instant::now();
    let budget = Budget::Ne(options.budget_ne);
    if options.quick {
        let best = recorded_search(outcome)?
            .evaluated
            .iter()
            .filter(|e| e.within_budget && e.full_set)
            .min_by(|a, b| a.latency_s.total_cmp(&b.latency_s))
            .ok_or_else(|| QuantError::NoPlan {
                budget,
                over_budget: Vec::new(),
            })?;
        let builder = ModelBuilder::new(trained.config.clone(), trained.weights.clone())?;
        return Ok(LatencyPlan {
            model: builder.build(&best.plan)?,
            plan: best.plan.clone(),
            delta_ne_pct: best.comparison.delta_ne_pct,
            bytes: best.bytes,
            how: "least predicted latency among the plans the search validated",
            seconds: t0.elapsed().as_secs_f64(),
        });
    }
    let req = request(
        trained,
        SearchOptions {
            budget,
            objective: Objective::Latency,
            latency_batch: 1024,
            ..SearchOptions::default()
        },
    );
    let latency = story.busy("searching the latency-optimal plan", || quantize(&req))?;
    Ok(LatencyPlan {
        plan: latency.plan,
        model: latency.model,
        delta_ne_pct: latency.comparison.delta_ne_pct,
        bytes: latency.bytes_quantized,
        how: "a search minimizing the predicted latency of a 1024-sample batch",
        seconds: t0.elapsed().as_secs_f64(),
    })
}
