//! `quantrec gen` end to end: the TSV it writes reads back through the Criteo preset, and the
//! teacher figures it prints are in range.

use std::process::Command;

use quantrec_data::source::read_all;
use quantrec_data::synth::criteo_table_rows;
use quantrec_data::{SourceSpec, open_source};

#[test]
fn gen_writes_a_readable_criteo_tsv() {
    let dir = std::env::temp_dir().join(format!("quantrec-gen-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("train.tsv");
    let run = Command::new(env!("CARGO_BIN_EXE_quantrec"))
        .args([
            "gen",
            "--rows",
            "4000",
            "--seed",
            "3",
            "--max-table-rows",
            "5000",
            "-o",
        ])
        .arg(&out)
        .arg("--report-json")
        .arg(dir.join("report.json"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    let ne: f64 = stdout
        .split("NE ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no NE in {stdout}"));
    assert!(ne > 0.5 && ne < 1.0, "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["rows"], 4000);
    assert_eq!(report["table_rows"][2], 5000);
    assert!((report["teacher_ne"].as_f64().unwrap() - ne).abs() < 1e-5);
    let spec = SourceSpec::new(criteo_table_rows(5000), 1024);
    let batch = read_all(open_source(&out, &spec).unwrap().as_mut()).unwrap();
    assert_eq!(batch.size, 4000);
    let ctr = batch.labels.unwrap().iter().sum::<f32>() / 4000.0;
    assert!((ctr - 0.25).abs() < 0.03, "CTR {ctr}");
    std::fs::remove_dir_all(dir).unwrap();
}
