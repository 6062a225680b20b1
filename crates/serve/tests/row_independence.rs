//! Model-level facts the batcher relies on: under every plan the server merges, a row's logit is
//! bit-identical whether its request runs alone or merged with others, once calls are padded the
//! way the batcher pads them (`validate::canonical_rows`); the warm-up probe agrees, and refuses
//! to merge for dynamic int8 activations.

mod common;

use common::{artifact_bytes, plans, random_batch, small_config};
use quantrec_data::Batch;
use quantrec_model::artifact::Artifact;
use quantrec_model::plan::ActivationPlan;
use quantrec_model::{LayerPrecision, Model, Plan, Scratch};
use quantrec_serve::validate::{canonical_rows, pad_batch, warm_up};

fn logits_of(model: &Model, b: &Batch) -> Vec<f32> {
    model
        .predict_logits(b, &mut Scratch::new())
        .unwrap()
        .to_vec()
}

#[test]
fn padded_calls_give_every_row_its_merged_score_for_every_mergeable_plan() {
    let config = small_config();
    let big = random_batch(&config, 700, 11);
    for (name, plan) in plans(&config) {
        let model = Artifact::from_bytes(artifact_bytes(&config, &plan, 3))
            .unwrap()
            .model;
        let merged = logits_of(&model, &big);
        for s in (1..=30).chain([255, 256, 257, 258, 259, 300, 513, 514]) {
            for lo in [0, 7, 100] {
                let mut part = quantrec_data::batch_ops::slice(&big, lo, lo + s);
                pad_batch(&mut part, canonical_rows(s, model.chunk_size()));
                let got = logits_of(&model, &part);
                for i in 0..s {
                    assert_eq!(
                        got[i].to_bits(),
                        merged[lo + i].to_bits(),
                        "plan {name}: row {} in a call of {} rows: {} vs {} in 700",
                        lo + i,
                        part.size,
                        got[i],
                        merged[lo + i]
                    );
                }
            }
        }
        let w = warm_up(&model).unwrap();
        assert!(w.mergeable, "plan {name}: {:?}", w.reason);
    }
}

#[test]
fn dynamic_int8_is_batch_dependent_and_never_merged() {
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
    let differs = (0..61).any(|r| {
        let mut p = quantrec_data::batch_ops::slice(&big, r, r + 3);
        pad_batch(&mut p, 3);
        logits_of(&model, &p)[0].to_bits() != merged[r].to_bits()
    });
    assert!(differs, "dynamic int8 turned out row-independent");
    assert!(!warm_up(&model).unwrap().mergeable);
}
