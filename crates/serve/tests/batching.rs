//! The dynamic batcher on a real server: 16 concurrent clients get exactly the scores their rows
//! get alone (and requests were merged); a full queue refuses only the overflow, at once; an
//! expired request is answered with a timeout and never computed.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::{assert_solo_logits, options, post_json, start, stats, wait_queued};
use common::*;
use quantrec_model::artifact::Artifact;
use quantrec_model::{Model, ModelConfig};
use serde_json::json;

/// A repository in `temp_dir(tag)` holding version 1 of model "m" (the small config in f32, seed 2),
/// with that config and the model itself (to compute expected scores).
fn f32_repo(tag: &str) -> (PathBuf, ModelConfig, Arc<Model>) {
    let dir = temp_dir(tag);
    let config = small_config();
    let bytes = artifact_bytes(&config, &quantrec_model::Plan::f32(&config), 2);
    write_version(&dir, "m", 1, &bytes);
    let model = Arc::new(Artifact::from_bytes(bytes).unwrap().model);
    (dir, config, model)
}

#[test]
fn sixteen_concurrent_clients_get_their_solo_scores_for_every_plan() {
    let config = small_config();
    for (name, plan) in plans(&config) {
        let dir = temp_dir(&format!("batch16-{name}"));
        let bytes = artifact_bytes(&config, &plan, 8);
        write_version(&dir, "m", 1, &bytes);
        let model = Arc::new(Artifact::from_bytes(bytes).unwrap().model);
        let mut opts = options(&dir);
        opts.max_delay_us = 20_000;
        opts.max_batch = 4096;
        let server = start(opts);
        let a = server.http_addr;
        let threads: Vec<_> = (0..16)
            .map(|c| {
                let model = model.clone();
                let config = config.clone();
                std::thread::spawn(move || {
                    for i in 0..6 {
                        let rows = 1 + (c * 7 + i * 3) % 11;
                        let b = random_batch(&config, rows, (c * 100 + i) as u64);
                        let r = post_json(a, "/v2/models/m/infer", &infer_json(&b, "x"));
                        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                        let (l, p) = outputs_of(&r.json());
                        let (wl, wp) = expected(&model, &b);
                        assert_eq!(bits(&l), bits(&wl), "client {c} request {i}");
                        assert_eq!(bits(&p), bits(&wp), "client {c} request {i}");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = stats(&server, "m");
        assert_eq!(s.success.count, 96);
        assert!(
            s.execution_count < 96,
            "plan {name}: {} model calls for 96 requests: nothing was merged",
            s.execution_count
        );
        drop(server);
    }
}

#[test]
fn a_full_queue_refuses_only_the_overflow_at_once() {
    let (dir, config, model) = f32_repo("overflow");
    let mut opts = options(&dir);
    opts.queue = 4;
    opts.max_delay_us = 4_000_000;
    opts.max_batch = 100_000;
    let server = start(opts);
    let a = server.http_addr;
    let lv = server.state.repo.version("m", None).unwrap();
    let waiting: Vec<_> = (0..4)
        .map(|i| {
            let model = model.clone();
            let config = config.clone();
            std::thread::spawn(move || {
                assert_solo_logits(a, &model, &random_batch(&config, 3, i), "q");
            })
        })
        .collect();
    wait_queued(&lv, 4);
    for i in 0..3 {
        let t = Instant::now();
        let r = post_json(
            a,
            "/v2/models/m/infer",
            &infer_json(&random_batch(&config, 1, 9), "o"),
        );
        assert_eq!(r.status, 503, "overflow {i}");
        assert!(r.json()["error"].as_str().unwrap().contains("queue full"));
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "refusal was not immediate"
        );
    }
    for t in waiting {
        t.join().unwrap();
    }
    drop(server);
}

#[test]
fn expired_requests_are_answered_with_a_timeout_and_not_computed() {
    let (dir, config, _) = f32_repo("deadline");
    let mut opts = options(&dir);
    opts.max_delay_us = 400_000;
    opts.max_batch = 100_000;
    let server = start(opts);
    let a = server.http_addr;
    let short = std::thread::spawn(move || {
        let mut v = infer_json(&random_batch(&small_config(), 5, 1), "late");
        v["parameters"] = json!({"timeout": 50_000});
        post_json(a, "/v2/models/m/infer", &v)
    });
    std::thread::sleep(Duration::from_millis(100));
    let patient = post_json(
        a,
        "/v2/models/m/infer",
        &infer_json(&random_batch(&config, 2, 2), "ok"),
    );
    let late = short.join().unwrap();
    assert_eq!(late.status, 504, "{}", String::from_utf8_lossy(&late.body));
    assert!(late.json()["error"].as_str().unwrap().contains("timed out"));
    assert_eq!(patient.status, 200);
    let s = stats(&server, "m");
    assert_eq!(s.execution_count, 1);
    assert_eq!(
        s.inference_count, 2,
        "the expired request's 5 rows were computed"
    );
    drop(server);
}

#[test]
fn concurrent_calls_split_into_parallel_chunks_all_succeed() {
    // Requests larger than the model's chunk run their chunks in parallel on the compute pool,
    // while other calls are in flight on the same pool (a thread waiting for its chunks may run
    // another call meanwhile).
    let (dir, config, model) = f32_repo("chunks");
    let mut opts = options(&dir);
    opts.max_batch = 700;
    opts.max_delay_us = 0;
    let server = start(opts);
    let a = server.http_addr;
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (model, config) = (model.clone(), config.clone());
            std::thread::spawn(move || {
                for i in 0..25 {
                    let b = random_batch(&config, 520 + c * 7, (c * 100 + i) as u64);
                    assert_solo_logits(a, &model, &b, "big");
                }
            })
        })
        .collect();
    for t in clients {
        t.join().unwrap();
    }
    drop(server);
}
