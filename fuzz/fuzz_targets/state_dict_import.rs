//! PyTorch state-dict parsing and import (architecture inference); an imported model must build
//! and predict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quantrec_model::import::{ImportOverrides, import_state_dict};
use quantrec_model::state_dict::StateDict;
use quantrec_model::{Model, Plan};

fuzz_target!(|data: &[u8]| {
    let Ok(sd) = StateDict::from_bytes("fuzz", data) else {
        return;
    };
    let Ok(imp) = import_state_dict(sd, &ImportOverrides::default()) else {
        return;
    };
    let plan = Plan::f32(&imp.config);
    let model =
        Model::from_parts(&imp.config, &imp.weights, &plan).expect("an imported model must build");
    quantrec_fuzz::predict_small(&model);
});
