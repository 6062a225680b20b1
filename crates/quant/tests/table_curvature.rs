//! Curvature-aware table rounding: lower loss proxy than PyTorch's bytes, the same layout, carried
//! through builder, plan, workflow and artifact.

mod common;

use std::sync::Arc;

use quantrec_kernels::formats::{TableFormat, TableRef, dequantize_table};
use quantrec_model::weights::TableData;
use quantrec_model::{Model, Plan, Scratch};
use quantrec_quant::builder::ModelBuilder;
use quantrec_quant::calibrate::RangeMethod;
use quantrec_quant::search::pareto::Objective;
use quantrec_quant::search::{Budget, SearchOptions};
use quantrec_quant::table_curvature::TableCurvature;
use quantrec_quant::workflow::{PlanRequest, QuantizeRequest, quantize};

/// `Σ_rows rᵀ M_r r` of table `t` encoded as `bytes`: the second-order loss the rounding costs.
fn loss_proxy(
    curv: &TableCurvature,
    t: usize,
    values: &[f32],
    bytes: &[u8],
    f: TableFormat,
) -> f64 {
    let c = common::config();
    let (rows, d) = (c.tables[t].rows, c.tables[t].dim);
    let mut back = vec![0f32; rows * d];
    dequantize_table(&TableRef::new(f, rows, d, bytes).unwrap(), &mut back).unwrap();
    let mut m = vec![0f64; d * d];
    let mut total = 0.0;
    for r in 0..rows {
        if curv.lookups(t, r) == 0 {
            continue;
        }
        curv.row_metric(t, r, &mut m);
        let e: Vec<f64> = (0..d)
            .map(|i| f64::from(back[r * d + i]) - f64::from(values[r * d + i]))
            .collect();
        for i in 0..d {
            for j in 0..d {
                total += e[i] * m[i * d + j] * e[j];
            }
        }
    }
    total
}

#[test]
fn curvature_rounding_lowers_the_loss_proxy_and_keeps_unseen_rows() {
    let c = common::config();
    let w = common::weights(4, 0.3);
    let calib = common::set(&w, 3000, 31);
    let curv = TableCurvature::measure(&c, &w, &calib).unwrap();
    assert_eq!(curv.samples(), 3000);
    for (t, tc) in c.tables.iter().enumerate() {
        let TableData::F32(values) = &w.tables[t] else {
            panic!("random tables are f32")
        };
        for f in [
            TableFormat::Fused4,
            TableFormat::Fused2,
            TableFormat::Fused8Half,
        ] {
            let plain =
                quantrec_model::tables::encode_table(t, f, tc.rows, tc.dim, values, false).unwrap();
            let curved = curv.encode(t, f, tc.rows, values, false).unwrap();
            assert_eq!(plain.len(), curved.len());
            let (p, q) = (
                loss_proxy(&curv, t, values, &plain, f),
                loss_proxy(&curv, t, values, &curved, f),
            );
            assert!(q <= p, "table {t} {f}: {q} > {p}");
            if f != TableFormat::Fused8Half {
                assert!(q < 0.95 * p, "table {t} {f}: {q} vs {p}");
            }
            // Rows calibration never looked up keep PyTorch's bytes.
            let rb = f.row_bytes(tc.dim);
            for r in (0..tc.rows).filter(|&r| curv.lookups(t, r) == 0) {
                assert_eq!(plain[r * rb..(r + 1) * rb], curved[r * rb..(r + 1) * rb]);
            }
        }
    }
}

