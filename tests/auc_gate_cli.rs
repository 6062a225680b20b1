//! `quantrec quantize --min-auc-ratio`: MLPerf's accuracy criterion beside the ΔNE budget,
//! recorded in the artifact's provenance; bad ratios and an AUC-drop budget beside it are refused.

use std::path::Path;
use std::process::{Command, Output};

use quantrec_data::synth::criteo_table_rows;
use quantrec_model::artifact::{self, Artifact, Provenance};
use quantrec_model::{Plan, Weights};
use quantrec_train::suggested_config;

fn quantrec(args: &[&str], paths: &[&Path]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_quantrec"));
    c.args(args);
    for p in paths {
        c.arg(p);
    }
    c.output().unwrap()
}

#[test]
fn the_auc_ratio_gate_is_applied_and_recorded() {
    let dir = std::env::temp_dir().join(format!("quantrec-auc-gate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data.tsv");
    let o = quantrec(
        &["gen", "--rows", "2000", "--max-table-rows", "300", "-o"],
        &[&data],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let config = suggested_config(13, &criteo_table_rows(300), 8);
    let model = dir.join("f32.safetensors");
    artifact::save(
        &model,
        &config,
        &Weights::random(&config, 5),
        &Plan::f32(&config),
        &Provenance::default(),
    )
    .unwrap();
    let out = dir.join("q.safetensors");
    let run = |extra: &[&str]| {
        let mut args = vec!["quantize", "--plan", "fp16", "--min-auc-ratio"];
        args.extend_from_slice(extra);
        let m = model.to_str().unwrap();
        let d = data.to_str().unwrap();
        let o = out.to_str().unwrap();
        args.extend_from_slice(&[m, "--calib", d, "--eval", d, "-o", o]);
        quantrec(&args, &[])
    };
    let o = run(&["0.999"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("AUC >= 0.999 × f32 AUC"), "{stdout}");
    let a = Artifact::load(&out).unwrap();
    let notes = a.meta.provenance.notes.unwrap();
    assert!(
        notes.contains("AUC >= 0.999") && notes.contains("auc_ratio"),
        "{notes}"
    );

    let o = run(&["1.5"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--min-auc-ratio"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(&["0.999", "--budget-auc", "0.01"]);
    assert!(!o.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}
