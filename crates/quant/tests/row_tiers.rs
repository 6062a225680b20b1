//! Frequency-aware row tiers through the workflow on the tiny model: when the evaluation rows are
//! the calibration rows, never-seen rows are never looked up, so pruning them is free and the
//! search must take it; the saved artifact holds the tiers and predicts exactly as the outcome's
//! model; the AUC-ratio gate is honoured.

mod common;

use quantrec_model::artifact::{self, Artifact, Provenance};
use quantrec_model::{Plan, Scratch};
use quantrec_quant::calibrate::{RangeMethod, RowRanking};
use quantrec_quant::plans::plan_bytes;
use quantrec_quant::search::plan_search::auc_ratio;
use quantrec_quant::search::{Budget, SearchOptions};
use quantrec_quant::workflow::{PlanRequest, QuantizeRequest, quantize};

#[test]
fn the_search_prunes_never_seen_rows_and_the_artifact_keeps_the_tiers() {
    let w = common::weights(4, 0.3);
    let data = common::set(&w, 600, 21);
    let budget = Budget::Ne(0.05).with_min_auc_ratio(Some(0.999)).unwrap();
    let req = QuantizeRequest {
        config: common::config(),
        weights: w.clone(),
        calib: data.clone(),
        eval: data.clone(),
        plan: PlanRequest::Auto,
        search: SearchOptions {
            budget,
            presets: false,
            sensitivity_rows: 600,
            table_curvature: false,
            ..SearchOptions::default()
        },
        calib_method: RangeMethod::L2 { bits: 8 },
    };
    let q = quantize(&req).unwrap();
    assert!(budget.passes(&q.comparison));
    assert!(auc_ratio(&q.comparison) >= 0.999);
    let s = q.search.as_ref().unwrap();
    let untiered = s.best_untiered().expect("an untiered plan within budget");
    assert!(
        !q.plan.tiers.is_empty(),
        "chosen {} without tiers",
        s.chosen().name
    );
    assert!(q.bytes_quantized < untiered.bytes);
    assert_eq!(q.bytes_quantized, plan_bytes(&req.config, &q.plan));
    // Pruned rows are exactly rows the calibration data never looked up.
    let ranking = RowRanking::measure(&req.config, &req.calib).unwrap();
    for (&t, tiers) in &q.plan.tiers {
        let seen = ranking.tables[t].seen();
        let rows = req.config.tables[t].rows;
        assert!(tiers.pruned <= rows - seen, "table {t}: {tiers:?}");
    }
    // The large tables (up to 2000 rows, 600 lookups of a squared-uniform id) have unseen rows, and
    // pruning them costs nothing here.
    assert!(
        q.plan.tiers.values().any(|t| t.pruned > 0),
        "{:?}",
        q.plan.tiers
    );

    // The artifact round trip: tiers and remaps stored, predictions bit for bit.
    let bytes =
        artifact::to_bytes(&req.config, &q.weights, &q.plan, &Provenance::default()).unwrap();
    let a = Artifact::from_bytes(bytes).unwrap();
    assert_eq!(a.meta.plan, q.plan);
    let batch = &data.batches[0];
    let want = q
        .model
        .predict(batch, &mut Scratch::new())
        .unwrap()
        .to_vec();
    let got = a
        .model
        .predict(batch, &mut Scratch::new())
        .unwrap()
        .to_vec();
    assert_eq!(
        want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        got.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );

    // Without tiers the same search keeps one format per table.
    let mut plain = req.clone();
    plain.search.tiers = false;
    let p = quantize(&plain).unwrap();
    assert!(p.plan.tiers.is_empty());
    assert!(p.bytes_quantized > q.bytes_quantized);
    assert_ne!(p.plan, Plan::f32(&req.config));
}
