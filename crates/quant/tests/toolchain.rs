//! The tool chain on a tiny model: calibration, debugger, search, workflow, refresh.

mod common;

use quantrec_kernels::formats::TableFormat;
use quantrec_model::plan::{ActivationPlan, LayerPrecision};
use quantrec_model::weights::TableData;
use quantrec_model::{Model, Plan};
use quantrec_quant::QuantError;
use quantrec_quant::calibrate::{RangeMethod, calibrate};
use quantrec_quant::debug::debug;
use quantrec_quant::plans::{Preset, plan_bytes};
use quantrec_quant::refresh::{RefreshRequest, refresh};
use quantrec_quant::search::{Budget, SearchOptions};
use quantrec_quant::workflow::{PlanRequest, QuantizeRequest, quantize};

fn f32_model(w: &quantrec_model::Weights) -> Model {
    Model::from_parts(&common::config(), w, &Plan::f32(&common::config())).unwrap()
}

#[test]
fn calibration_produces_sane_qparams() {
    let w = common::weights(1, 0.3);
    let data = common::set(&w, 3000, 11);
    let cal = calibrate(&f32_model(&w), &data, RangeMethod::L2 { bits: 8 }).unwrap();
    assert_eq!(cal.rows, 3000);
    // Dense inputs are uniform in [0, 4): the L2 window stays inside and covers most of it.
    let r = cal.ranges["bottom.0.input"];
    assert!(r.lo >= 0.0 && r.hi <= 4.0 && r.hi > 3.0, "{r:?}");
    // Inputs that are ReLU outputs are narrowed to [0, max].
    for name in ["bottom.1.input", "top.1.input"] {
        let r = cal.ranges[name];
        assert_eq!(r.lo, 0.0, "{name}");
        assert!(r.hi > 0.0, "{name}");
        let obs = cal.observers.get(name).unwrap();
        assert!(r.hi <= obs.max().unwrap() + 1e-6);
    }
    assert!(cal.observers.get("interaction.output").is_some());
    assert!(cal.observers.get("table.7.output").is_some());
    let plan = cal
        .apply(&Preset::Aggressive.plan(&common::config()))
        .unwrap();
    for p in plan.bottom.iter().chain(&plan.top) {
        match p {
            LayerPrecision::Int8 {
                activations: ActivationPlan::Static { scale, zero_point },
                ..
            } => assert!(*scale > 0.0 && (0..=255).contains(zero_point)),
            other => panic!("expected static int8, got {other:?}"),
        }
    }
    // ReLU-fed layers get zero point 0 (no negative codes wasted).
    assert!(matches!(
        plan.top[1],
        LayerPrecision::Int8 {
            activations: ActivationPlan::Static { zero_point: 0, .. },
            ..
        }
    ));
}

#[test]
fn debugger_ranks_a_broken_layer_first() {
    let w = common::weights(2, 0.3);
    let data = common::set(&w, 2000, 12);
    let reference = f32_model(&w);
    let cal = calibrate(&reference, &data, RangeMethod::MinMax).unwrap();
    let c = common::config();
    let mut plan = Plan::uniform(&c, LayerPrecision::F16, TableFormat::Fused8);
    plan.bottom[1] = quantrec_quant::plans::LayerChoice::Int8Static.precision();
    plan.top[0] = quantrec_quant::plans::LayerChoice::Int8Static.precision();
    let mut plan = cal.apply(&plan).unwrap();
    // Break top.1: a range 10x too narrow.
    if let LayerPrecision::Int8 {
        activations: ActivationPlan::Static { scale, .. },
        ..
    } = &mut plan.top[0]
    {
        *scale /= 10.0;
    }
    let quantized = Model::from_parts(&c, &w, &plan).unwrap();
    let report = debug(&quantized, &reference, &data).unwrap();
    assert_eq!(report.ranked[0].name, "top.0", "{}", report.to_text());
    assert!(report.comparison.delta_ne_pct > 0.0);
    // Without the break the worst layer is far better.
    let healthy = Model::from_parts(&c, &w, &cal.apply(&plan).unwrap()).unwrap();
    let ok = debug(&healthy, &reference, &data).unwrap();
    let top0 = ok.ranked.iter().find(|r| r.name == "top.0").unwrap();
    assert!(
        top0.isolated.unwrap().sqnr_db > report.ranked[0].isolated.unwrap().sqnr_db + 10.0,
        "{}",
        ok.to_text()
    );
}

fn request(w: &quantrec_model::Weights, plan: PlanRequest, budget: Budget) -> QuantizeRequest {
    QuantizeRequest {
        config: common::config(),
        weights: w.clone(),
        calib: common::set(w, 2000, 21),
        eval: common::set(w, 6000, 22),
        plan,
        search: SearchOptions {
            budget,
            latency_batch: 64,
            table_curvature: false,
            tiers: false,
            ..SearchOptions::default()
        },
        calib_method: RangeMethod::L2 { bits: 8 },
    }
}

