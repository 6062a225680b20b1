//! Canary launches on a real server under client load: a canary worse than its budget is rolled
//! back and the old version keeps serving; a canary within budget is promoted and replaces it;
//! neither fails a single request; a canary can be launched over HTTP or gRPC `RepositoryModelLoad`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::http::{get, grpc_connect, options, post_json, start};
use common::monitor::*;
use common::*;
use quantrec_kernels::formats::TableFormat;
use quantrec_model::artifact::Artifact;
use quantrec_model::{LayerPrecision, Model, ModelConfig, Plan};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

/// Clients sending requests with ids and feeding back labels drawn from `truth` at once.
struct Traffic {
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<std::collections::BTreeSet<String>>>,
}

impl Traffic {
    fn start(a: SocketAddr, config: &ModelConfig, truth: Arc<Model>) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(AtomicUsize::new(0));
        let threads = (0..2u64)
            .map(|c| {
                let (stop, failures, truth, config) = (
                    stop.clone(),
                    failures.clone(),
                    truth.clone(),
                    config.clone(),
                );
                std::thread::spawn(move || {
                    let mut versions = std::collections::BTreeSet::new();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let b = random_batch(&config, 32, c * 1_000_000 + i);
                        let id = format!("c{c}-{i}");
                        let r = post_json(a, "/v2/models/m/infer", &infer_json(&b, &id));
                        i += 1;
                        if r.status != 200 {
                            failures.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        versions.insert(r.json()["model_version"].as_str().unwrap().to_string());
                        let p = truth.predict(&b, &mut Default::default()).unwrap().to_vec();
                        let f = feedback(a, "m", &[(id, labels_for(&p, c * 7919 + i))]);
                        if f.status != 200 || f.json()["accepted"] != 1 {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    versions
                })
            })
            .collect();
        Traffic {
            stop,
            failures,
            threads,
        }
    }

    /// Stops the clients; returns the failures and every version that answered.
    fn finish(self) -> (usize, std::collections::BTreeSet<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut seen = std::collections::BTreeSet::new();
        for t in self.threads {
            seen.extend(t.join().unwrap());
        }
        (self.failures.load(Ordering::Relaxed), seen)
    }
}

/// Waits for the canary decision and returns the accuracy report holding it.
fn wait_for_verdict(a: SocketAddr) -> Value {
    wait_for("the canary verdict", LIMIT, || {
        let acc = accuracy(a, "m");
        (!acc["launches"].as_array()?.is_empty()).then_some(acc)
    })
}

fn versions(a: SocketAddr) -> Value {
    get(a, "/v2/models/m").json()["versions"].clone()
}

fn metric(a: SocketAddr, decision: &str) -> bool {
    let text = String::from_utf8(get(a, "/metrics").body).unwrap();
    text.lines().any(|l| {
        l.starts_with("quantrec_canary_decisions_total{")
            && l.contains(&format!("decision=\"{decision}\""))
            && l.ends_with(" 1")
    })
}

#[test]
fn a_canary_worse_than_budget_is_rolled_back_and_the_old_version_serves_on() {
    let dir = temp_dir("canary-rollback");
    let config = small_config();
    let plan = Plan::f32(&config);
    let v1 = artifact_bytes(&config, &plan, 7);
    write_version(&dir, "m", 1, &v1);
    // The canary: other weights altogether (a damaged model), launched from config.json.
    write_version(&dir, "m", 2, &artifact_bytes(&config, &plan, 99));
    std::fs::write(
        dir.join("m").join("config.json"),
        json!({"monitor": {"canary": {"version": 2, "fraction": 0.5, "min_labels": 1500,
            "max_delta_ne_percent": 1.0}}})
        .to_string(),
    )
    .unwrap();
    let truth = Arc::new(Artifact::from_bytes(v1).unwrap().model);
    let server = start(options(&dir));
    let a = server.http_addr;
    assert_eq!(versions(a), json!(["2", "1"]));
    let before = accuracy(a, "m");
    assert_eq!(version_report(&before, "2").unwrap()["role"], "canary");
    let traffic = Traffic::start(a, &config, truth);
    let acc = wait_for_verdict(a);
    let launch = &acc["launches"][0];
    assert_eq!(launch["version"], "2");
    assert_eq!(launch["decision"], "rollback", "{launch}");
    assert!(
        launch["delta_ne_percent"].as_f64().unwrap() > 1.0,
        "{launch}"
    );
    assert!(
        launch["reason"]
            .as_str()
            .unwrap()
            .contains("exceeds the budget")
    );
    wait_for("the canary's retirement", LIMIT, || {
        (versions(a) == json!(["1"])).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    let (failures, seen) = traffic.finish();
    assert_eq!(failures, 0, "no request may fail around a rollback");
    assert!(seen.contains("1") && seen.contains("2"), "{seen:?}");
    assert_eq!(get(a, "/v2/models/m/versions/2/ready").status, 404);
    assert!(metric(a, "rollback"));
    let after = accuracy(a, "m");
    assert!(version_report(&after, "2").is_none());
    assert_eq!(after["canary_verdict"]["decision"], "rollback");
    // A reload honours the decision: the rolled-back file stays out.
    let r = post_json(a, "/v2/repository/models/m/load", &json!({}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(versions(a), json!(["1"]));
    drop(server);
}

/// How a test launches the canary on a running server.
enum Launch {
    /// `POST /v2/repository/models/m/load` with JSON parameters.
    Http,
    /// gRPC `RepositoryModelLoad` with Triton's string/int64 repository parameters.
    Grpc,
}

/// Loads version 2 as a canary of the serving version 1 through `launch`, under client traffic,
/// and checks that it is promoted without a single failed request.
fn promote_through(launch: Launch, tag: &str) {
    let dir = temp_dir(tag);
    let config = small_config();
    let v1 = artifact_bytes(&config, &Plan::f32(&config), 7);
    write_version(&dir, "m", 1, &v1);
    let truth = Arc::new(Artifact::from_bytes(v1).unwrap().model);
    let server = start(options(&dir));
    let a = server.http_addr;
    // The canary: the same weights at half precision.
    let f16 = Plan::uniform(&config, LayerPrecision::F16, TableFormat::F16);
    write_version(&dir, "m", 2, &artifact_bytes(&config, &f16, 7));
    let grpc_load = |version: &str| -> Result<(), tonic::Status> {
        use quantrec_serve::proto::model_repository_parameter::ParameterChoice;
        use quantrec_serve::proto::{ModelRepositoryParameter, RepositoryModelLoadRequest};
        let text = |s: &str| ModelRepositoryParameter {
            parameter_choice: Some(ParameterChoice::StringParam(s.into())),
        };
        let int = |n: i64| ModelRepositoryParameter {
            parameter_choice: Some(ParameterChoice::Int64Param(n)),
        };
        let parameters = [
            ("canary_version".to_string(), text(version)),
            ("canary_fraction".to_string(), text("0.5")),
            ("canary_min_labels".to_string(), int(1500)),
            ("canary_max_delta_ne_percent".to_string(), text("1.0")),
        ]
        .into_iter()
        .collect();
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let mut c = grpc_connect(&server, Duration::from_secs(10)).await;
            c.repository_model_load(RepositoryModelLoadRequest {
                repository_name: String::new(),
                model_name: "m".into(),
                parameters,
            })
            .await
            .map(|_| ())
        })
    };
    let http_load = |version: &str| {
        post_json(
            a,
            "/v2/repository/models/m/load",
            &json!({"parameters": {"canary_version": version, "canary_fraction": 0.5,
                "canary_min_labels": 1500, "canary_max_delta_ne_percent": 1.0}}),
        )
    };
    // A canary version that does not exist is refused with the reason, and nothing changes.
    match launch {
        Launch::Http => {
            let bad = http_load("3");
            assert_eq!(bad.status, 400, "no version 3");
            let why = bad.json()["error"].as_str().unwrap().to_string();
            assert!(why.contains("canary version 3 refused"), "{why}");
        }
        Launch::Grpc => {
            let bad = grpc_load("3").unwrap_err();
            // Like every refused load: the repository is not in the state the request needs.
            assert_eq!(bad.code(), tonic::Code::FailedPrecondition, "{bad:?}");
            assert!(
                bad.message().contains("canary version 3 refused"),
                "{bad:?}"
            );
        }
    }
    assert_eq!(versions(a), json!(["1"]));
    let traffic = Traffic::start(a, &config, truth);
    std::thread::sleep(Duration::from_millis(200));
    match launch {
        Launch::Http => {
            let r = http_load("2");
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        }
        Launch::Grpc => grpc_load("2").unwrap(),
    }
    let acc = wait_for_verdict(a);
    let launch = &acc["launches"][0];
    assert_eq!(launch["decision"], "promote", "{launch}");
    assert!(launch["rows"].as_u64().unwrap() >= 1500);
    wait_for("the promotion", LIMIT, || {
        (versions(a) == json!(["2"])).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    let (failures, seen) = traffic.finish();
    assert_eq!(failures, 0, "no request may fail around a promotion");
    assert!(seen.contains("1") && seen.contains("2"), "{seen:?}");
    assert!(metric(a, "promote"));
    let after = accuracy(a, "m");
    let v2 = version_report(&after, "2").unwrap();
    assert_eq!(v2["role"], "serving");
    assert!(v2["labeled_rows"].as_u64().unwrap() >= 1500);
    assert!(
        version_report(&after, "1").is_none(),
        "the old version is retired"
    );
    drop(server);
}

#[test]
fn a_canary_within_budget_is_promoted_through_the_load_api() {
    promote_through(Launch::Http, "canary-promote");
}

#[test]
fn a_canary_launched_over_grpc_model_load_is_promoted() {
    promote_through(Launch::Grpc, "canary-promote-grpc");
}
