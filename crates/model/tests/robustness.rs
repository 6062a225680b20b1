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
