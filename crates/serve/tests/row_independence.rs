//! Model-level facts the batcher relies on: under every plan the server merges, a row's logit is
//! bit-identical whether the row runs alone, inside a small batch or inside a batch large enough
//! to be split into parallel chunks.

mod common;

use common::{artifact_bytes, plans, random_batch, slice_rows, small_config};
use quantrec_model::artifact::Artifact;
use quantrec_model::plan::ActivationPlan;
use quantrec_model::{LayerPrecision, Plan, Scratch};

fn logits_of(model: &quantrec_model::Model, b: &quantrec_model::Batch) -> Vec<f32> {
    model.predict_logits(b, &mut Scratch::new()).unwrap().to_vec()
}

#[test]
fn merged_rows_equal_rows_alone_for_every_mergeable_plan() {
    let config = small_config();
    let big = random_batch(&config, 600, 11);
    for (name, plan) in plans(&config) {
        let model = Artifact::from_bytes(artifact_bytes(&config, &plan, 3))
            .unwrap()
            .model;
        let merged = logits_of(&model, &big);
        // Alone, and in sub-batches of the heights where kernels switch paths.
        for (lo, hi) in [(0, 1), (5, 7), (17, 18), (100, 117), (255, 258), (300, 600), (599, 600)] {
            let part = logits_of(&model, &slice_rows(&big, lo, hi));
            for (i, (a, b)) in part.iter().zip(&merged[lo..hi]).enumerate() {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "plan {name}: row {} alone-in-{lo}..{hi} {a} vs merged {b}",
                    lo + i
                );
            }
        }
    }
}

#[test]
fn dynamic_int8_is_batch_dependent() {
    // The reason the server never merges requests of a dynamic-int8 model: the activation range is
    // the whole call's min/max, so a row's score depends on its neighbours.
    let config = small_config();
    let dyn8 = LayerPrecision::Int8 {
        per_channel: true,
        activations: ActivationPlan::Dynamic,
    };
    let plan = Plan::uniform(&config, dyn8, quantrec_kernels::formats::TableFormat::F32);
    let model = Artifact::from_bytes(artifact_bytes(&config, &plan, 3))
        .unwrap()
        .model;
    let big = random_batch(&config, 64, 12);
    let merged = logits_of(&model, &big);
    let differs = (0..64).any(|r| {
        logits_of(&model, &slice_rows(&big, r, r + 1))[0].to_bits() != merged[r].to_bits()
    });
    assert!(differs, "dynamic int8 turned out row-independent");
}
