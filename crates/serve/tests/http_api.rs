//! The HTTP/JSON protocol on a real server on loopback: round trips (JSON and binary tensor
//! data, one-hot and jagged inputs) equal `Model::predict` bit for bit; metadata, config, health,
//! statistics, index and metrics; every class of malformed body gets a precise 4xx and the
//! server keeps answering.

mod common;

use common::http::{get, options, post_json, request, start};
use common::*;
use quantrec_data::Batch;
use quantrec_model::artifact::Artifact;
use quantrec_model::{Model, Plan, Scratch};
use serde_json::json;

fn setup(tag: &str) -> (std::path::PathBuf, Model) {
    let dir = temp_dir(tag);
    let config = small_config();
    let bytes = artifact_bytes(&config, &Plan::f32(&config), 5);
    write_version(&dir, "dlrm", 1, &bytes);
    (dir, Artifact::from_bytes(bytes).unwrap().model)
}

fn predict(model: &Model, b: &Batch) -> (Vec<f32>, Vec<f32>) {
    let l = model
        .predict_logits(b, &mut Scratch::new())
        .unwrap()
        .to_vec();
    let p = model.predict(b, &mut Scratch::new()).unwrap().to_vec();
    (l, p)
}

/// A binary-data request body: JSON header + raw little-endian inputs.
fn binary_body(b: &Batch, jagged: bool, outputs_binary: Option<bool>) -> (Vec<u8>, usize) {
    let nt = b.sparse.len();
    let dense: Vec<u8> = b.dense.iter().flat_map(|x| x.to_le_bytes()).collect();
    let (mut inputs, mut raw) = (
        vec![
            json!({"name": "dense", "datatype": "FP32", "shape": [b.size, b.n_dense],
                    "parameters": {"binary_data_size": dense.len()}}),
        ],
        dense,
    );
    if jagged {
        let lengths: Vec<u8> = b
            .sparse
            .iter()
            .flat_map(|f| f.offsets.windows(2).map(|w| (w[1] - w[0]) as i32))
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let values: Vec<u8> = b
            .sparse
            .iter()
            .flat_map(|f| f.ids.iter().flat_map(|x| x.to_le_bytes()))
            .collect();
        let n: usize = b.sparse.iter().map(|f| f.ids.len()).sum();
        inputs.push(
            json!({"name": "sparse_lengths", "datatype": "INT32", "shape": [nt, b.size],
                           "parameters": {"binary_data_size": lengths.len()}}),
        );
        inputs.push(
            json!({"name": "sparse_values", "datatype": "INT64", "shape": [n],
                           "parameters": {"binary_data_size": values.len()}}),
        );
        raw.extend(lengths);
        raw.extend(values);
    } else {
        let ids: Vec<u8> = (0..b.size)
            .flat_map(|r| b.sparse.iter().map(move |f| f.ids[r]))
            .flat_map(|x| x.to_le_bytes())
            .collect();
        inputs.push(
            json!({"name": "sparse", "datatype": "INT64", "shape": [b.size, nt],
                           "parameters": {"binary_data_size": ids.len()}}),
        );
        raw.extend(ids);
    }
    let mut head = json!({"id": "bin-1", "inputs": inputs});
    match outputs_binary {
        None => head["parameters"] = json!({"binary_data_output": true}),
        Some(bin) => {
            head["outputs"] = json!([
                {"name": "probability", "parameters": {"binary_data": bin}},
                {"name": "logit", "parameters": {"binary_data": bin}}
            ])
        }
    }
    let mut body = serde_json::to_vec(&head).unwrap();
    let n = body.len();
    body.extend(raw);
    (body, n)
}

