//! Refresh (issue 5) on a snapshot genuinely trained further on drifted data: snapshot A is
//! trained on day-1 synthetic data and quantized automatically; snapshot B is A trained further
//! on day-2 data (fresh rows, trending ids, concept drift); the day-1 recipe is then refreshed on
//! B with day-2 calibration and evaluation rows.

use quantrec_data::Batch;
use quantrec_data::BatchSource;
use quantrec_data::synth::{DriftConfig, Generator, Split, SynthConfig};
use quantrec_kernels::formats::TableFormat;
use quantrec_model::import::{ImportOverrides, import_state_dict};
use quantrec_model::state_dict::StateDict;
use quantrec_model::weights::TableData;
use quantrec_model::{ModelConfig, Plan, Weights};
use quantrec_quant::calibrate::RangeMethod;
use quantrec_quant::eval::EvalSet;
use quantrec_quant::plans::{Unit, choice_of, plan_bytes, summary, widen};
use quantrec_quant::refresh::{RefreshOutcome, RefreshRequest, refresh};
use quantrec_quant::search::{Budget, SearchOptions};
use quantrec_quant::workflow::{PlanRequest, QuantizeRequest, quantize};
use quantrec_train::{TrainOptions, Trainer, suggested_config};

const TABLE_ROWS: [usize; 8] = [3, 24, 150, 600, 1500, 2500, 4000, 4000];
const TRAIN_ROWS: u64 = 200_000;

fn day(drift: Option<DriftConfig>) -> Generator {
    Generator::new(SynthConfig {
        seed: 21,
        table_rows: TABLE_ROWS.to_vec(),
        drift,
        ..SynthConfig::default()
    })
    .unwrap()
}

fn batches(g: &Generator, split: Split, rows: u64, batch: usize) -> Vec<Batch> {
    let mut s = g.stream(split, rows, batch);
    let mut v = Vec::new();
    while let Some(b) = s.next_batch().unwrap() {
        v.push(b);
    }
    v
}

fn set(g: &Generator, split: Split, rows: u64) -> EvalSet {
    EvalSet::from_batches(&batches(g, split, rows, 1024)).unwrap()
}

fn options() -> TrainOptions {
    TrainOptions {
        batch_size: 256,
        threads: Some(2),
        seed: 3,
        ..TrainOptions::default()
    }
}

fn snapshot(t: &Trainer) -> (ModelConfig, Weights) {
    let sd = StateDict::from_bytes("snapshot", &t.to_safetensors().unwrap()).unwrap();
    let i = import_state_dict(sd, &ImportOverrides::default()).unwrap();
    (i.config, i.weights)
}

fn req(
    previous: &Plan,
    (config, weights): &(ModelConfig, Weights),
    g: &Generator,
    budget: Budget,
    keep_static: bool,
) -> RefreshRequest {
    RefreshRequest {
        previous_plan: previous.clone(),
        previous_delta_ne_pct: None,
        config: config.clone(),
        weights: weights.clone(),
        calib: set(g, Split::Calibration, 4096),
        eval: set(g, Split::Evaluation, 30_000),
        budget,
        calib_method: RangeMethod::L2 { bits: 8 },
        keep_static,
    }
}

/// Every step widened one unit by exactly one step, and the outcome is consistent.
fn check_widenings(out: &RefreshOutcome, r: &RefreshRequest) {
    let text = out.diff_text(r);
    let mut plan = r.previous_plan.clone();
    for st in &out.steps {
        let u = Unit::parse(&st.unit).unwrap();
        let wider = widen(choice_of(&plan, u)).unwrap();
        quantrec_quant::plans::set_choice(&mut plan, u, wider).unwrap();
        assert!(text.contains(&format!("widened {}", st.unit)), "{text}");
    }
    for u in Unit::all(&r.config) {
        assert_eq!(choice_of(&plan, u), choice_of(&out.plan, u), "{text}");
    }
    assert_eq!(out.passed, r.budget.passes(&out.comparison));
}

