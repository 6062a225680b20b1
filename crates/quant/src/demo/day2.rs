//! The demo's day 2: drifted synthetic data, the fp32 model trained further on it, and `refresh`
//! of the day-1 quantized artifact (plan diff, gate, what was widened).

use std::path::Path;
use std::time::Instant;

use quantrec_data::synth::{DriftConfig, Generator, Split, SynthConfig};
use quantrec_model::artifact::{self, Provenance};
use quantrec_model::{Model, ModelConfig, Plan, Weights};
use quantrec_train::Trainer;
use quantrec_train::recipe::SynthRecipe;

use super::Story;
use super::data::{CALIBRATION_ROWS, collect, import_trained};
use super::report::{PlanChange, RefreshSection};
use crate::calibrate::RangeMethod;
use crate::eval::{EvalSet, evaluate};
use crate::plans::{diff, plan_bytes};
use crate::refresh::{RefreshOutcome, RefreshRequest, refresh};
use crate::search::Budget;
use crate::{QuantError, Result};

/// Concept drift of day 2 (also the fraction of ids whose popularity is reshuffled).
pub const DRIFT: f64 = 0.3;
/// Seed of day 2's drift.
pub const DRIFT_SEED: u64 = 1;

/// Day 1 as the demo left it.
pub struct Day1<'a> {
    /// The day-1 trainer (its parameters are the f32 snapshot).
    pub trainer: &'a Trainer,
    /// The day-1 recipe (data and options).
    pub recipe: &'a SynthRecipe,
    /// The day-1 f32 model's architecture and weights.
    pub config: &'a ModelConfig,
    /// Its weights.
    pub weights: &'a Weights,
    /// The day-1 quantized plan.
    pub plan: &'a Plan,
    /// Its ΔNE (%).
    pub delta_ne_pct: f64,
}

/// Day-2 training rows (`quick`: fewer).
pub fn day2_rows(quick: bool) -> u64 {
    if quick { 300_000 } else { 1_000_000 }
}

/// The day-1 trainer trained further on `rows` fresh rows of `day2`.
fn train_further(
    day1: &Day1<'_>,
    day2: &Generator,
    rows: u64,
    story: &mut Story<'_>,
) -> Result<Trainer> {
    let mut trainer = Trainer::from_state_dict(
        day1.trainer.config().clone(),
        day1.recipe.options,
        day1.trainer.state_dict(),
    )?;
    let batch = day1.recipe.options.batch_size.max(1);
    let (batches, worker) =
        quantrec_train::recipe::prefetch(day2.stream(Split::Train, rows, batch), 8);
    let fitted = story.train(rows, |progress| trainer.fit_stream(batches, progress));
    let generated = worker.join().map_err(|_| QuantError::Worker {
        what: "day-2 generator".into(),
    })?;
    fitted?;
    generated?;
    Ok(trainer)
}

/// Runs day 2, saves the refreshed artifact in `out_dir` when the gate passes, and returns the
/// report's section and the day-2 evaluation rows (held out, for an online stage to replay).
pub fn run(
    day1: &Day1<'_>,
    budget: Budget,
    quick: bool,
    out_dir: &Path,
    story: &mut Story<'_>,
) -> Result<(RefreshSection, EvalSet)> {
    let t0 = Instant::now();
    let drift = DriftConfig::new(DRIFT_SEED, DRIFT);
    let day2 = Generator::new(SynthConfig {
        drift: Some(drift),
        ..day1.recipe.synth.clone()
    })?;
    let rows = day2_rows(quick);
    story.line(format!(
        "day-2 data: drift {DRIFT} (second teacher's weight; {DRIFT} of every table's ids re-ranked), fresh rows"
    ));
    let trainer = train_further(day1, &day2, rows, story)?;
    let train_seconds = t0.elapsed().as_secs_f64();
    let (config, weights) = import_trained(&trainer)?;
    let calib = EvalSet::from_batches(&collect(day2.stream(
        Split::Calibration,
        CALIBRATION_ROWS as u64,
        1024,
    ))?)?;
    let eval = EvalSet::from_batches(&collect(day2.stream(
        Split::Evaluation,
        day1.recipe.eval_rows,
        1024,
    ))?)?;
    let day1_f32 = Model::from_parts(day1.config, day1.weights, &Plan::f32(day1.config))?;
    let ne_day1_model = evaluate(&day1_f32, &eval)?.ne;
    let req = RefreshRequest {
        previous_plan: day1.plan.clone(),
        previous_delta_ne_pct: Some(day1.delta_ne_pct),
        config,
        weights,
        calib,
        eval,
        budget,
        calib_method: RangeMethod::L2 { bits: 8 },
        keep_static: false,
    };
    let t1 = Instant::now();
    let out = refresh(&req)?;
    let refresh_seconds = t1.elapsed().as_secs_f64();
    story.line(format!(
        "trained further on {rows} day-2 rows in {train_seconds:.1} s: day-2 holdout NE {:.5} (the day-1 f32 model: {})",
        out.comparison.ne_reference,
        ne_fmt(ne_day1_model)
    ));
    let text = out.diff_text(&req);
    story.event(super::DemoEvent::Text(&text));
    story.line(format!(
        "refresh {} in {refresh_seconds:.1} s",
        if out.passed {
            "passed"
        } else {
            "could not repair the recipe"
        }
    ));
    let saved = if out.passed {
        let path = save(out_dir, &req, &out)?;
        story.line(format!("refreshed model: {}", path.display()));
        Some(path.display().to_string())
    } else {
        None
    };
    let section = RefreshSection {
        drift: drift.drift,
        trending: drift.trending,
        drift_seed: drift.seed,
        trending_ids: day2.trending_ids(),
        train_rows: rows,
        train_seconds,
        ne_day1_f32_on_day2: ne_day1_model,
        ne_day2_f32: out.comparison.ne_reference,
        delta_ne_pct_recipe: out.initial.delta_ne_pct,
        delta_ne_pct_final: out.comparison.delta_ne_pct,
        budget: budget.describe(),
        passed: out.passed,
        bytes_previous: plan_bytes(&req.config, &req.previous_plan),
        bytes: out.bytes,
        plan_diff: diff(&out.plan, &req.previous_plan)
            .into_iter()
            .map(|(unit, new, previous)| PlanChange {
                unit,
                previous,
                new,
            })
            .collect(),
        blamed: out.blame,
        widened: out.steps,
        ranges: out.ranges,
        refresh_seconds,
        model: saved,
        diff_text: text,
    };
    Ok((section, req.eval))
}

/// `x` with 5 decimals, or `undefined`.
pub fn ne_fmt(v: Option<f64>) -> String {
    v.map_or("undefined".to_string(), |x| format!("{x:.5}"))
}

/// Saves the refreshed artifact as `out_dir/model-day2-quantized.safetensors`.
fn save(out_dir: &Path, req: &RefreshRequest, out: &RefreshOutcome) -> Result<std::path::PathBuf> {
    let path = out_dir.join("model-day2-quantized.safetensors");
    std::fs::create_dir_all(out_dir).map_err(|e| QuantError::io(out_dir, e))?;
    let notes = serde_json::json!({"tool": "quantrec demo (refresh)", "delta_ne_pct": out.comparison.delta_ne_pct,
                       "widened": out.steps});
    artifact::save(
        &path,
        &req.config,
        &out.weights,
        &out.plan,
        &Provenance {
            ne: Some(out.comparison.ne),
            ne_reference: Some(out.comparison.ne_reference),
            notes: Some(notes.to_string()),
            ..Provenance::default()
        },
    )?;
    Ok(path)
}
