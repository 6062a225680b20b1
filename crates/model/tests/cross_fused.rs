//! The fused DCN-v2 cross net (row-blocked `W`, element-wise step writing the next int8 layer's
//! codes, static or per row) against the observed, unfused path, and predict at 1 and 2 threads: every plan
//! must give the same bits whatever the path, the thread count and the batch size's chunking.

mod common;

use common::{multi_hot_batch, observed, pool};
use quantrec_data::Batch;
use quantrec_kernels::formats::TableFormat;
use quantrec_kernels::gemm::QParams;
use quantrec_model::config::{Interaction, ModelConfig, Naming, PoolingMode, TableConfig};
use quantrec_model::plan::{ActivationPlan, CrossPrecision, LayerPrecision};
use quantrec_model::{Model, Plan, Scratch, Weights};

/// A DCN with 3 cross layers over 5 × 16 features, multi-hot tables.
fn config() -> ModelConfig {
    ModelConfig {
        dense_features: 13,
        bottom_mlp: vec![32, 16],
        tables: [50, 400, 9, 120]
            .iter()
            .map(|&rows| TableConfig {
                rows,
                dim: 16,
                pooling: PoolingMode::Sum,
            })
            .collect(),
        interaction: Interaction::Dcn {
            layers: 3,
            rank: 24,
        },
        top_mlp: vec![48, 16, 1],
        naming: Naming::TorchRec,
    }
}

/// `size` samples, 0 to 6 ids per bag.
fn batch(cfg: &ModelConfig, size: usize, seed: u64) -> Batch {
    multi_hot_batch(cfg, size, seed, 6)
}

fn int8(activations: ActivationPlan) -> LayerPrecision {
    LayerPrecision::Int8 {
        per_channel: true,
        activations,
    }
}

/// Static int8 with the range `[lo, hi]` an observer saw.
fn static_int8((lo, hi): (f32, f32)) -> LayerPrecision {
    let q = QParams::for_u8_range(lo, hi);
    int8(ActivationPlan::Static {
        scale: q.scale,
        zero_point: q.zero_point,
    })
}

/// The plans under test: every layer static int8 but the last (the automatic plan's shape),
/// static V with f32 W (codes into a V from a non-int8 W), per-row dynamic, PyTorch's per-tensor
/// dynamic recipe, and f32.
fn plans(cfg: &ModelConfig, weights: &Weights) -> Vec<(&'static str, Plan)> {
    let f32_model = Model::from_parts(cfg, weights, &Plan::f32(cfg)).unwrap();
    let (_, rec) = observed(&f32_model, &batch(cfg, 500, 99));
    let st = |name: String| static_int8(rec.ranges[&name]);
    let mut all_static = Plan::f32(cfg);
    all_static.bottom = (0..cfg.bottom_mlp.len())
        .map(|i| st(format!("bottom.{i}")))
        .collect();
    all_static.cross = (0..3)
        .map(|l| CrossPrecision {
            v: st(format!("cross.{l}.v")),
            w: st(format!("cross.{l}.w")),
        })
        .collect();
    all_static.top = (0..cfg.top_mlp.len())
        .map(|i| st(format!("top.{i}")))
        .collect();
    *all_static.top.last_mut().unwrap() = LayerPrecision::F32;
    all_static.tables = vec![TableFormat::Fused4; cfg.tables.len()];
    let mut v_only = all_static.clone();
    for c in &mut v_only.cross {
        c.w = LayerPrecision::F32;
    }
    // The DLRM-v2 automatic plan's mix: static and per-row dynamic layers side by side, so the
    // cross net hands per-row codes to a per-row V (cross.1.v), to a static W's V (cross.2.v is
    // static, cross.2.w per-row) and, after the last layer, to the first top layer.
    let mut mixed = all_static.clone();
    let rows = int8(ActivationPlan::DynamicPerRow);
    mixed.cross[1].v = rows;
    mixed.cross[1].w = rows;
    mixed.cross[2].w = rows;
    mixed.top[0] = rows;
    mixed.top[1] = rows;
    mixed.tables = vec![TableFormat::Fused2; cfg.tables.len()];
    vec![
        ("static", all_static),
        ("static V, f32 W", v_only),
        ("static and per-row mixed", mixed),
        (
            "per-row",
            Plan::uniform(
                cfg,
                int8(ActivationPlan::DynamicPerRow),
                TableFormat::Fused8,
            ),
        ),
        (
            "per-tensor",
            Plan::uniform(cfg, int8(ActivationPlan::Dynamic), TableFormat::Fused4),
        ),
        ("f32", Plan::f32(cfg)),
    ]
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn fused_cross_net_matches_the_observed_path_bit_for_bit() {
    let cfg = config();
    let weights = Weights::random(&cfg, 21);
    for (name, plan) in plans(&cfg, &weights) {
        let model = Model::from_parts(&cfg, &weights, &plan).unwrap();
        let mut scratch = Scratch::new();
        for (size, seed) in [(1, 1), (7, 2), (33, 3), (64, 4), (300, 5)] {
            let b = batch(&cfg, size, seed);
            let fused = model.predict(&b, &mut scratch).unwrap().to_vec();
            let (unfused, _) = observed(&model, &b);
            assert_eq!(bits(&fused), bits(&unfused), "{name}, batch {size}");
        }
    }
}

#[test]
fn predict_gives_the_same_bits_at_one_and_two_threads() {
    let cfg = config();
    let weights = Weights::random(&cfg, 22);
    for (name, plan) in plans(&cfg, &weights) {
        let model = Model::from_parts(&cfg, &weights, &plan).unwrap();
        for (size, seed) in [(64, 6), (1024, 7)] {
            let b = batch(&cfg, size, seed);
            let one = pool(1).install(|| model.predict(&b, &mut Scratch::new()).unwrap().to_vec());
            let mut scratch = Scratch::new();
            for _ in 0..2 {
                let two = pool(2).install(|| model.predict(&b, &mut scratch).unwrap().to_vec());
                assert_eq!(bits(&two), bits(&one), "{name}, batch {size}");
            }
        }
    }
}

#[test]
fn fused_and_unchained_static_plans_differ_only_within_a_step() {
    // Chaining off: every layer quantizes f32 itself (the unfused element-wise step).
    let cfg = config();
    let weights = Weights::random(&cfg, 23);
    let (_, plan) = plans(&cfg, &weights).swap_remove(0);
    let chained = Model::from_parts(&cfg, &weights, &plan).unwrap();
    let mut unchained = chained.clone();
    unchained.set_int8_chaining(false);
    let b = batch(&cfg, 200, 8);
    let c = chained.predict(&b, &mut Scratch::new()).unwrap().to_vec();
    let u = unchained.predict(&b, &mut Scratch::new()).unwrap().to_vec();
    let (o, _) = observed(&unchained, &b);
    assert_eq!(bits(&u), bits(&o), "unchained predict vs observed");
    let worst = c
        .iter()
        .zip(&u)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(worst < 5e-3, "chained vs unchained: {worst}");
}
