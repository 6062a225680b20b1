//! The load generator against a real server on loopback: short bounded runs over HTTP (JSON and
//! binary) and gRPC answer every scheduled request without error, with plausible counts, rates
//! and latencies; inputs can come from a data file; a wrong model fails before the run.

mod common;

use std::time::Duration;

use common::http::{options, start};
use common::*;
use quantrec_model::Plan;
use quantrec_serve::ServeError;
use quantrec_serve::loadgen::schedule::poisson_arrivals;
use quantrec_serve::loadgen::{self, Inputs, LoadReport, LoadgenOptions, Protocol};

fn check(r: &LoadReport, rate: f64, secs: f64, seed: u64) {
    let expected = poisson_arrivals(rate, Duration::from_secs_f64(secs), seed)
        .unwrap()
        .len() as u64;
    assert_eq!(r.scheduled, expected, "{r}");
    assert!(r.errors.is_empty(), "{r}");
    assert_eq!((r.sent, r.unsent, r.ok), (expected, 0, expected), "{r}");
    // A Poisson count of mean 200 is within ±50 with overwhelming probability; the seed fixes it.
    let mean = rate * secs;
    assert!(
        (r.scheduled as f64 - mean).abs() < 0.25 * mean + 10.0,
        "{r}"
    );
    // Every answer came in within the run plus the last request's latency.
    assert!(
        r.elapsed_s >= 0.5 * secs && r.elapsed_s < secs + 10.0,
        "{r}"
    );
    assert!((r.achieved_qps - r.ok as f64 / r.elapsed_s).abs() < 1e-6);
    assert_eq!(r.rows_per_s, r.achieved_qps * r.candidates as f64);
    let q = &r.latency;
    assert_eq!(q.count, r.ok);
    assert!(
        q.p50_ms > 0.0 && q.p50_ms <= q.p90_ms && q.p90_ms <= q.p99_ms,
        "{r}"
    );
    assert!(q.p99_ms <= q.p999_ms && q.p999_ms <= q.max_ms, "{r}");
    assert!(r.max_in_flight >= 1 && r.max_in_flight <= r.concurrency_limit);
    let j = serde_json::to_value(r).unwrap();
    assert_eq!(j["ok"], r.ok);
    assert!(j["latency"]["p999_ms"].is_number());
}

#[test]
fn open_loop_runs_answer_every_request() {
    let dir = temp_dir("loadgen");
    let config = small_config();
    write_version(
        &dir,
        "dlrm",
        1,
        &artifact_bytes(&config, &Plan::f32(&config), 3),
    );
    let server = start(options(&dir));
    let http = format!("http://{}", server.http_addr);
    let grpc_url = format!("http://{}", server.grpc_addr.unwrap());

    let mut o = LoadgenOptions::new(http.clone(), "dlrm");
    o.rate = 200.0;
    o.duration = Duration::from_secs(1);
    o.seed = 9;
    o.timeout = Duration::from_secs(20);
    let r = loadgen::run(o.clone()).unwrap();
    assert_eq!((r.protocol.as_str(), r.candidates), ("http-json", 256));
    check(&r, 200.0, 1.0, 9);

    for (protocol, url) in [
        (Protocol::Http { binary: true }, http.clone()),
        (Protocol::Grpc, grpc_url.clone()),
    ] {
        let mut o = o.clone();
        o.protocol = protocol;
        o.url = url;
        o.duration = Duration::from_millis(500);
        let r = loadgen::run(o).unwrap();
        assert_eq!(r.protocol, protocol.name());
        check(&r, 200.0, 0.5, 9);
    }

    // The wire requests other tools replay: a binary HTTP body the server's decoder reads, and a
    // framed gRPC message.
    let mut b = o.clone();
    b.protocol = Protocol::Http { binary: true };
    let w = loadgen::Session::connect(b).unwrap().wire_request();
    let req = quantrec_serve::kserve_json::decode("dlrm", w.body.clone(), w.header_len).unwrap();
    assert_eq!(req.inputs.len(), 2);
    assert_eq!(req.inputs[0].shape, vec![256, config.dense_features as i64]);
    let mut g = o.clone();
    g.protocol = Protocol::Grpc;
    g.url = grpc_url.clone();
    let w = loadgen::Session::connect(g).unwrap().wire_request();
    assert_eq!(w.body[0], 0);
    let len = u32::from_be_bytes(w.body[1..5].try_into().unwrap()) as usize;
    assert_eq!(len + 5, w.body.len());
    let m: quantrec_serve::proto::ModelInferRequest = prost::Message::decode(&w.body[5..]).unwrap();
    assert_eq!(m.model_name, "dlrm");
    assert_eq!(m.raw_input_contents.len(), 2);

    // Rows of a data file, cut into requests of 16 candidates.
    let file = dir.join("rows.safetensors");
    quantrec_data::write_batch_file(&file, &random_batch(&config, 100, 4)).unwrap();
    let mut f = o.clone();
    f.inputs = Inputs::File(file.clone());
    f.candidates = 16;
    f.duration = Duration::from_millis(300);
    let r = loadgen::run(f.clone()).unwrap();
    check(&r, 200.0, 0.3, 9);
    f.candidates = 101;
    match loadgen::run(f) {
        Err(ServeError::LoadgenInputs { path, .. }) => assert_eq!(path, file),
        other => panic!("{other:?}"),
    }

    let mut bad = o.clone();
    bad.model = "nope".into();
    match loadgen::run(bad) {
        Err(ServeError::HttpStatus { status: 404, .. }) => {}
        other => panic!("{other:?}"),
    }
    let mut bad = o;
    bad.candidates = 0;
    assert!(matches!(
        loadgen::run(bad),
        Err(ServeError::LoadgenOption {
            option: "candidates",
            ..
        })
    ));
    server.shutdown().unwrap();
}
