//! The async client against a real server on loopback: HTTP (JSON and binary tensor data, with
//! a request id) and gRPC inference equal `Model::predict` bit for bit; readiness and the model's
//! shape come back from the server; errors are typed. Feedback and accuracy calls are checked
//! against a loopback stub that records what it receives.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::http::{options, start};
use common::*;
use quantrec_data::SparseFeature;
use quantrec_model::artifact::Artifact;
use quantrec_model::{ModelConfig, Plan};
use quantrec_serve::ServeError;
use quantrec_serve::client::{FeedbackEntry, GrpcClient, HttpClient, InferOptions};

/// Bounds every async test body.
fn run<F: Future<Output = ()>>(f: F) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), f)
            .await
            .expect("test finished within 60 s")
    });
}

fn setup(tag: &str, config: &ModelConfig) -> (std::path::PathBuf, quantrec_model::Model) {
    let dir = temp_dir(tag);
    let bytes = artifact_bytes(config, &Plan::f32(config), 11);
    write_version(&dir, "dlrm", 1, &bytes);
    (dir, Artifact::from_bytes(bytes).unwrap().model)
}

#[test]
fn http_and_grpc_inference_equal_predict_bit_for_bit() {
    let config = small_config();
    let (dir, model) = setup("client", &config);
    let server = start(options(&dir));
    let http_url = format!("http://{}", server.http_addr);
    let grpc_url = format!("http://{}", server.grpc_addr.unwrap());
    run(async {
        let http = HttpClient::new(&http_url)
            .unwrap()
            .with_timeout(Duration::from_secs(20));
        assert!(http.server_live().await.unwrap());
        assert!(http.server_ready().await.unwrap());
        assert!(http.model_ready("dlrm", None).await.unwrap());
        assert!(!http.model_ready("nope", None).await.unwrap());
        let shape = http.model_shape("dlrm").await.unwrap();
        assert_eq!(shape.n_dense, config.dense_features);
        assert_eq!(
            shape.table_rows,
            config.tables.iter().map(|t| t.rows).collect::<Vec<_>>()
        );
        for (i, size) in [1usize, 7, 64].into_iter().enumerate() {
            let b = random_batch(&config, size, 100 + i as u64);
            let (l, p) = expected(&model, &b);
            for binary in [false, true] {
                let opts = InferOptions {
                    id: Some(format!("req-{i}-{binary}")),
                    binary,
                    ..Default::default()
                };
                let r = http.infer("dlrm", &b, &opts).await.unwrap();
                assert_eq!(r.id, opts.id);
                assert_eq!(r.model_version, "1");
                assert_eq!(bits(&r.logits), bits(&l), "binary={binary} size={size}");
                assert_eq!(
                    bits(&r.probabilities),
                    bits(&p),
                    "binary={binary} size={size}"
                );
            }
        }
        // A multi-hot batch goes as the jagged pair.
        let mut b = random_batch(&config, 5, 7);
        b.sparse[2] = SparseFeature::from_lengths(&[2, 0, 1, 3, 1], vec![1, 2, 3, 4, 5, 6, 7]);
        let (l, _) = expected(&model, &b);
        let r = http
            .infer("dlrm", &b, &InferOptions::default())
            .await
            .unwrap();
        assert_eq!(bits(&r.logits), bits(&l));
        assert_eq!(r.id, None);

        let grpc = GrpcClient::connect(&grpc_url)
            .await
            .unwrap()
            .with_timeout(Duration::from_secs(20));
        assert!(grpc.server_ready().await.unwrap());
        assert!(grpc.model_ready("dlrm", Some("1")).await.unwrap());
        assert_eq!(grpc.model_shape("dlrm").await.unwrap(), shape);
        let b = random_batch(&config, 33, 5);
        let (l, p) = expected(&model, &b);
        let opts = InferOptions {
            id: Some("g".into()),
            ..Default::default()
        };
        let r = grpc.infer("dlrm", &b, &opts).await.unwrap();
        assert_eq!(r.id.as_deref(), Some("g"));
        assert_eq!(bits(&r.logits), bits(&l));
        assert_eq!(bits(&r.probabilities), bits(&p));

        // Errors are typed: unknown model, ids out of range, no server.
        match http.infer("nope", &b, &opts).await {
            Err(ServeError::HttpStatus { status: 404, .. }) => {}
            other => panic!("{other:?}"),
        }
        let mut bad = b.clone();
        bad.sparse[0].ids[0] = 1 << 40;
        match http.infer("dlrm", &bad, &opts).await {
            Err(ServeError::HttpStatus {
                status: 400,
                message,
                ..
            }) => assert!(message.contains("outside table"), "{message}"),
            other => panic!("{other:?}"),
        }
        match grpc.infer("dlrm", &bad, &opts).await {
            Err(ServeError::GrpcStatus { code, .. }) => {
                assert_eq!(code, tonic::Code::InvalidArgument)
            }
            other => panic!("{other:?}"),
        }
    });
    server.shutdown().unwrap();
    // Nothing listens on the old address any more.
    let closed = http_url.clone();
    run(async {
        let c = HttpClient::new(&closed).unwrap();
        match c.server_ready().await {
            Err(ServeError::Connect { .. }) => {}
            other => panic!("{other:?}"),
        }
        match GrpcClient::connect(&closed).await {
            Err(ServeError::Connect { .. }) => {}
            other => panic!("{:?}", other.map(|_| ())),
        }
    });
}

#[test]
fn feedback_and_accuracy_follow_the_documented_bodies() {
    use axum::Json;
    use axum::routing::{get, post};
    let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let s2 = seen.clone();
    let app = axum::Router::new()
        .route(
            "/v2/models/{m}/feedback",
            post(move |Json(v): Json<serde_json::Value>| {
                let s = s2.clone();
                async move {
                    let n = v["feedback"].as_array().map_or(0, Vec::len) as u64;
                    s.lock().unwrap().push(v);
                    Json(serde_json::json!({"accepted": n - 1, "rejected": 1}))
                }
            }),
        )
        .route(
            "/v2/models/{m}/accuracy",
            get(|| async { Json(serde_json::json!({"versions": [{"version": "1"}]})) }),
        );
    run(async move {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move { axum::serve(l, app).await });
        let c = HttpClient::new(&format!("http://{addr}")).unwrap();
        let entries = vec![
            FeedbackEntry {
                id: "a".into(),
                labels: vec![1.0, 0.0],
            },
            FeedbackEntry {
                id: "b".into(),
                labels: vec![0.0],
            },
        ];
        let a = c.feedback("dlrm", &entries).await.unwrap();
        assert_eq!((a.accepted, a.rejected), (1, 1));
        assert_eq!(
            seen.lock().unwrap()[0],
            serde_json::json!({"feedback": [{"id": "a", "labels": [1.0, 0.0]}, {"id": "b", "labels": [0.0]}]})
        );
        let acc = c.accuracy("dlrm").await.unwrap();
        assert_eq!(acc["versions"][0]["version"], "1");
        task.abort();
    });
}
