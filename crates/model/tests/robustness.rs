//! Regression tests for hostile files given to the model crate's readers (state dicts, inputs
//! files, artifacts): typed errors, and no allocation beyond what the file backs.

use quantrec_model::import::{ImportOverrides, import_state_dict};
use quantrec_model::inputs::read_inputs;
use quantrec_model::state_dict::StateDict;
use quantrec_model::{Artifact, ModelError};

/// A safetensors buffer with the given header JSON and `data` bytes.
fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn an_inputs_file_claiming_2_pow_60_featureless_samples_is_refused() {
    let bytes = safetensors(
        r#"{"dense":{"dtype":"F32","shape":[1152921504606846976,0],"data_offsets":[0,0]}}"#,
        &[],
    );
    match read_inputs("x", &bytes) {
        Err(ModelError::TensorShape { name, found, .. }) => {
            assert_eq!((name.as_str(), found), ("dense", vec![1 << 60, 0]))
        }
        other => panic!("{other:?}"),
    }
    let empty = safetensors(
        r#"{"dense":{"dtype":"F32","shape":[0,0],"data_offsets":[0,0]}}"#,
        &[],
    );
    assert_eq!(read_inputs("x", &empty).unwrap().batch.size, 0);
}

#[test]
fn huge_header_lengths_are_typed_errors_everywhere() {
    for n in [1u64 << 60, 99_000_000, 7] {
        let mut bytes = n.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        assert!(matches!(
            StateDict::from_bytes("x", &bytes),
            Err(ModelError::SafeTensors { .. })
        ));
        assert!(matches!(
            read_inputs("x", &bytes),
            Err(ModelError::SafeTensors { .. })
        ));
        assert!(matches!(
            Artifact::from_bytes(bytes.clone()),
            Err(ModelError::SafeTensors { .. })
        ));
    }
}

#[test]
fn zero_sized_state_dict_tensors_are_shape_errors() {
    // A table [0, 2^60] costs no bytes; import must refuse it rather than size anything from it.
    let bytes = safetensors(
        r#"{"emb_l.0.weight":{"dtype":"F32","shape":[0,1152921504606846976],"data_offsets":[0,0]}}"#,
        &[],
    );
    let sd = StateDict::from_bytes("x", &bytes).unwrap();
    match import_state_dict(sd, &ImportOverrides::default()) {
        Err(ModelError::TensorShape { name, .. }) => assert_eq!(name, "emb_l.0.weight"),
        other => panic!("{other:?}"),
    }
}

/// Artifact bytes of a small cat-interaction model whose stored config is edited by `edit`.
fn artifact_with_config(edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    use quantrec_model::artifact::{METADATA_KEY, Provenance, to_bytes};
    use quantrec_model::config::{Interaction, Naming, PoolingMode, TableConfig};
    use quantrec_model::{ModelConfig, Plan, Weights};
    let table = TableConfig {
        rows: 5,
        dim: 4,
        pooling: PoolingMode::Sum,
    };
    let cfg = ModelConfig {
        dense_features: 3,
        bottom_mlp: vec![4],
        tables: vec![table.clone(), table],
        interaction: Interaction::Cat,
        top_mlp: vec![3, 1],
        naming: Naming::Dlrm,
    };
    let w = Weights::random(&cfg, 1);
    let bytes = to_bytes(&cfg, &w, &Plan::f32(&cfg), &Provenance::default()).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let meta_text = header["__metadata__"][METADATA_KEY].as_str().unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(meta_text).unwrap();
    edit(&mut meta["config"]);
    header["__metadata__"][METADATA_KEY] = serde_json::Value::String(meta.to_string());
    let mut text = header.to_string().into_bytes();
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

#[test]
fn artifact_config_widths_that_overflow_are_refused() {
    // fuzz/regressions/artifact_load/config_dim_sum_overflow: two tables of dim 2^63 made the
    // interaction width overflow (a panic with overflow checks) while reading the top MLP.
    let bytes = artifact_with_config(|c| {
        c["tables"][0]["dim"] = (1u64 << 63).into();
        c["tables"][1]["dim"] = (1u64 << 63).into();
    });
    match Artifact::from_bytes(bytes) {
        Err(ModelError::ArtifactTensor { tensor, .. }) => {
            assert!(tensor.starts_with("top.0"), "{tensor}")
        }
        other => panic!("{:?}", other.map(|a| a.meta.config)),
    }
    // The unedited artifact loads (the edit, not the rewriting, is what is refused).
    assert!(Artifact::from_bytes(artifact_with_config(|_| {})).is_ok());
}
