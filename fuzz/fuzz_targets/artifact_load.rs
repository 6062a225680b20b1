//! Artifact loading (header, metadata JSON, tensors against config and plan); a loaded artifact
//! must verify or refuse cleanly, give its weights back and predict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quantrec_model::Artifact;

fuzz_target!(|data: &[u8]| {
    let Ok(a) = Artifact::from_bytes(data.to_vec()) else {
        return;
    };
    let _ = a.verify();
    let _ = a.weights();
    quantrec_fuzz::predict_small(&a.model);
});
