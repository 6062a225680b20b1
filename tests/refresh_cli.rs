//! Day 2 from the command line: `gen --drift` writes shifted data, `train --init` continues a
//! snapshot (exactly from its parameters), and `refresh` re-validates the day-1 artifact on the
//! snapshot trained further, printing the plan diff and the gate.

use std::path::Path;

use quantrec_data::synth::criteo_table_rows;
use quantrec_train::read_safetensors;

mod common;
use common::{quantrec as ok, run, s};

fn write_data(path: &Path, split: &str, rows: &str, drift: &[&str]) {
    let mut a = vec![
        "gen",
        "--rows",
        rows,
        "--max-table-rows",
        "300",
        "--seed",
        "4",
        "--split",
        split,
        "-o",
        s(path),
    ];
    a.extend_from_slice(drift);
    ok(&a);
}

#[test]
fn day2_data_training_further_and_refresh() {
    let dir = std::env::temp_dir().join(format!("quantrec-refresh-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |n: &str| dir.join(n);
    let tables = criteo_table_rows(300)
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let day2 = ["--drift", "1.0", "--drift-seed", "3"];
    for (split, rows) in [
        ("train", "40000"),
        ("calibration", "3000"),
        ("evaluation", "8000"),
    ] {
        write_data(&p(&format!("d1-{split}.tsv")), split, rows, &[]);
        write_data(&p(&format!("d2-{split}.tsv")), split, rows, &day2);
    }
    // Day-2 data is fresh and reports its drift.
    let report = p("d2.json");
    write_data(
        &p("d2-small.tsv"),
        "train",
        "100",
        &[&day2[..], &["--report-json", s(&report)]].concat(),
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["drift"]["drift"], 1.0);
    assert!(r["drift"]["trending_ids"][25].as_u64().unwrap() > 200);
    let d1 = std::fs::read_to_string(p("d1-train.tsv")).unwrap();
    let d2 = std::fs::read_to_string(p("d2-train.tsv")).unwrap();
    assert_ne!(d1.lines().next(), d2.lines().next());

    let train = |data: &str, out: &Path, extra: &[&str]| {
        let mut a = vec![
            "train",
            "--data",
            data,
            "--table-rows",
            &tables,
            "--dim",
            "8",
            "--threads",
            "2",
            "--seed",
            "1",
            "-o",
            s(out),
        ];
        a.extend_from_slice(extra);
        ok(&a)
    };
    let a = p("a.safetensors");
    train(s(&p("d1-train.tsv")), &a, &[]);
    // --init starts from the snapshot's parameters exactly: with zero learning rates nothing moves.
    let same = p("same.safetensors");
    train(
        s(&p("d2-train.tsv")),
        &same,
        &["--init", s(&a), "--lr", "0", "--lr-sparse", "0"],
    );
    assert_eq!(
        read_safetensors(&a).unwrap(),
        read_safetensors(&same).unwrap()
    );
    // A snapshot of another architecture is refused with the tensor named.
    let wrong = run(&[
        "train",
        "--data",
        s(&p("d2-train.tsv")),
        "--table-rows",
        &tables,
        "--dim",
        "16",
        "--init",
        s(&a),
        "-o",
        s(&p("wrong.safetensors")),
    ]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("shape"));
    // Snapshot B: A trained further on day-2 rows.
    let b = p("b.safetensors");
    train(s(&p("d2-train.tsv")), &b, &["--init", s(&a)]);
    assert_ne!(read_safetensors(&a).unwrap(), read_safetensors(&b).unwrap());

    let q = p("q.safetensors");
    ok(&[
        "quantize",
        "--budget-ne",
        "0.5",
        "--calib",
        s(&p("d1-calibration.tsv")),
        "--eval",
        s(&p("d1-evaluation.tsv")),
        "-o",
        s(&q),
        s(&a),
    ]);
    for keep in [false, true] {
        let next = p(&format!("next-{keep}.safetensors"));
        let (calib, eval) = (p("d2-calibration.tsv"), p("d2-evaluation.tsv"));
        let mut args = vec![
            "refresh",
            "--budget-ne",
            "0.5",
            "--previous",
            s(&q),
            "--snapshot",
            s(&b),
            "--calib",
            s(&calib),
            "--eval",
            s(&eval),
            "-o",
            s(&next),
        ];
        if keep {
            args.push("--keep-static");
        }
        let out = run(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        // Passes (perhaps after widening) and writes, or fails with the report and writes nothing.
        assert!(stdout.contains("recipe on the new snapshot"), "{stdout}");
        assert!(stdout.contains("bytes: "), "{stdout}");
        assert_eq!(out.status.success(), next.exists(), "{stdout}");
        assert_eq!(
            out.status.success(),
            stdout.contains("(passes)"),
            "{stdout}"
        );
        if stdout.contains("widened ") {
            assert!(stdout.contains("blamed "), "{stdout}");
        }
        assert_eq!(keep, stdout.contains("kept from the previous artifact"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