#[test]
fn search_meets_budget_and_beats_presets() {
    let w = common::weights(3, 0.3);
    let out = quantize(&request(&w, PlanRequest::Auto, Budget::Ne(0.05))).unwrap();
    assert!(out.comparison.delta_ne_pct <= 0.05, "{:?}", out.comparison);
    assert!(
        out.bytes_quantized < out.bytes_f32 / 3,
        "{} of {}",
        out.bytes_quantized,
        out.bytes_f32
    );
    let s = out.search.as_ref().unwrap();
    assert_eq!(s.chosen().plan, out.plan);
    for e in &s.evaluated {
        if e.name.starts_with("preset:") && e.within_budget {
            assert!(
                out.bytes_quantized <= e.bytes,
                "{} beats the choice",
                e.name
            );
        }
    }
    // Every plan on the frontier is recorded, the chosen one among the evaluated.
    assert!(s.front.iter().all(|&i| i < s.evaluated.len()));
    assert!(s.evaluated.iter().any(|e| e.name.starts_with("greedy#")));
    assert!(s.model_evaluations > 0);
    assert_eq!(
        plan_bytes(&common::config(), &out.plan),
        out.bytes_quantized
    );
    let dir = std::env::temp_dir().join(format!("quantrec-search-{}", std::process::id()));
    quantrec_quant::report::search_report::write_report(&dir, s).unwrap();
    for f in ["report.md", "report.json", "frontier.png"] {
        assert!(dir.join(f).metadata().unwrap().len() > 100, "{f}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_plan_meets_an_impossible_budget() {
    let w = common::weights(4, 0.3);
    // Quantization may improve NE by chance, so the impossible budget demands a 1% improvement.
    let budget = Budget::Ne(-1.0);
    let Err(err) = quantize(&request(
        &w,
        PlanRequest::Preset(Preset::Aggressive),
        budget,
    )) else {
        panic!("the aggressive preset cannot improve NE by 1%");
    };
    match err {
        QuantError::PlanOverBudget {
            budget: b,
            gate,
            ref blame,
            ..
        } => {
            assert_eq!(b, budget);
            assert!(gate > budget.limit(), "{gate}");
            assert!(blame.contains("blames"), "{blame}");
            assert!(err.to_string().contains("blames"), "{err}");
        }
        other => panic!("unexpected {other}"),
    }
    let Err(err) = quantize(&request(&w, PlanRequest::Auto, budget)) else {
        panic!("no plan can improve NE by 1%");
    };
    match err {
        QuantError::NoPlan {
            ref over_budget, ..
        } => {
            let units: Vec<&str> = over_budget.iter().map(|(u, _)| u.as_str()).collect();
            assert!(
                units.iter().any(|u| u.starts_with("table."))
                    && units.iter().any(|u| u.starts_with("bottom.")),
                "{units:?}"
            );
            assert!(
                over_budget.iter().all(|(_, g)| *g > budget.limit()),
                "{err}"
            );
            assert!(
                over_budget.windows(2).all(|w| w[0].1 >= w[1].1),
                "worst first: {err}"
            );
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn refresh_repairs_a_stale_recipe() {
    // Old snapshot: table 5 barely matters, so the recipe stores it in 2 bits.
    let c = common::config();
    let scale_table = |w: &mut quantrec_model::Weights, t: usize, s: f32| {
        if let TableData::F32(v) = &mut w.tables[t] {
            v.iter_mut().for_each(|x| *x *= s);
        }
    };
    let mut old = common::weights(5, 0.3);
    scale_table(&mut old, 5, 0.01);
    let mut recipe = Plan::uniform(&c, LayerPrecision::F32, TableFormat::Fused8);
    recipe.tables[5] = TableFormat::Fused2;
    let budget = Budget::Ne(0.05);
    let passed_before = quantize(&request(&old, PlanRequest::Given(recipe.clone()), budget));
    assert!(passed_before.is_ok(), "{:?}", passed_before.err());
    // New snapshot: table 5 became important.
    let mut new = old.clone();
    scale_table(&mut new, 5, 300.0);
    let req = RefreshRequest {
        previous_plan: recipe.clone(),
        previous_delta_ne_pct: passed_before.ok().map(|o| o.comparison.delta_ne_pct),
        config: c.clone(),
        weights: new.clone(),
        calib: common::set(&new, 2000, 31),
        eval: common::set(&new, 6000, 32),
        budget,
        calib_method: RangeMethod::MinMax,
        keep_static: false,
    };
    let out = refresh(&req).unwrap();
    assert!(out.initial.delta_ne_pct > 0.05, "{:?}", out.initial);
    assert!(out.passed, "{}", out.diff_text(&req));
    assert_eq!(out.steps[0].unit, "table.5", "{}", out.diff_text(&req));
    assert_ne!(out.plan.tables[5], TableFormat::Fused2);
    assert!(out.comparison.delta_ne_pct <= 0.05);
    assert!(out.diff_text(&req).contains("table.5: fused2 ->"));
}
