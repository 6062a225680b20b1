//! Predict's steady state and the DCN-v2 path: chunk buffers per worker (not per chunk) with
//! results independent of the thread count, u8 chaining inside the cross layers, and per-row
//! dynamic int8 activations, whose scores do not depend on the batch a row arrives in.

mod common;

use common::{multi_hot_batch, observed, pool};
use quantrec_data::{Batch, batch_ops};
use quantrec_kernels::formats::TableFormat;
use quantrec_kernels::gemm::QParams;
use quantrec_model::config::{Interaction, ModelConfig, Naming, PoolingMode, TableConfig};
use quantrec_model::plan::{ActivationPlan, CrossPrecision, LayerPrecision};
use quantrec_model::{Model, Plan, Scratch, Weights};

/// A small DLRM-v2 (DCN) with multi-hot tables.
fn dcn_config() -> ModelConfig {
    ModelConfig {
        dense_features: 13,
        bottom_mlp: vec![32, 16],
        tables: [40, 300, 7]
            .iter()
            .map(|&rows| TableConfig {
                rows,
                dim: 16,
                pooling: PoolingMode::Sum,
            })
            .collect(),
        interaction: Interaction::Dcn { layers: 2, rank: 8 },
        top_mlp: vec![32, 16, 1],
        naming: Naming::TorchRec,
    }
}

/// `size` samples, 0 to 5 ids per bag.
fn batch(cfg: &ModelConfig, size: usize, seed: u64) -> Batch {
    multi_hot_batch(cfg, size, seed, 5)
}

fn per_row() -> LayerPrecision {
    LayerPrecision::Int8 {
        per_channel: true,
        activations: ActivationPlan::DynamicPerRow,
    }
}

#[test]
fn chunk_buffers_are_per_worker_and_results_do_not_depend_on_threads() {
    let cfg = dcn_config();
    let weights = Weights::random(&cfg, 3);
    for plan in [
        Plan::f32(&cfg),
        Plan::uniform(&cfg, per_row(), TableFormat::Fused4),
    ] {
        let mut model = Model::from_parts(&cfg, &weights, &plan).unwrap();
        model.set_chunk_size(8);
        let b = batch(&cfg, 321, 1);
        let mut one = Scratch::new();
        let want = pool(1).install(|| model.predict(&b, &mut one).unwrap().to_vec());
        assert_eq!(one.chunk_buffer_sets(), 1, "41 chunks on one thread");
        let mut two = Scratch::new();
        for _ in 0..3 {
            let got = pool(2).install(|| model.predict(&b, &mut two).unwrap().to_vec());
            assert_eq!(got, want, "two threads changed a score");
        }
        assert!(
            (1..=2).contains(&two.chunk_buffer_sets()),
            "41 chunks on two threads kept {} buffer sets",
            two.chunk_buffer_sets()
        );
        // A smaller batch afterwards reuses the buffers and scores exactly as a fresh scratch.
        let small = batch(&cfg, 5, 2);
        let fresh = model.predict(&small, &mut Scratch::new()).unwrap().to_vec();
        assert_eq!(model.predict(&small, &mut two).unwrap(), &fresh[..]);
    }
}

#[test]
fn a_thread_capped_call_keeps_to_one_worker_and_scores_the_same() {
    let cfg = dcn_config();
    let weights = Weights::random(&cfg, 4);
    let dynamic = LayerPrecision::Int8 {
        per_channel: true,
        activations: ActivationPlan::Dynamic,
    };
    for plan in [
        Plan::f32(&cfg),
        Plan::uniform(&cfg, per_row(), TableFormat::Fused4),
        Plan::uniform(&cfg, dynamic, TableFormat::Fused8),
    ] {
        let model = Model::from_parts(&cfg, &weights, &plan).unwrap();
        let b = batch(&cfg, 300, 9);
        let two = pool(2);
        let want = two.install(|| {
            model
                .predict_logits(&b, &mut Scratch::new())
                .unwrap()
                .to_vec()
        });
        for threads in [1, 2, 5] {
            let mut scratch = Scratch::new();
            let got = two.install(|| {
                model
                    .predict_logits_threads(&b, &mut scratch, threads)
                    .unwrap()
                    .to_vec()
            });
            assert_eq!(got, want, "{threads} thread(s) changed a logit");
            if threads == 1 {
                assert_eq!(
                    scratch.chunk_buffer_sets(),
                    1,
                    "a one-thread call used one worker"
                );
            }
        }
        // The cap ends with the call.
        assert_eq!(
            two.install(quantrec_kernels::parallel::threads),
            2,
            "the cap outlived its call"
        );
    }
}