/// Splits a binary-data response into its JSON and each output's f32 values.
fn binary_outputs(r: &common::http::Resp) -> (serde_json::Value, Vec<(String, Vec<f32>)>) {
    let n: usize = r
        .header("inference-header-content-length")
        .expect("binary response header")
        .parse()
        .unwrap();
    let head: serde_json::Value = serde_json::from_slice(&r.body[..n]).unwrap();
    let mut at = n;
    let mut outs = Vec::new();
    for o in head["outputs"].as_array().unwrap() {
        let size = o["parameters"]["binary_data_size"].as_u64().unwrap() as usize;
        let v = r.body[at..at + size]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        at += size;
        outs.push((o["name"].as_str().unwrap().to_string(), v));
    }
    assert_eq!(at, r.body.len());
    (head, outs)
}

#[test]
fn json_and_binary_round_trips_equal_predict_bit_for_bit() {
    let (dir, model) = setup("roundtrip");
    let server = start(options(&dir));
    let a = server.http_addr;
    let config = small_config();
    let batch = random_batch(&config, 37, 21);
    let (want_l, want_p) = predict(&model, &batch);

    let r = post_json(a, "/v2/models/dlrm/infer", &infer_json(&batch, "req-7"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["id"], "req-7");
    assert_eq!(v["model_version"], "1");
    let (l, p) = outputs_of(&v);
    assert_eq!(bits(&l), bits(&want_l));
    assert_eq!(bits(&p), bits(&want_p));

    for jagged in [false, true] {
        for outputs_binary in [None, Some(true), Some(false)] {
            let (body, n) = binary_body(&batch, jagged, outputs_binary);
            let r = request(
                a,
                "POST",
                "/v2/models/dlrm/versions/1/infer",
                &[("Inference-Header-Content-Length", n.to_string())],
                &body,
            )
            .unwrap();
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            let got: Vec<(String, Vec<f32>)> = if outputs_binary == Some(false) {
                assert!(r.header("inference-header-content-length").is_none());
                let (l, p) = outputs_of(&r.json());
                vec![("probability".into(), p), ("logit".into(), l)]
            } else {
                let (head, outs) = binary_outputs(&r);
                assert_eq!(head["id"], "bin-1");
                outs
            };
            for (name, values) in got {
                let want = if name == "logit" { &want_l } else { &want_p };
                assert_eq!(bits(&values), bits(want), "{name} jagged={jagged}");
            }
        }
    }

    // A single row scores as it does inside any batch of three rows or more.
    let one = quantrec_data::batch_ops::slice(&batch, 4, 5);
    let r = post_json(a, "/v2/models/dlrm/infer", &infer_json(&one, "one"));
    let (l, _) = outputs_of(&r.json());
    assert_eq!(l[0].to_bits(), want_l[4].to_bits());
    drop(server);
}

#[test]
fn metadata_config_health_stats_index_and_metrics() {
    let (dir, _model) = setup("meta");
    let server = start(options(&dir));
    let a = server.http_addr;
    assert_eq!(get(a, "/v2/health/live").status, 200);
    assert_eq!(get(a, "/v2/health/ready").status, 200);
    let s = get(a, "/v2").json();
    assert_eq!(s["name"], "quantrec");
    assert!(
        s["extensions"]
            .as_array()
            .unwrap()
            .contains(&json!("binary_tensor_data"))
    );

    let m = get(a, "/v2/models/dlrm").json();
    assert_eq!(m["versions"], json!(["1"]));
    let inputs = m["inputs"].as_array().unwrap();
    assert_eq!(
        inputs[0],
        json!({"name": "dense", "datatype": "FP32", "shape": [-1, 13]})
    );
    assert_eq!(
        inputs[1],
        json!({"name": "sparse", "datatype": "INT64", "shape": [-1, 4]})
    );
    assert_eq!(inputs[2]["shape"], json!([4, -1]));
    assert_eq!(
        m["outputs"][0],
        json!({"name": "probability", "datatype": "FP32", "shape": [-1]})
    );
    assert_eq!(get(a, "/v2/models/dlrm/versions/1").json(), m);

    let c = get(a, "/v2/models/dlrm/config").json();
    assert!(c["max_batch_size"].as_u64().unwrap() > 0);
    assert_eq!(c["input"][0]["dims"], json!([13]));
    assert_eq!(c["input"][0]["data_type"], "TYPE_FP32");
    assert_eq!(c["input"][1]["dims"], json!([4]));
    assert_eq!(c["input"][2]["optional"], true);
    assert_eq!(c["input"][3]["optional"], true);
    assert_eq!(c["output"][1]["name"], "logit");

    assert_eq!(get(a, "/v2/models/dlrm/ready").status, 200);
    assert_eq!(get(a, "/v2/models/dlrm/versions/1/ready").status, 200);
    assert_eq!(get(a, "/v2/models/dlrm/versions/2/ready").status, 404);
    assert_eq!(get(a, "/v2/models/nope/ready").status, 404);

    let b = random_batch(&small_config(), 5, 1);
    assert_eq!(
        post_json(a, "/v2/models/dlrm/infer", &infer_json(&b, "x")).status,
        200
    );
    let st = get(a, "/v2/models/stats").json();
    let e = &st["model_stats"][0];
    assert_eq!(e["name"], "dlrm");
    assert_eq!(e["inference_count"], 5);
    assert_eq!(e["execution_count"], 1);
    assert_eq!(e["inference_stats"]["success"]["count"], 1);
    assert_eq!(get(a, "/v2/models/dlrm/stats").json(), st);
    assert_eq!(get(a, "/v2/models/dlrm/versions/1/stats").json(), st);

    let idx = request(a, "POST", "/v2/repository/index", &[], b"")
        .unwrap()
        .json();
    assert_eq!(
        idx,
        json!([{"name": "dlrm", "version": "1", "state": "READY"}])
    );

    let text = String::from_utf8(get(a, "/metrics").body).unwrap();
    for needle in [
        "quantrec_requests_total{code=\"200\",model=\"dlrm\",protocol=\"http\",version=\"1\"} 1",
        "quantrec_batch_rows_bucket",
        "quantrec_queue_seconds_bucket",
        "quantrec_compute_seconds_bucket",
        "quantrec_request_seconds_bucket",
        "quantrec_queue_depth",
        "quantrec_model_events_total{event=\"load\",model=\"dlrm\",version=\"1\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    drop(server);
}

#[test]
fn every_malformed_body_gets_a_precise_4xx_and_the_server_keeps_answering() {
    let (dir, _model) = setup("malformed");
    let mut opts = options(&dir);
    opts.max_body_bytes = 64 * 1024;
    let server = start(opts);
    let a = server.http_addr;
    let b = random_batch(&small_config(), 2, 3);
    let good = infer_json(&b, "ok");
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    let nan_dense = {
        let mut v = good.clone();
        v["inputs"][0]["data"][3] = json!("NaN");
        serde_json::to_vec(&v).unwrap()
    };
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("not JSON", b"{\"inputs\": [".to_vec(), 400, "malformed"),
        ("not an object", b"[1, 2]".to_vec(), 400, "malformed"),
        (
            "unknown tensor",
            with(&|v| v["inputs"][1]["name"] = json!("sparse_ids")),
            400,
            "no input tensor \"sparse_ids\"",
        ),
        (
            "wrong dtype",
            with(&|v| v["inputs"][0]["datatype"] = json!("FP64")),
            400,
            "datatype FP64, expected FP32",
        ),
        (
            "wrong shape",
            with(&|v| v["inputs"][0]["shape"] = json!([2, 12])),
            400,
            "shape [2, 12]",
        ),
        (
            "too few values",
            with(&|v| v["inputs"][0]["shape"] = json!([3, 13])),
            400,
            "values for shape",
        ),
        (
            "string in data",
            with(&|v| v["inputs"][1]["data"][0] = json!("x")),
            400,
            "not a INT64",
        ),
        (
            "id out of range",
            with(&|v| v["inputs"][1]["data"][1] = json!(100)),
            400,
            "outside table 1",
        ),
        (
            "negative id",
            with(&|v| v["inputs"][1]["data"][0] = json!(-1)),
            400,
            "outside table 0",
        ),
        ("NaN dense", nan_dense, 400, "sample 0 feature 3 is NaN"),
        (
            "missing dense",
            with(&|v| {
                v["inputs"].as_array_mut().unwrap().remove(0);
            }),
            400,
            "missing input tensor \"dense\"",
        ),
        (
            "missing sparse",
            with(&|v| {
                v["inputs"].as_array_mut().unwrap().remove(1);
            }),
            400,
            "missing input tensor \"sparse\"",
        ),
        (
            "unknown output",
            with(&|v| v["outputs"] = json!([{"name": "score"}])),
            400,
            "no output \"score\"",
        ),
        (
            "bad timeout",
            with(&|v| v["parameters"] = json!({"timeout": "soon"})),
            400,
            "timeout",
        ),
        ("too large", vec![b' '; 65 * 1024], 413, "exceeds the limit"),
    ];
    for (what, body, status, needle) in cases {
        let r = request(a, "POST", "/v2/models/dlrm/infer", &[], &body).unwrap();
        let msg = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert_eq!(r.status, status, "{what}: {msg}");
        assert!(msg.contains(needle), "{what}: {msg:?} lacks {needle:?}");
    }
    // Binary framing that does not add up.
    let r = request(
        a,
        "POST",
        "/v2/models/dlrm/infer",
        &[("Inference-Header-Content-Length", "100000".into())],
        b"{}",
    )
    .unwrap();
    assert_eq!(r.status, 400);
    // Unknown model and version.
    assert_eq!(post_json(a, "/v2/models/other/infer", &good).status, 404);
    assert_eq!(
        post_json(a, "/v2/models/dlrm/versions/9/infer", &good).status,
        404
    );
    assert_eq!(
        post_json(a, "/v2/models/dlrm/versions/x/infer", &good).status,
        404
    );
    // Still serving.
    let r = post_json(a, "/v2/models/dlrm/infer", &good);
    assert_eq!(r.status, 200);
    let text = String::from_utf8(get(a, "/metrics").body).unwrap();
    assert!(text.contains("quantrec_request_failures_total{code=\"400\",model=\"dlrm\",protocol=\"http\",version=\"1\"}"));
    drop(server);
}

#[test]
fn ranking_endpoint_scores_candidates_in_order() {
    let (dir, model) = setup("rank");
    let server = start(options(&dir));
    let a = server.http_addr;
    let config = small_config();
    let b = random_batch(&config, 6, 9);
    // Context: the first 5 dense features and table 0; candidates: the rest.
    let mut cands = Vec::new();
    let mut same = b.clone();
    for r in 0..6 {
        for t in 0..13 {
            if t < 5 {
                same.dense[r * 13 + t] = b.dense[t];
            }
        }
        same.sparse[0].ids[r] = b.sparse[0].ids[0];
        cands.push(json!({
            "dense": b.dense[r * 13 + 5..(r + 1) * 13],
            "sparse": {"1": b.sparse[1].ids[r], "2": [b.sparse[2].ids[r]], "3": b.sparse[3].ids[r]},
        }));
    }
    let body = json!({
        "request_id": "rank-1",
        "context": {"dense": b.dense[..5], "sparse": {"0": b.sparse[0].ids[0]}},
        "candidates": cands,
    });
    let r = post_json(a, "/v1/models/dlrm/rank", &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["request_id"], "rank-1");
    let scores: Vec<f32> = v["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    let (_, want) = predict(&model, &same);
    assert_eq!(bits(&scores), bits(&want));
    let mut bad = body.clone();
    bad["candidates"][2]["sparse"]["0"] = json!(1);
    let r = post_json(a, "/v1/models/dlrm/rank", &bad);
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("candidates[2]: table 0 is given by both")
    );
    drop(server);
}