#[test]
fn builder_and_plan_carry_the_curvature_rounding() {
    let c = common::config();
    let w = common::weights(5, 0.3);
    let calib = common::set(&w, 2000, 32);
    let curv = Arc::new(TableCurvature::measure(&c, &w, &calib).unwrap());
    let plan = Plan::uniform(
        &c,
        quantrec_model::plan::LayerPrecision::F32,
        TableFormat::Fused4,
    );
    let plain = ModelBuilder::new(c.clone(), w.clone()).unwrap();
    let curved = ModelBuilder::new(c.clone(), w.clone())
        .unwrap()
        .with_table_curvature(Some(curv));
    assert!(curved.table_curvature() && !plain.table_curvature());
    let model = curved.build(&plan).unwrap();
    assert!(model.plan().table_curvature && !plain.build(&plan).unwrap().plan().table_curvature);
    assert!(model.plan().to_json().contains("table_curvature"));
    assert!(!plan.to_json().contains("table_curvature"));
    // A plan asking for it cannot be built from f32 tables without calibration data: an error,
    // not PyTorch's bytes under a plan that says otherwise.
    let asked = model.plan().clone();
    assert!(Model::from_parts(&c, &w, &asked).is_err());
    assert!(plain.build(&asked).is_err());
    // With the builder's encoded weights it builds and predicts exactly as the builder's model.
    let enc = curved.weights_for(&asked).unwrap();
    let again = Model::from_parts(&c, &enc, &asked).unwrap();
    let batch = &calib.batches[0];
    assert_eq!(
        again.predict(batch, &mut Scratch::new()).unwrap(),
        model.predict(batch, &mut Scratch::new()).unwrap()
    );
}

#[test]
fn the_workflow_saves_what_it_validated() {
    let c = common::config();
    let w = common::weights(6, 0.3);
    let req = QuantizeRequest {
        config: c.clone(),
        weights: w.clone(),
        calib: common::set(&w, 2000, 33),
        eval: common::set(&w, 4000, 34),
        plan: PlanRequest::Preset(quantrec_quant::plans::Preset::Int4Tables),
        search: SearchOptions {
            budget: Budget::Ne(100.0),
            objective: Objective::Bytes,
            ..SearchOptions::default()
        },
        calib_method: RangeMethod::L2 { bits: 8 },
    };
    assert!(req.search.table_curvature, "on by default");
    let out = quantize(&req).unwrap();
    assert!(out.plan.table_curvature);
    let bytes =
        quantrec_model::artifact::to_bytes(&c, &out.weights, &out.plan, &Default::default())
            .unwrap();
    let reloaded = quantrec_model::artifact::Artifact::from_bytes(bytes)
        .unwrap()
        .model;
    let batch = &req.eval.batches[0];
    assert_eq!(
        reloaded.predict(batch, &mut Scratch::new()).unwrap(),
        out.model.predict(batch, &mut Scratch::new()).unwrap()
    );
    // The same plan from f32 weights (what saving `req.weights` would do) is refused.
    assert!(quantrec_model::artifact::to_bytes(&c, &w, &out.plan, &Default::default()).is_err());
}

#[test]
fn refresh_re_measures_the_curvature_on_the_new_snapshot() {
    let c = common::config();
    let day2 = common::weights(8, 0.3);
    let mut previous = Plan::uniform(
        &c,
        quantrec_model::plan::LayerPrecision::F32,
        TableFormat::Fused4,
    );
    previous.table_curvature = true;
    let req = quantrec_quant::refresh::RefreshRequest {
        previous_plan: previous,
        previous_delta_ne_pct: None,
        config: c.clone(),
        weights: day2.clone(),
        calib: common::set(&day2, 2000, 35),
        eval: common::set(&day2, 4000, 36),
        budget: Budget::Ne(100.0),
        calib_method: RangeMethod::L2 { bits: 8 },
        keep_static: false,
    };
    let out = quantrec_quant::refresh::refresh(&req).unwrap();
    assert!(out.passed && out.plan.table_curvature);
    // The saved tables are the new snapshot's, rounded in its own curvature.
    let curv = TableCurvature::measure(&c, &day2, &req.calib).unwrap();
    for (t, tc) in c.tables.iter().enumerate() {
        let TableData::F32(values) = &day2.tables[t] else {
            panic!("random tables are f32")
        };
        let want = curv
            .encode(t, TableFormat::Fused4, tc.rows, values, false)
            .unwrap();
        let TableData::Encoded { bytes, .. } = &out.weights.tables[t] else {
            panic!("table {t} was saved unencoded")
        };
        assert_eq!(bytes, &want, "table {t}");
    }
}
