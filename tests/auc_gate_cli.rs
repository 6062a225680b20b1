//! `quantrec quantize --min-auc-ratio`: MLPerf's accuracy criterion beside the ΔNE budget,
//! recorded in the artifact's provenance; bad ratios and an AUC-drop budget beside it are refused.

use quantrec_model::artifact::Artifact;

mod common;
use common::run_with as quantrec;

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
    let model = dir.join("f32.safetensors");
    common::save_random_f32(&model, 300, 5);
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