/// Relative L2 change of table `t` between two snapshots.
fn table_change(a: &Weights, b: &Weights, t: usize) -> f64 {
    let (TableData::F32(x), TableData::F32(y)) = (&a.tables[t], &b.tables[t]) else {
        panic!("imported tables are f32");
    };
    let num: f64 = x.iter().zip(y).map(|(p, q)| f64::from(p - q).powi(2)).sum();
    let den: f64 = x.iter().map(|p| f64::from(*p).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

#[test]
fn day1_recipe_refreshed_on_snapshots_trained_further_on_drifted_data() {
    let config = suggested_config(13, &TABLE_ROWS, 16);
    let day1 = day(None);
    let mut trainer = Trainer::new(config.clone(), options()).unwrap();
    trainer
        .fit_stream(batches(&day1, Split::Train, TRAIN_ROWS, 256), |_| {})
        .unwrap();
    let a = snapshot(&trainer);

    // Day 1: the automatic plan, aggressive (2-bit tables) yet within the budget.
    let budget = Budget::Ne(0.1);
    let q = quantize(&QuantizeRequest {
        config: a.0.clone(),
        weights: a.1.clone(),
        calib: set(&day1, Split::Calibration, 4096),
        eval: set(&day1, Split::Evaluation, 30_000),
        plan: PlanRequest::Auto,
        search: SearchOptions {
            budget,
            presets: false,
            sensitivity_rows: 8192,
            // PyTorch's table bytes: this scenario is about recalibration and widening. 2-bit
            // plans on this tiny model swing by ±0.2% ΔNE between snapshots under either rounding
            // (measured: the day-1 recipe re-applied to the mildly drifted snapshot +0.03% with
            // PyTorch's bytes, +0.22% curvature-rounded; on day 1 itself +0.25% and +0.10%), so
            // which rounding leaves the mild case passing is luck; curvature rounding through a
            // refresh is covered in tests/table_curvature.rs.
            table_curvature: false,
            // Row tiers are re-split on each refresh's calibration data (their bytes change with
            // it); this scenario checks that precisions and bytes stay put under mild drift.
            tiers: false,
            ..SearchOptions::default()
        },
        calib_method: RangeMethod::L2 { bits: 8 },
    })
    .unwrap();
    eprintln!(
        "day-1 recipe: {}; ΔNE {:+.4}%, {} bytes",
        summary(&q.plan),
        q.comparison.delta_ne_pct,
        q.bytes_quantized
    );
    assert!(budget.passes(&q.comparison));
    assert!(
        q.plan.tables.contains(&TableFormat::Fused2),
        "{}",
        summary(&q.plan)
    );

    // Day 2: A trained further on drifted rows. Mild drift: the recipe still passes; full
    // concept drift (a new teacher, every id's popularity reshuffled): it fails and is repaired.
    let further = |d: DriftConfig| {
        let g = day(Some(d));
        let mut t =
            Trainer::from_state_dict(config.clone(), options(), trainer.state_dict()).unwrap();
        t.fit_stream(batches(&g, Split::Train, TRAIN_ROWS, 256), |_| {})
            .unwrap();
        (g, snapshot(&t))
    };

    let (mild, b_mild) = further(DriftConfig::new(2, 0.1));
    let r = req(&q.plan, &b_mild, &mild, budget, false);
    let out = refresh(&r).unwrap();
    let text = out.diff_text(&r);
    eprintln!("mild drift:\n{text}");
    check_widenings(&out, &r);
    assert!(out.passed && budget.passes(&out.initial), "{text}");
    assert!(out.steps.is_empty() && out.blame.is_empty(), "{text}");
    assert!(out.failure(budget).is_none(), "{text}");
    assert_eq!(out.plan.tables, q.plan.tables, "{text}");
    assert!(
        text.contains("(passes)") && !text.contains("widened"),
        "{text}"
    );
    // Same precisions; only recalibrated static parameters may differ.
    assert!(!text.contains(" -> fused") && !text.contains("-> f16") && !text.contains("-> f32"));
    let bytes = plan_bytes(&r.config, &q.plan);
    assert!(
        text.contains(&format!("bytes: {bytes} -> {bytes}")),
        "{text}"
    );

    let (strong, b) = further(DriftConfig::new(3, 1.0));
    // Genuinely trained further: the tables and the activation ranges moved.
    let moved: Vec<f64> = (0..TABLE_ROWS.len())
        .map(|t| table_change(&a.1, &b.1, t))
        .collect();
    eprintln!("relative change of each table A -> B: {moved:.3?}");
    assert!(moved.iter().all(|&m| m > 1e-3), "{moved:?}");
    let r = req(&q.plan, &b, &strong, budget, false);
    let out = refresh(&r).unwrap();
    let text = out.diff_text(&r);
    eprintln!("full drift:\n{text}");
    check_widenings(&out, &r);
    assert!(out.ranges.iter().any(|x| x.previous != x.new), "{text}");
    // The stale recipe fails the gate; the debugger's blame names the first widened unit; the
    // repaired plan passes, costs more bytes, and the diff lists every widened unit.
    assert!(!budget.passes(&out.initial), "{text}");
    assert!(out.passed && !out.steps.is_empty(), "{text}");
    assert!(
        out.blame.iter().any(|b| b.unit == out.steps[0].unit),
        "{text}"
    );
    assert!(out.bytes > bytes);
    assert!(budget.value(&out.comparison) < budget.value(&out.initial));
    for st in &out.steps {
        assert!(text.contains(&format!("widened {}: {} -> {}", st.unit, st.from, st.to)));
        assert!(text.contains(&format!("plan: {}: ", st.unit)), "{text}");
    }
    // The structured outcome of a repair: widening went on exactly until the gate passed (every
    // step but the last still over the limit, the last one the final plan's gate value), so
    // there is no failure to report, and the diff says it passes.
    let last = out.steps.last().expect("steps checked non-empty above");
    assert_eq!(last.gate_after, budget.value(&out.comparison), "{text}");
    assert!(last.gate_after <= budget.limit(), "{text}");
    for st in &out.steps[..out.steps.len() - 1] {
        assert!(st.gate_after > budget.limit(), "{text}");
    }
    assert!(out.failure(budget).is_none(), "{text}");
    assert!(
        text.contains("(passes)") && !text.contains("FAILS"),
        "{text}"
    );

    // The same refresh keeping day-1's static activation parameters: the failure and repair
    // happen with the stale ranges left in place wherever no layer was widened.
    let r = req(&q.plan, &b, &strong, budget, true);
    let out = refresh(&r).unwrap();
    let text = out.diff_text(&r);
    eprintln!("full drift, day-1 static parameters kept:\n{text}");
    check_widenings(&out, &r);
    assert!(text.contains("kept from the previous artifact"), "{text}");
    assert!(!budget.passes(&out.initial) && out.passed, "{text}");
    let widened: Vec<&str> = out.steps.iter().map(|s| s.unit.as_str()).collect();
    for (i, p) in q.plan.top.iter().enumerate() {
        if !widened.contains(&format!("top.{i}").as_str()) {
            assert_eq!(*p, out.plan.top[i]);
        }
    }
}
