//! `quantrec train` end to end: a tiny synthetic run writes a dlrm state dict that
//! `quantrec import` accepts and `quantrec predict` scores well; a TSV run with a holdout works.

mod common;
use common::{quantrec, s};

#[test]
fn train_synthetic_then_import_and_predict() {
    let dir = std::env::temp_dir().join(format!("quantrec-train-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.safetensors");
    let json: serde_json::Value = serde_json::from_str(&quantrec(&[
        "train",
        "--synthetic",
        "--rows",
        "30000",
        "--eval-rows",
        "5000",
        "--max-table-rows",
        "300",
        "--threads",
        "2",
        "--json",
        "-o",
        s(&state),
    ]))
    .unwrap();
    let ne = json["holdout"]["ne"].as_f64().unwrap();
    let teacher = json["teacher_ne"].as_f64().unwrap();
    assert!(ne < 0.97, "the model learned nothing: NE {ne}");
    assert!(teacher < 0.9 && teacher > 0.5, "teacher NE {teacher}");
    assert!((json["ne_ratio"].as_f64().unwrap() - ne / teacher).abs() < 1e-9);
    assert_eq!(json["holdout"]["samples"], 5000);

    // The state dict imports as a facebookresearch/dlrm model and scores held-out rows well.
    let model = dir.join("model.safetensors");
    quantrec(&["import", s(&state), "-o", s(&model)]);
    let inputs = dir.join("inputs.safetensors");
    quantrec(&[
        "gen",
        "--rows",
        "4000",
        "--split",
        "evaluation",
        "--format",
        "batch",
        "--max-table-rows",
        "300",
        "--zipf",
        &json["zipf_exponent"].to_string(),
        "-o",
        s(&inputs),
    ]);
    let out = dir.join("out.safetensors");
    quantrec(&["predict", s(&model), "--inputs", s(&inputs), "-o", s(&out)]);
    let probs = quantrec_testkit::tensors(&out)["output"].f32s();
    let labels = quantrec_testkit::tensors(&inputs)["labels"].f32s();
    assert_eq!(probs.len(), 4000);
    let n = labels.len() as f64;
    let ctr = labels.iter().map(|&y| f64::from(y)).sum::<f64>() / n;
    let h = -(ctr * ctr.ln() + (1.0 - ctr) * (1.0 - ctr).ln());
    let ll = probs
        .iter()
        .zip(&labels)
        .map(|(&p, &y)| {
            let p = f64::from(p).clamp(1e-7, 1.0 - 1e-7);
            -(f64::from(y) * p.ln() + (1.0 - f64::from(y)) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / n;
    assert!(
        (ll / h - ne).abs() < 0.05,
        "imported model NE {} vs trainer holdout NE {ne}",
        ll / h
    );

    // A TSV file with the last rows held out.
    let tsv = dir.join("train.tsv");
    quantrec(&[
        "gen",
        "--rows",
        "8000",
        "--max-table-rows",
        "300",
        "-o",
        s(&tsv),
    ]);
    let state2 = dir.join("state2.safetensors");
    let json: serde_json::Value = serde_json::from_str(&quantrec(&[
        "train",
        "--data",
        s(&tsv),
        "--holdout-rows",
        "2000",
        "--max-table-rows",
        "300",
        "--batch-size",
        "128",
        "--threads",
        "1",
        "--json",
        "-o",
        s(&state2),
    ]))
    .unwrap();
    assert_eq!(json["train_rows"], 6000);
    assert_eq!(json["holdout"]["samples"], 2000);
    let auc = json["holdout"]["auc"].as_f64().unwrap();
    assert!(auc > 0.55, "holdout AUC {auc}");
    std::fs::remove_dir_all(&dir).ok();
}
