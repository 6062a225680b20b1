//! The accuracy monitor on a real server: answers served with a request id over HTTP/JSON, the
//! ranking endpoint and gRPC are remembered; labels fed back give a live NE equal to `quantrec
//! eval`'s NE on the same rows; bad feedback is rejected and counted; the fp32 shadow reports ΔNE
//! against the reference and alerts past the budget recorded in the artifact's provenance.

mod common;

use std::time::Duration;

use common::http::{get, grpc_connect, options, post_json, request, start};
use common::monitor::*;
use common::*;
use quantrec_data::Batch;
use quantrec_kernels::formats::TableFormat;
use quantrec_model::artifact::{Artifact, Provenance};
use quantrec_model::{Model, Plan, Weights};
use quantrec_quant::eval::{EvalSet, evaluate};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(30);

/// A ranking request carrying the rows of `b` as candidates (no shared context).
fn rank_body(b: &Batch, id: &str) -> Value {
    let nd = b.n_dense;
    let cands: Vec<Value> = (0..b.size)
        .map(|r| {
            let sparse: serde_json::Map<String, Value> = b
                .sparse
                .iter()
                .enumerate()
                .map(|(t, f)| (t.to_string(), json!(f.ids[r])))
                .collect();
            json!({"dense": b.dense[r * nd..(r + 1) * nd], "sparse": sparse})
        })
        .collect();
    json!({"request_id": id, "candidates": cands})
}

