//! int8 static chaining in the MLPs (u8 activations between int8 layers) against the unchained
//! path and the f32 model, and the chunk semantics of dynamic int8 activation ranges.

mod common;

use common::{BatchSpec, Record, observed, random_batch};
use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::formats::TableFormat;
use quantrec_kernels::gemm::QParams;
use quantrec_model::config::{
    DotOrder, Interaction, ModelConfig, Naming, PoolingMode, TableConfig,
};
use quantrec_model::plan::{ActivationPlan, LayerPrecision};
use quantrec_model::{Model, Plan, Scratch, Weights};

fn config() -> ModelConfig {
    ModelConfig {
        dense_features: 13,
        bottom_mlp: vec![48, 32, 16],
        tables: (0..3)
            .map(|_| TableConfig {
                rows: 50,
                dim: 16,
                pooling: PoolingMode::Sum,
            })
            .collect(),
        interaction: Interaction::Dot {
            order: DotOrder::LowerByRow,
            self_interaction: false,
        },
        top_mlp: vec![64, 32, 1],
        naming: Naming::Dlrm,
    }
}

fn batch(size: usize, seed: u64) -> Batch {
    let spec = BatchSpec {
        dense: (-1.0, 3.0),
        min_len: 1,
        len_span: 3,
        skewed: false,
        weights: None,
    };
    random_batch(13, &[50; 3], size, seed, &spec)
}

/// Every MLP layer int8 static (per channel), calibrated on the f32 model's observed ranges.
fn static_plan(cfg: &ModelConfig, f32_model: &Model, calib: &Batch) -> (Plan, Record) {
    let (_, rec) = observed(f32_model, calib);
    let st = |name: String| {
        let (lo, hi) = rec.ranges[&name];
        let q = QParams::for_u8_range(lo, hi);
        LayerPrecision::Int8 {
            per_channel: true,
            activations: ActivationPlan::Static {
                scale: q.scale,
                zero_point: q.zero_point,
            },
        }
    };
    let mut plan = Plan::f32(cfg);
    plan.bottom = (0..cfg.bottom_mlp.len())
        .map(|i| st(format!("bottom.{i}")))
        .collect();
    plan.top = (0..cfg.top_mlp.len())
        .map(|i| st(format!("top.{i}")))
        .collect();
    (plan, rec)
}

fn static_q(p: LayerPrecision) -> QParams {
    match p {
        LayerPrecision::Int8 {
            activations: ActivationPlan::Static { scale, zero_point },
            ..
        } => QParams { scale, zero_point },
        other => panic!("not int8 static: {other:?}"),
    }
}

fn code(v: f32, q: QParams) -> i32 {
    ((v * (1.0 / q.scale)).round_ties_even() as i32 + q.zero_point).clamp(0, 255)
}

#[test]
fn chained_int8_layers_match_unchained_within_one_step_and_track_f32() {
    let cfg = config();
    let weights = Weights::random(&cfg, 5);
    let f32_model = Model::from_parts(&cfg, &weights, &Plan::f32(&cfg)).unwrap();
    let (plan, _) = static_plan(&cfg, &f32_model, &batch(512, 1));
    let chained = Model::from_parts(&cfg, &weights, &plan).unwrap();
    assert!(chained.int8_chaining());
    let mut unchained = chained.clone();
    unchained.set_int8_chaining(false);

    let b = batch(300, 2);
    let want = f32_model.predict(&b, &mut Scratch::new()).unwrap().to_vec();
    let got_c = chained.predict(&b, &mut Scratch::new()).unwrap().to_vec();
    let got_u = unchained.predict(&b, &mut Scratch::new()).unwrap().to_vec();

    // Observing does not change the chained results.
    let (obs_c, rec_c) = observed(&chained, &b);
    assert_eq!(obs_c, got_c);
    let (obs_u, rec_u) = observed(&unchained, &b);
    assert_eq!(obs_u, got_u);

    // Each chained layer's output codes (seen dequantized) are within one step of what the next
    // layer makes of the unchained layer's f32 output.
    for (prefix, layers) in [("bottom", &plan.bottom), ("top", &plan.top)] {
        for i in 0..layers.len() - 1 {
            let q = static_q(layers[i + 1]);
            let name = format!("{prefix}.{i}");
            let (c, u) = (&rec_c.outputs[&name], &rec_u.outputs[&name]);
            assert_eq!(c.len(), u.len());
            let worst = c
                .iter()
                .zip(u)
                .map(|(&c, &u)| (code(c, q) - code(u, q)).abs())
                .max()
                .unwrap();
            assert!(worst <= 1, "{name}: codes differ by {worst}");
            // Chained outputs are exactly representable codes of the next layer.
            for &v in c {
                let back = q.scale * (code(v, q) - q.zero_point) as f32;
                assert_eq!(v, back, "{name}: {v} is not a code of {q:?}");
            }
        }
    }
    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    let cu = max_diff(&got_c, &got_u);
    let cf = max_diff(&got_c, &want);
    let uf = max_diff(&got_u, &want);
    assert!(
        cu < 2e-3,
        "chained vs unchained probabilities differ by {cu}"
    );
    assert!(
        cf < 0.03 && uf < 0.03,
        "int8 vs f32: chained {cf}, unchained {uf}"
    );
}

