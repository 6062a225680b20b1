//! Shared helpers of the model crate's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use quantrec_model::import::{ImportOverrides, Imported, import_file};
use quantrec_model::inputs::{InputFile, load_inputs};

/// Path of a shared fixture.
pub fn fixture(name: &str) -> PathBuf {
    quantrec_testkit::fixture(env!("CARGO_MANIFEST_DIR"), name)
}

/// Imports `NAME.safetensors`.
pub fn import(name: &str) -> Imported {
    import_file(
        &fixture(&format!("{name}.safetensors")),
        &ImportOverrides::default(),
    )
    .unwrap_or_else(|e| panic!("import {name}: {e}"))
}

/// Reads `NAME.inputs.safetensors`.
pub fn inputs(name: &str) -> InputFile {
    load_inputs(&fixture(&format!("{name}.inputs.safetensors"))).unwrap()
}

/// A fresh path in the temp directory (removed by the caller).
pub fn temp_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "quantrec-model-test-{}-{tag}.safetensors",
        std::process::id()
    ))
}

/// Asserts `|got - want| <= rel · max(|want|, floor)` elementwise.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rel: f32, floor: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = rel * w.abs().max(floor);
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: got {g}, expected {w} (tolerance {tol})"
        );
    }
}