/// Sum of the samples of a metric family whose line contains every one of `labels`.
fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn live_ne_equals_offline_eval_ne_and_bad_feedback_is_rejected() {
    let dir = temp_dir("monitor-ne");
    let config = small_config();
    let bytes = artifact_bytes(&config, &Plan::f32(&config), 7);
    write_version(&dir, "dlrm", 1, &bytes);
    let model = Artifact::from_bytes(bytes).unwrap().model;
    let server = start(options(&dir));
    let a = server.http_addr;
    // (id, batch): 24 KServe JSON requests, 4 ranking requests, 4 gRPC requests.
    let mut served: Vec<(String, Batch)> = Vec::new();
    for i in 0..24u64 {
        let b = random_batch(&config, 17 + i as usize, 1000 + i);
        let id = format!("h{i}");
        let r = post_json(a, "/v2/models/dlrm/infer", &infer_json(&b, &id));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        served.push((id, b));
    }
    for i in 0..4u64 {
        let b = random_batch(&config, 30, 2000 + i);
        let id = format!("k{i}");
        let r = post_json(a, "/v1/models/dlrm/rank", &rank_body(&b, &id));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        served.push((id, b));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = grpc_connect(&server, LIMIT).await;
        for i in 0..4u64 {
            let b = random_batch(&config, 25, 3000 + i);
            let mut req = grpc_request(&b, i % 2 == 0);
            req.id = format!("g{i}");
            tokio::time::timeout(LIMIT, c.model_infer(req))
                .await
                .unwrap()
                .unwrap();
            served.push((format!("g{i}"), b));
        }
    });
    // A request without an id is answered but not remembered.
    let mut anonymous = infer_json(&random_batch(&config, 5, 9), "x");
    anonymous.as_object_mut().unwrap().remove("id");
    assert_eq!(
        post_json(a, "/v2/models/dlrm/infer", &anonymous).status,
        200
    );
    assert_eq!(accuracy(a, "dlrm")["pending"]["waiting_requests"], 32);

    // Labels drawn from the model's own probabilities, fed back in two calls; the second carries
    // a wrong-length entry (before the right one), an unknown id and an already labelled id.
    let mut labelled = Vec::new();
    let mut entries = Vec::new();
    for (k, (id, b)) in served.iter().enumerate() {
        let probs = model.predict(b, &mut Default::default()).unwrap().to_vec();
        let y = labels_for(&probs, 40 + k as u64);
        let mut lb = b.clone();
        lb.labels = Some(y.clone());
        labelled.push(lb);
        entries.push((id.clone(), y));
    }
    let r = feedback(a, "dlrm", &entries[..10]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json(), json!({"accepted": 10, "rejected": 0}));
    let mut second = vec![(entries[10].0.clone(), vec![1.0])];
    second.extend_from_slice(&entries[10..]);
    second.push(("never-served".into(), vec![0.0]));
    second.push(entries[3].clone());
    let r = feedback(a, "dlrm", &second);
    assert_eq!(r.json(), json!({"accepted": 22, "rejected": 3}));

    let offline = evaluate(&model, &EvalSet::from_batches(&labelled).unwrap()).unwrap();
    let rows: usize = labelled.iter().map(|b| b.size).sum();
    let acc = accuracy(a, "dlrm");
    let v = version_report(&acc, "1").unwrap();
    assert_eq!(v["role"], "serving");
    assert_eq!(v["labeled_rows"], rows as u64);
    let live = |k: &str| v[k].as_f64().unwrap();
    let ne = offline.ne.unwrap();
    assert!(
        (live("ne") - ne).abs() < 1e-9,
        "live NE {} vs offline {ne}",
        live("ne")
    );
    assert!((live("log_loss") - offline.log_loss.unwrap()).abs() < 1e-9);
    assert!((live("calibration") - offline.calibration.unwrap()).abs() < 1e-9);
    assert_eq!(v["auc"].as_f64(), offline.auc);
    assert!(v["alert"].is_null());
    assert_eq!(v["window"]["rows"], rows as u64);
    assert_eq!(acc["pending"]["waiting_requests"], 0);
    assert_eq!(acc["feedback_accepted"], 32);
    assert_eq!(acc["model_name"], "dlrm");

    // Malformed bodies say what and where; unknown models are 404.
    let r = request(
        a,
        "POST",
        "/v2/models/dlrm/feedback",
        &[],
        br#"{"feedback": [{"id": 3}]}"#,
    )
    .unwrap();
    assert_eq!(r.status, 400);
    let e = r.json()["error"].as_str().unwrap().to_string();
    assert!(e.contains("feedback JSON") && e.contains("column"), "{e}");
    let r = post_json(a, "/v2/models/dlrm/feedback", &json!({"feedbak": []}));
    assert_eq!(r.status, 400);
    assert_eq!(feedback(a, "nope", &entries[..1]).status, 404);
    assert_eq!(get(a, "/v2/models/nope/accuracy").status, 404);

    let text = String::from_utf8(get(a, "/metrics").body).unwrap();
    let fb = "quantrec_feedback_entries_total";
    assert_eq!(metric_sum(&text, fb, &["result=\"accepted\""]), 32.0);
    assert_eq!(metric_sum(&text, fb, &["result=\"rejected\""]), 3.0);
    assert_eq!(
        metric_sum(&text, fb, &["reason=\"request already labelled\""]),
        1.0
    );
    let gauge = metric_sum(
        &text,
        "quantrec_monitor_ne",
        &["role=\"serving\"", "scope=\"since_load\"", "version=\"1\""],
    );
    assert!((gauge - ne).abs() < 1e-9, "{gauge} vs {ne}");
    assert_eq!(
        metric_sum(&text, "quantrec_monitor_labeled_rows", &["version=\"1\""]),
        rows as f64
    );
    drop(server);
}

