//! `quantrec quantize`, `debug` and `refresh` end to end on tiny generated files.

use std::path::Path;

use quantrec_model::artifact::Artifact;

mod common;
use common::{run_with as quantrec, stdout_ok as ok};

#[test]
fn quantize_debug_refresh_on_generated_files() {
    let dir = std::env::temp_dir().join(format!("quantrec-quantize-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (calib, eval) = (dir.join("calib.tsv"), dir.join("eval.tsv"));
    for (split, path) in [("calibration", &calib), ("evaluation", &eval)] {
        ok(&quantrec(
            &[
                "gen",
                "--rows",
                "3000",
                "--max-table-rows",
                "400",
                "--split",
                split,
                "-o",
            ],
            &[path],
        ));
    }
    let model = dir.join("f32.safetensors");
    common::save_random_f32(&model, 400, 9);
    let out = dir.join("q.safetensors");
    let report = dir.join("report");
    let stdout = ok(&quantrec(
        &[
            "quantize",
            "--budget-ne",
            "1.0",
            "--latency-batch",
            "64",
            "--calib",
        ],
        &[
            &calib,
            Path::new("--eval"),
            &eval,
            Path::new("-o"),
            &out,
            Path::new("--report"),
            &report,
            &model,
        ],
    ));
    assert!(stdout.contains("ΔNE"), "{stdout}");
    assert!(report.join("frontier.png").exists());
    let art = Artifact::load(&out).unwrap();
    let notes: serde_json::Value =
        serde_json::from_str(art.meta.provenance.notes.as_deref().unwrap()).unwrap();
    assert!(notes["delta_ne_pct"].as_f64().unwrap() <= 1.0);
    assert_eq!(notes["data"]["evaluation"]["rows"], 3000);
    assert_eq!(
        notes["data"]["calibration"]["sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert!(notes["bytes_quantized"].as_u64() < notes["bytes_f32"].as_u64());

    let debug = ok(&quantrec(
        &["debug", "--json", "--reference"],
        &[&model, Path::new("--data"), &eval, &out],
    ));
    let d: serde_json::Value = serde_json::from_str(&debug).unwrap();
    assert!(!d["ranked"].as_array().unwrap().is_empty());

    // An impossible budget: non-zero exit, nothing written, the problem layers named.
    let none = dir.join("none.safetensors");
    let failed = quantrec(
        &[
            "quantize",
            "--plan",
            "aggressive",
            "--budget-ne=-5",
            "--calib",
        ],
        &[
            &calib,
            Path::new("--eval"),
            &eval,
            Path::new("-o"),
            &none,
            &model,
        ],
    );
    assert!(!failed.status.success());
    assert!(!none.exists());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("blames"), "{stderr}");

    let cal = dir.join("calib.json");
    ok(&quantrec(
        &[
            "calibrate",
            "--plan",
            "aggressive",
            "--calib-method",
            "percentile",
            "--calib",
        ],
        &[&calib, Path::new("-o"), &cal, &model],
    ));
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cal).unwrap()).unwrap();
    assert_eq!(c["ranges"]["bottom.1.input"]["lo"], 0.0);
    assert_eq!(c["plan"]["bottom"][0]["activations"]["kind"], "static");

    let searched = ok(&quantrec(
        &[
            "search",
            "--eval-rows",
            "1000",
            "--budget-ne",
            "1.0",
            "--json",
            "--calib",
        ],
        &[&calib, Path::new("--eval"), &eval, &model],
    ));
    let s: serde_json::Value = serde_json::from_str(&searched).unwrap();
    let chosen = s["chosen"].as_u64().unwrap() as usize;
    assert!(s["evaluated"][chosen]["within_budget"].as_bool().unwrap());

    let next = dir.join("next.safetensors");
    let stdout = ok(&quantrec(
        &["refresh", "--budget-ne", "1.0", "--previous"],
        &[
            &out,
            Path::new("--snapshot"),
            &model,
            Path::new("--calib"),
            &calib,
            Path::new("--eval"),
            &eval,
            Path::new("-o"),
            &next,
        ],
    ));
    assert!(stdout.contains("plan: unchanged"), "{stdout}");
    assert!(next.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