#[test]
fn per_row_dynamic_int8_scores_do_not_depend_on_the_batch() {
    let cfg = dcn_config();
    let weights = Weights::random(&cfg, 5);
    let mut plan = Plan::uniform(&cfg, per_row(), TableFormat::Fused8);
    plan.bottom[0] = LayerPrecision::F32;
    let model = Model::from_parts(&cfg, &weights, &plan).unwrap();
    let b = batch(&cfg, 40, 7);
    let whole = model.predict(&b, &mut Scratch::new()).unwrap().to_vec();
    let mut scratch = Scratch::new();
    for (i, &w) in whole.iter().enumerate() {
        let alone = batch_ops::slice(&b, i, i + 1);
        let p = model.predict(&alone, &mut scratch).unwrap()[0];
        assert_eq!(p, w, "row {i} alone");
    }
    // PyTorch's per-tensor recipe stays available, and there a row does depend on its batch.
    let tensor = Plan::uniform(
        &cfg,
        LayerPrecision::Int8 {
            per_channel: true,
            activations: ActivationPlan::Dynamic,
        },
        TableFormat::Fused8,
    );
    let model = Model::from_parts(&cfg, &weights, &tensor).unwrap();
    let whole = model.predict(&b, &mut Scratch::new()).unwrap().to_vec();
    let differs = (0..b.size).any(|i| {
        let alone = batch_ops::slice(&b, i, i + 1);
        model.predict(&alone, &mut Scratch::new()).unwrap()[0] != whole[i]
    });
    assert!(differs, "per-tensor ranges should depend on the batch");
}

#[test]
fn per_row_plans_serialize_and_name_themselves() {
    let cfg = dcn_config();
    let plan = Plan::uniform(&cfg, per_row(), TableFormat::Fused4);
    let json = serde_json::to_string(&plan).unwrap();
    assert!(json.contains(r#""kind":"dynamic_per_row""#), "{json}");
    assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), plan);
    assert_eq!(per_row().short_name(), "int8-dynrow/pc");
}

fn static_int8(lo: f32, hi: f32) -> (LayerPrecision, QParams) {
    let q = QParams::for_u8_range(lo, hi);
    let p = LayerPrecision::Int8 {
        per_channel: true,
        activations: ActivationPlan::Static {
            scale: q.scale,
            zero_point: q.zero_point,
        },
    };
    (p, q)
}

#[test]
fn cross_layers_chain_u8_codes_from_v_to_a_static_w() {
    let cfg = dcn_config();
    let weights = Weights::random(&cfg, 11);
    let f32_model = Model::from_parts(&cfg, &weights, &Plan::f32(&cfg)).unwrap();
    let (_, calib) = observed(&f32_model, &batch(&cfg, 400, 12));
    let mut plan = Plan::f32(&cfg);
    let mut w_q = Vec::new();
    plan.cross = (0..2)
        .map(|l| {
            let (v, _) = {
                let (lo, hi) = calib.ranges[&format!("cross.{l}.v")];
                static_int8(lo, hi)
            };
            let (w, q) = {
                let (lo, hi) = calib.ranges[&format!("cross.{l}.w")];
                static_int8(lo, hi)
            };
            w_q.push(q);
            CrossPrecision { v, w }
        })
        .collect();
    let chained = Model::from_parts(&cfg, &weights, &plan).unwrap();
    let mut unchained = chained.clone();
    unchained.set_int8_chaining(false);
    let b = batch(&cfg, 200, 13);
    let got_c = chained.predict(&b, &mut Scratch::new()).unwrap().to_vec();
    let got_u = unchained.predict(&b, &mut Scratch::new()).unwrap().to_vec();
    let want = f32_model.predict(&b, &mut Scratch::new()).unwrap().to_vec();
    let (obs_c, rec_c) = observed(&chained, &b);
    assert_eq!(obs_c, got_c, "observing changed the chained scores");
    for (l, q) in w_q.iter().enumerate() {
        // What V hands W is, seen dequantized, exactly a code of W's input parameters.
        for &v in &rec_c.outputs[&format!("cross.{l}.v")] {
            let code = ((v / q.scale).round_ties_even() as i32 + q.zero_point).clamp(0, 255);
            let back = q.scale * (code - q.zero_point) as f32;
            assert!(
                (v - back).abs() <= q.scale * 1e-3,
                "cross.{l}.v: {v} vs {back}"
            );
        }
    }
    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    // Unchained, W quantizes V's f32 output itself: the observer sees values between codes.
    let (_, rec_u) = observed(&unchained, &b);
    let q = w_q[0];
    let off_code = rec_u.outputs["cross.0.v"].iter().any(|&v| {
        let code = ((v / q.scale).round_ties_even() as i32 + q.zero_point).clamp(0, 255);
        (v - q.scale * (code - q.zero_point) as f32).abs() > q.scale * 1e-3
    });
    assert!(off_code, "the unchained V output should be plain f32");
    let (cu, cf) = (max_diff(&got_c, &got_u), max_diff(&got_c, &want));
    assert!(
        cu < 5e-3,
        "chained vs unchained probabilities differ by {cu}"
    );
    assert!(cf < 0.05, "chained int8 cross vs f32: {cf}");
}
