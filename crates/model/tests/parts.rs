//! The bytes per part counted from the plan are the bytes the artifact stores.

use quantrec_kernels::formats::TableFormat;
use quantrec_model::artifact::{self, Artifact, Provenance};
use quantrec_model::import::{ImportOverrides, import_state_dict};
use quantrec_model::parts::parts;
use quantrec_model::plan::ActivationPlan;
use quantrec_model::state_dict::StateDict;
use quantrec_model::{LayerPrecision, Plan};

#[test]
fn plan_bytes_equal_stored_bytes_for_every_part() {
    for fixture in ["dlrm_dot.safetensors", "torchrec_dlrm_dcn.safetensors"] {
        let path = quantrec_testkit::fixture(env!("CARGO_MANIFEST_DIR"), fixture);
        let bytes = quantrec_testkit::read(&path);
        let sd = StateDict::from_bytes(fixture, &bytes).unwrap();
        let imp = import_state_dict(sd, &ImportOverrides::default()).unwrap();
        let int8 = LayerPrecision::Int8 {
            per_channel: true,
            activations: ActivationPlan::Dynamic,
        };
        let mut plans = vec![Plan::f32(&imp.config)];
        let mut mixed = Plan::uniform(&imp.config, int8, TableFormat::Fused8);
        if let Some(l) = mixed.bottom.first_mut() {
            *l = LayerPrecision::F16;
        }
        plans.push(mixed);
        for plan in plans {
            let file = artifact::to_bytes(&imp.config, &imp.weights, &plan, &Provenance::default())
                .unwrap();
            let a = Artifact::from_bytes(file).unwrap();
            let counted = parts(&imp.config, &plan);
            assert!(!counted.is_empty());
            for p in &counted {
                let stored: usize = a
                    .tensor_bytes
                    .iter()
                    .filter(|(n, _)| n.starts_with(&format!("{}.", p.name)) || **n == p.name)
                    .map(|(_, b)| b)
                    .sum();
                assert_eq!(p.bytes, stored as u64, "{fixture} {}", p.name);
            }
            let all: usize = a.tensor_bytes.values().sum();
            let sum: u64 = counted.iter().map(|p| p.bytes).sum();
            assert_eq!(
                sum, all as u64,
                "{fixture}: every stored tensor is in a part"
            );
        }
    }
}
