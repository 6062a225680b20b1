//! Refresh (issue 5) on a snapshot genuinely trained further on drifted data: snapshot A is
//! trained on day-1 synthetic data and quantized automatically; snapshot B is A trained further
//! on day-2 data (fresh rows, trending ids, concept drift); the day-1 recipe is then refreshed on
//! B with day-2 calibration and evaluation rows.

use quantrec_data::BatchSource;
use quantrec_data::synth::{DriftConfig, Generator, Split, SynthConfig};
use quantrec_kernels::formats::TableFormat;
use quantrec_model::import::{ImportOverrides, import_state_dict};
use quantrec_model::state_dict::StateDict;
use quantrec_model::train::{TrainOptions, Trainer, suggested_config};
use quantrec_model::{Batch, ModelConfig, Plan, Weights};
use quantrec_quant::calibrate::{RangeMethod, calibrate};
use quantrec_quant::eval::EvalSet;
use quantrec_quant::plans::{Choice, Unit, choice_of, widen};
use quantrec_quant::refresh::{RefreshOutcome, RefreshRequest, refresh};
use quantrec_quant::search::{Budget, SearchOptions};
use quantrec_quant::workflow::{PlanRequest, QuantizeRequest, quantize};

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

#[test]
fn refresh_on_a_snapshot_trained_further_on_drifted_data() {
    let config = suggested_config(13, &TABLE_ROWS, 16);
    let day1 = day(None);
    let mut trainer = Trainer::new(config, options()).unwrap();
    trainer
        .fit_stream(batches(&day1, Split::Train, TRAIN_ROWS, 256), |_| {})
        .unwrap();
    let a = snapshot(&trainer);

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
            ..SearchOptions::default()
        },
        calib_method: RangeMethod::L2 { bits: 8 },
    })
    .unwrap();
    eprintln!(
        "day-1 recipe: {} ΔNE {:+.4}% bytes {}",
        quantrec_quant::plans::summary(&q.plan),
        q.comparison.delta_ne_pct,
        q.bytes_quantized
    );
    assert!(budget.passes(&q.comparison));

    for (w, seed) in [(0.1, 2u64), (0.5, 2), (0.9, 2)] {
        let day2 = day(Some(DriftConfig::new(seed, w)));
        let mut t = Trainer::from_state_dict(config_of(&a), options(), trainer.state_dict())
            .unwrap();
        t.fit_stream(batches(&day2, Split::Train, TRAIN_ROWS, 256), |_| {})
            .unwrap();
        let b = snapshot(&t);
        for keep in [false, true] {
            let r = req(&q.plan, &b, &day2, budget, keep);
            let out = refresh(&r).unwrap();
            eprintln!(
                "drift {w} keep_static {keep}:\n{}",
                out.diff_text(&r)
            );
            check_widenings(&out, &r);
        }
        let cal_a = calibrate(
            &quantrec_model::Model::from_parts(&a.0, &a.1, &Plan::f32(&a.0)).unwrap(),
            &set(&day2, Split::Calibration, 4096),
            RangeMethod::L2 { bits: 8 },
        )
        .unwrap();
        let _ = cal_a;
        let _ = TableFormat::Fused2;
        let _ = Choice::Table(TableFormat::F32);
    }
}

fn config_of(s: &(ModelConfig, Weights)) -> ModelConfig {
    s.0.clone()
}
