//! `quantrec serve` as a process (prints its addresses, answers, exits 0 on SIGTERM) and
//! `quantrec predict` refusing non-finite dense values unless `--allow-nonfinite`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::run as quantrec;

fn tmp(name: &str) -> PathBuf {
    common::tmp("serve-cli", name)
}

fn import_fixture(out: &std::path::Path) {
    let fx = quantrec_testkit::fixture(env!("CARGO_MANIFEST_DIR"), "dlrm_dot.safetensors");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let o = quantrec(&["import", fx.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn predict_refuses_nonfinite_dense_values_unless_allowed() {
    let model = tmp("nan-model.safetensors");
    import_fixture(&model);
    let inputs =
        quantrec_testkit::fixture(env!("CARGO_MANIFEST_DIR"), "dlrm_dot.inputs.safetensors");
    let bytes = std::fs::read(&inputs).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
        .collect();
    let dense = tensors.iter_mut().find(|t| t.0 == "dense").unwrap();
    dense.3[14 * 4..15 * 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let nan_inputs = tmp("nan-inputs.safetensors");
    std::fs::write(&nan_inputs, safetensors::serialize(views, None).unwrap()).unwrap();
    let out = tmp("nan-out.tsv");
    let args = [
        "predict",
        model.to_str().unwrap(),
        "--inputs",
        nan_inputs.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    let o = quantrec(&args);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("sample 1 dense feature 1 is NaN"), "{err}");
    let mut allowed = args.to_vec();
    allowed.push("--allow-nonfinite");
    let o = quantrec(&allowed);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for p in [model, nan_inputs, out] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn serve_prints_its_ports_answers_and_exits_cleanly_on_sigterm() {
    let repo = tmp("repo");
    let _ = std::fs::remove_dir_all(&repo);
    import_fixture(&repo.join("dlrm").join("1").join("model.safetensors"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_quantrec"))
        .args([
            "serve",
            "--models",
            repo.to_str().unwrap(),
            "--http",
            "0",
            "--grpc",
            "0",
            "--threads",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line
        .split("HTTP on ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim()
        .parse()
        .unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"GET /v2/models/dlrm/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let k = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(k.success());
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "serve did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&repo);
}
