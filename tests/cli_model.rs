//! `quantrec import`, `inspect` and `predict` end to end on the shared fixtures.

use std::path::PathBuf;

mod common;
use common::quantrec;

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli", name)
}

#[test]
fn import_inspect_predict_reproduce_the_fixture() {
    let fx = |n: &str| quantrec_testkit::fixture(env!("CARGO_MANIFEST_DIR"), n);
    let model = tmp("dlrm_dot.safetensors");
    let out = tmp("out.safetensors");
    let tsv = tmp("out.tsv");
    let m = model.to_str().unwrap();
    quantrec(&[
        "import",
        fx("dlrm_dot.safetensors").to_str().unwrap(),
        "-o",
        m,
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&quantrec(&["inspect", m, "--json", "--verify"])).unwrap();
    assert_eq!(json["config"]["interaction"]["kind"], "dot");
    assert_eq!(json["verified"], "ok");
    assert_eq!(json["ratio_vs_f32"], 1.0);
    assert!(quantrec(&["inspect", m]).contains("tables.4"));
    let inputs = fx("dlrm_dot.inputs.safetensors");
    for o in [&out, &tsv] {
        quantrec(&[
            "predict",
            m,
            "--inputs",
            inputs.to_str().unwrap(),
            "-o",
            o.to_str().unwrap(),
        ]);
    }
    let expected = quantrec_testkit::tensors(&inputs)["expected"].f32s();
    let got = quantrec_testkit::tensors(&out)["output"].f32s();
    let text = std::fs::read_to_string(&tsv).unwrap();
    let from_tsv: Vec<f32> = text
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(from_tsv, got);
    assert_eq!(
        got.len(),
        expected.len(),
        "predict wrote {} outputs for {} expected",
        got.len(),
        expected.len()
    );
    for (g, w) in got.iter().zip(&expected) {
        assert!((g - w).abs() <= 1e-5 * w.abs(), "{g} vs {w}");
    }
    for p in [model, out, tsv] {
        std::fs::remove_file(p).unwrap();
    }
}