#[test]
fn mixed_layers_chain_only_between_int8_and_static_int8() {
    let cfg = config();
    let weights = Weights::random(&cfg, 9);
    let f32_model = Model::from_parts(&cfg, &weights, &Plan::f32(&cfg)).unwrap();
    let (mut plan, _) = static_plan(&cfg, &f32_model, &batch(256, 3));
    // bottom: dynamic int8 → static int8 (chained) → f32; top: f32 → static → static (chained).
    plan.bottom[0] = LayerPrecision::Int8 {
        per_channel: false,
        activations: ActivationPlan::Dynamic,
    };
    plan.bottom[2] = LayerPrecision::F32;
    plan.top[0] = LayerPrecision::Bf16;
    plan.tables = vec![TableFormat::Fused8; 3];
    let chained = Model::from_parts(&cfg, &weights, &plan).unwrap();
    let mut unchained = chained.clone();
    unchained.set_int8_chaining(false);
    let b = batch(100, 4);
    let c = chained.predict(&b, &mut Scratch::new()).unwrap().to_vec();
    let u = unchained.predict(&b, &mut Scratch::new()).unwrap().to_vec();
    let f = f32_model.predict(&b, &mut Scratch::new()).unwrap().to_vec();
    for i in 0..b.size {
        assert!(
            (c[i] - u[i]).abs() < 2e-3,
            "sample {i}: {} vs {}",
            c[i],
            u[i]
        );
        assert!(
            (c[i] - f[i]).abs() < 0.05,
            "sample {i}: {} vs f32 {}",
            c[i],
            f[i]
        );
    }
}

/// Dynamic int8 layers choose their activation range per chunk (one kernel call), not per batch:
/// a batch split into chunks predicts exactly what each chunk predicts as a batch of its own, and
/// a chunk size covering the whole batch gives PyTorch's per-call semantics for the whole batch.
#[test]
fn dynamic_int8_ranges_are_per_chunk() {
    let cfg = config();
    let weights = Weights::random(&cfg, 13);
    let plan = Plan::uniform(
        &cfg,
        LayerPrecision::Int8 {
            per_channel: true,
            activations: ActivationPlan::Dynamic,
        },
        TableFormat::F32,
    );
    let mut model = Model::from_parts(&cfg, &weights, &plan).unwrap();
    model.set_chunk_size(64);
    let b = batch(200, 6);
    let whole = model.predict(&b, &mut Scratch::new()).unwrap().to_vec();
    for lo in (0..200).step_by(64) {
        let hi = (lo + 64).min(200);
        let part = sub_batch(&b, lo, hi);
        let p = model.predict(&part, &mut Scratch::new()).unwrap().to_vec();
        assert_eq!(p, whole[lo..hi], "chunk {lo}..{hi}");
    }
    model.set_chunk_size(200);
    let one_call = model.predict(&b, &mut Scratch::new()).unwrap().to_vec();
    assert_ne!(
        one_call, whole,
        "per-batch ranges should differ from per-chunk ones"
    );
    let diff = one_call
        .iter()
        .zip(&whole)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(diff < 0.02, "chunking changed a probability by {diff}");
}

fn sub_batch(b: &Batch, lo: usize, hi: usize) -> Batch {
    let nd = b.n_dense;
    Batch {
        size: hi - lo,
        n_dense: nd,
        dense: b.dense[lo * nd..hi * nd].to_vec(),
        sparse: b
            .sparse
            .iter()
            .map(|f| {
                let (s, e) = (f.offsets[lo] as usize, f.offsets[hi] as usize);
                let lengths: Vec<usize> = f.offsets[lo..=hi]
                    .windows(2)
                    .map(|w| (w[1] - w[0]) as usize)
                    .collect();
                SparseFeature::from_lengths(&lengths, f.ids[s..e].to_vec())
            })
            .collect(),
        labels: None,
    }
}