#[test]
fn shadow_reports_delta_ne_and_alerts_past_the_provenance_budget() {
    let dir = temp_dir("monitor-shadow");
    let config = small_config();
    let weights = Weights::random(&config, 11);
    // The served model: 2-bit tables, so clearly worse than its fp32 reference; its provenance
    // records a tiny budget as `quantize` writes it.
    let plan = Plan::uniform(&config, static_int8(), TableFormat::Fused2);
    let provenance = Provenance {
        notes: Some(json!({"tool": "quantrec quantize", "budget": "ΔNE <= 0.001%"}).to_string()),
        ..Provenance::default()
    };
    let q = quantrec_model::artifact::to_bytes(&config, &weights, &plan, &provenance).unwrap();
    write_version(&dir, "dlrm", 1, &q);
    let f32_bytes = quantrec_model::artifact::to_bytes(
        &config,
        &weights,
        &Plan::f32(&config),
        &Default::default(),
    )
    .unwrap();
    std::fs::write(dir.join("dlrm").join("fp32.safetensors"), &f32_bytes).unwrap();
    std::fs::write(
        dir.join("dlrm").join("config.json"),
        json!({"monitor": {"min_alert_rows": 300,
            "shadow": {"reference": "fp32.safetensors", "fraction": 0.5}}})
        .to_string(),
    )
    .unwrap();
    let reference: Model = Artifact::from_bytes(f32_bytes).unwrap().model;
    let served_model: Model = Artifact::from_bytes(q).unwrap().model;
    let server = start(options(&dir));
    let a = server.http_addr;
    let mut entries = Vec::new();
    for i in 0..40u64 {
        let b = random_batch(&config, 40, 500 + i);
        let id = format!("s{i}");
        let r = post_json(a, "/v2/models/dlrm/infer", &infer_json(&b, &id));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        // The shadow never changes the answer: bit for bit the served model's.
        let (logits, _) = outputs_of(&r.json());
        assert_eq!(bits(&logits), bits(&expected(&served_model, &b).0));
        let truth = reference
            .predict(&b, &mut Default::default())
            .unwrap()
            .to_vec();
        entries.push((id, labels_for(&truth, i)));
    }
    assert_eq!(feedback(a, "dlrm", &entries).json()["accepted"], 40);
    // Shadow scores arrive after the answers: wait until every labelled row is counted.
    let acc = wait_for("every labelled row counted", LIMIT, || {
        let acc = accuracy(a, "dlrm");
        (version_report(&acc, "1")?["labeled_rows"] == 1600).then_some(acc)
    });
    assert_eq!(acc["budget_ne_percent"], 0.001);
    let v = version_report(&acc, "1").unwrap();
    let shadow = &v["shadow"];
    assert_eq!(shadow["rows"], 800, "half the requests are shadowed");
    let delta = shadow["delta_ne_percent"].as_f64().unwrap();
    assert!(delta > 0.001, "the 2-bit model must be worse: ΔNE {delta}%");
    assert!(shadow["max_abs_divergence"].as_f64().unwrap() > 0.0);
    let alert = v["alert"].as_str().expect("an alert");
    assert!(alert.contains("exceeds the budget"), "{alert}");
    let r = version_report(&acc, "reference").expect("the reference is reported");
    assert_eq!(r["role"], "shadow");
    assert_eq!(r["labeled_rows"], 800);
    assert!((r["ne"].as_f64().unwrap() - shadow["reference_ne"].as_f64().unwrap()).abs() < 1e-12);
    assert_eq!(acc["alerts_raised"], 1);
    let text = String::from_utf8(get(a, "/metrics").body).unwrap();
    assert_eq!(
        metric_sum(&text, "quantrec_monitor_alerts_total", &["version=\"1\""]),
        1.0
    );
    assert_eq!(
        metric_sum(&text, "quantrec_monitor_alerting", &["version=\"1\""]),
        1.0
    );
    assert!(
        (metric_sum(
            &text,
            "quantrec_monitor_shadow_delta_ne_percent",
            &["version=\"1\""]
        ) - delta)
            .abs()
            < 1e-9
    );
    drop(server);
}

#[test]
fn a_bad_monitor_config_is_refused_with_a_clear_error() {
    let dir = temp_dir("monitor-config");
    let config = small_config();
    write_version(
        &dir,
        "dlrm",
        1,
        &artifact_bytes(&config, &Plan::f32(&config), 7),
    );
    let server = start(options(&dir));
    let a = server.http_addr;
    std::fs::write(
        dir.join("dlrm").join("config.json"),
        r#"{"monitor": {"shadow": {"reference": "x.safetensors", "fraction": 2}}}"#,
    )
    .unwrap();
    let r = post_json(a, "/v2/repository/models/dlrm/load", &json!({}));
    assert!(r.status >= 400);
    let e = r.json()["error"].as_str().unwrap().to_string();
    assert!(e.contains("shadow.fraction must be in (0, 1]"), "{e}");
    // A missing reference file is refused, the model serves without a shadow.
    std::fs::write(
        dir.join("dlrm").join("config.json"),
        r#"{"monitor": {"shadow": {"reference": "missing.safetensors"}}}"#,
    )
    .unwrap();
    let r = post_json(a, "/v2/repository/models/dlrm/load", &json!({}));
    assert_eq!(r.status, 400);
    let e = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        e.contains("shadow reference") && e.contains("missing.safetensors"),
        "{e}"
    );
    let b = random_batch(&config, 3, 1);
    assert_eq!(
        post_json(a, "/v2/models/dlrm/infer", &infer_json(&b, "z")).status,
        200
    );
    drop(server);
}
