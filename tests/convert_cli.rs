//! `quantrec convert` end to end on the shared fixture: converted tensors equal PyTorch's prepacked
//! bytes, everything else is copied, and the metadata records what was converted.

use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

mod common;

fn fixture() -> PathBuf {
    quantrec_testkit::fixture(env!("CARGO_MANIFEST_DIR"), "rowwise_formats.safetensors")
}

fn temp(name: &str) -> PathBuf {
    common::tmp("convert", name)
}

/// `quantrec convert args`.
fn convert(args: &[&str]) -> std::process::Output {
    common::run(&[&["convert"], args].concat())
}

/// `quantrec convert args`, which must succeed; its stdout.
fn run_ok(args: &[&str]) -> String {
    common::quantrec(&[&["convert"], args].concat())
}

/// Checks `output` against the fixture: each `(converted, expected)` pair holds the expected
/// tensor's bytes, shape and dtype; every other fixture tensor is unchanged.
fn check(output: &Path, pairs: &[(String, String)], format: &str) {
    let input = std::fs::read(fixture()).unwrap();
    let input = SafeTensors::deserialize(&input).unwrap();
    let bytes = std::fs::read(output).unwrap();
    let out = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(out.len(), input.len());
    for name in input.names() {
        let got = out.tensor(name).unwrap();
        match pairs.iter().find(|(c, _)| c == name) {
            Some((_, expected)) => {
                let e = input.tensor(expected).unwrap();
                assert_eq!(got.dtype(), Dtype::U8, "{name}");
                assert_eq!(got.shape(), e.shape(), "{name} vs {expected}");
                assert!(got.data() == e.data(), "{name} differs from {expected}");
            }
            None => {
                let e = input.tensor(name).unwrap();
                assert_eq!((got.dtype(), got.shape()), (e.dtype(), e.shape()), "{name}");
                assert!(got.data() == e.data(), "{name} was not copied unchanged");
            }
        }
    }
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap();
    for (converted, _) in pairs {
        assert_eq!(meta[&format!("quantrec.format.{converted}")], format);
    }
    assert!(meta["quantrec.convert"].contains(format));
}

#[test]
fn fused8_conversion_of_every_table_equals_byte_prepack() {
    let out = temp("byte.safetensors");
    let stdout = run_ok(&[
        fixture().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--format",
        "fused8",
    ]);
    assert!(stdout.contains("converted 6 tensor(s)"), "{stdout}");
    let pairs: Vec<_> = [4, 8, 16, 32, 64, 128]
        .iter()
        .map(|d| (format!("w_d{d}"), format!("byte_d{d}")))
        .collect();
    check(&out, &pairs, "fused8");
    std::fs::remove_file(out).unwrap();
}

#[test]
fn selected_tables_convert_to_greedy_and_plain_nbit() {
    for (format, greedy, prefix) in [
        ("fused4", false, "nbit4"),
        ("fused2", true, "nbit2opt"),
        ("fused4", true, "nbit4opt"),
    ] {
        let out = temp(&format!("{prefix}.safetensors"));
        let mut args = vec![
            fixture().to_str().unwrap().to_string(),
            "-o".into(),
            out.to_str().unwrap().into(),
            "--format".into(),
            format.into(),
            "--tensors".into(),
            "^w_d(16|32)$".into(),
        ];
        if greedy {
            args.push("--greedy".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_ok(&args);
        let pairs = vec![
            ("w_d16".to_string(), format!("{prefix}_d16")),
            ("w_d32".to_string(), format!("{prefix}_d32")),
        ];
        check(&out, &pairs, format);
        std::fs::remove_file(out).unwrap();
    }
}

#[test]
fn bad_requests_fail_with_a_message_naming_the_problem() {
    let out = temp("never.safetensors");
    let fix = fixture();
    let fix = fix.to_str().unwrap();
    let o = out.to_str().unwrap();
    // A selected tensor that is not a float table.
    let r = convert(&[
        fix,
        "-o",
        o,
        "--format",
        "fused4",
        "--tensors",
        "^byte_d16$",
    ]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("byte_d16"));
    // Greedy search for a format without it names the tensor.
    let r = convert(&[fix, "-o", o, "--format", "fused8", "--greedy"]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("w_d"));
    // Nothing matched.
    let r = convert(&[fix, "-o", o, "--format", "fused4", "--tensors", "^nothing$"]);
    assert!(!r.status.success());
    // Unknown format.
    let r = convert(&[fix, "-o", o, "--format", "int3"]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("fused4"));
    assert!(!out.exists());
}
