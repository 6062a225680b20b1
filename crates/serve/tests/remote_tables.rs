//! `serve --tables-redis`: a server whose tables live in a Redis Cluster (`QUANTREC_REDIS_CLUSTER`,
//! and for the node faults `QUANTREC_REDIS_CLUSTER_DIR`; without them the tests print SKIPPED,
//! and fail under `CI=true`). Answers equal the in-memory model bit for bit over HTTP and gRPC;
//! a version whose tables are not pushed is refused while the old one serves, and loads once they
//! are; a paused node turns readiness false and fails only the requests that need its rows, with
//! 503 / UNAVAILABLE within the deadline, and everything recovers when it answers again.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::{get, grpc_connect, options, post_json, start};
use common::*;
use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::formats::TableFormat;
use quantrec_kernels::rng::Rng;
use quantrec_model::artifact::Artifact;
use quantrec_model::{LayerPrecision, Model, Plan};
use quantrec_serve::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use quantrec_serve::proto::*;
use quantrec_serve::remote_tables::TablesDefaults;
use quantrec_serve::{ServeOptions, Server};
use quantrec_tables::store::PushOptions;
use quantrec_tables::testing::{
    batch_avoiding, blocks_on, cluster_dir, cluster_urls, namespace, ports, script, sh,
    wait_healthy,
};
use quantrec_tables::{Cluster, ClusterOptions, Store, model_tables};
use serde_json::json;

/// Rows per block of the pushes: small, with one block per slot group, so that the rows of
/// these small tables spread over every node.
const ROWS_PER_BLOCK: usize = 4;

/// The tests of this file one at a time: one of them pauses a node, which would refuse the
/// others' loads.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn store(urls: &str, ns: &str) -> Store {
    let cluster = Cluster::new(ClusterOptions::from_urls(urls).unwrap()).unwrap();
    Store::new(Arc::new(cluster), ns).unwrap()
}

fn push(st: &Store, name: &str, model: &Model) {
    let opts = PushOptions {
        rows_per_block: ROWS_PER_BLOCK,
        blocks_per_group: 1,
        max_new_blocks: None,
    };
    assert!(st.push(name, &model_tables(model), &opts).unwrap().complete);
}

/// Writes version `v` of model `dlrm` (4-bit tables, random weights from `seed`) and returns
/// the in-memory model of the same bytes.
fn write_model(dir: &Path, v: u64, seed: u64) -> Model {
    let config = small_config();
    let plan = Plan::uniform(&config, LayerPrecision::F32, TableFormat::Fused4);
    let bytes = artifact_bytes(&config, &plan, seed);
    write_version(dir, "dlrm", v, &bytes);
    Artifact::from_bytes(bytes).unwrap().model
}

fn server(dir: &Path, urls: &str, ns: &str, deadline_ms: u64, cache_bytes: usize) -> Server {
    let mut o: ServeOptions = options(dir);
    o.tables = TablesDefaults {
        redis: Some(urls.to_string()),
        namespace: ns.to_string(),
        cache_bytes,
        deadline: Duration::from_millis(deadline_ms),
        verify: true,
    };
    start(o)
}

fn http_logits(s: &Server, b: &Batch) -> Result<Vec<u32>, (u16, String)> {
    let r = post_json(s.http_addr, "/v2/models/dlrm/infer", &infer_json(b, "r"));
    if r.status != 200 {
        return Err((r.status, String::from_utf8_lossy(&r.body).to_string()));
    }
    Ok(bits(&outputs_of(&r.json()).0))
}

fn grpc_client(
    s: &Server,
    rt: &tokio::runtime::Runtime,
) -> GrpcInferenceServiceClient<tonic::transport::Channel> {
    rt.block_on(grpc_connect(s, Duration::from_secs(10)))
}

fn grpc_logits(
    c: &mut GrpcInferenceServiceClient<tonic::transport::Channel>,
    rt: &tokio::runtime::Runtime,
    b: &Batch,
) -> Result<Vec<u32>, tonic::Status> {
    let r = rt
        .block_on(c.model_infer(grpc_request(b, true)))?
        .into_inner();
    let got: Vec<f32> = r.raw_output_contents[0]
        .chunks_exact(4)
        .map(|x| f32::from_le_bytes(x.try_into().unwrap()))
        .collect();
    Ok(bits(&got))
}

fn want(model: &Model, b: &Batch) -> Vec<u32> {
    bits(&expected(model, b).0)
}

#[test]
fn remote_tables_answer_bit_identically_over_http_and_grpc() {
    let _serial = serial();
    let tag = "remote_identical";
    let Some(urls) = cluster_urls(tag) else {
        return;
    };
    let dir = temp_dir(tag);
    let local = write_model(&dir, 1, 11);
    let ns = namespace(tag);
    push(&store(&urls, &ns), "dlrm", &local);
    let s = server(&dir, &urls, &ns, 1000, 4096);
    assert_eq!(get(s.http_addr, "/v2/health/ready").status, 200);
    assert_eq!(get(s.http_addr, "/v2/models/dlrm/ready").status, 200);
    let config = small_config();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = grpc_client(&s, &rt);
    for (i, size) in [1usize, 7, 64, 300].into_iter().enumerate() {
        let b = random_batch(&config, size, 100 + i as u64);
        let w = want(&local, &b);
        assert_eq!(http_logits(&s, &b).unwrap(), w, "HTTP, {size} rows");
        assert_eq!(
            grpc_logits(&mut c, &rt, &b).unwrap(),
            w,
            "gRPC, {size} rows"
        );
    }
    // Multi-hot bags (with an empty one) over the same tables.
    let mut b = random_batch(&config, 5, 7);
    let mut rng = Rng::new(3);
    b.sparse = config
        .tables
        .iter()
        .map(|t| {
            let lengths = [3usize, 0, 1, 5, 2];
            let ids = (0..lengths.iter().sum::<usize>())
                .map(|_| rng.below(t.rows as u64) as i64)
                .collect();
            SparseFeature::from_lengths(&lengths, ids)
        })
        .collect();
    let r = post_json(s.http_addr, "/v2/models/dlrm/infer", &multi_hot_json(&b));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        bits(&outputs_of(&r.json()).0),
        want(&local, &b),
        "multi-hot"
    );
    let ready = rt
        .block_on(c.model_ready(ModelReadyRequest {
            name: "dlrm".into(),
            version: String::new(),
        }))
        .unwrap()
        .into_inner();
    assert!(ready.ready);
    let metrics = String::from_utf8(get(s.http_addr, "/metrics").body).unwrap();
    for family in [
        "quantrec_tables_lookups_total{model=\"dlrm\",result=\"miss\",version=\"1\"}",
        "quantrec_tables_fetch_seconds_count{model=\"dlrm\",version=\"1\"}",
        "quantrec_tables_wire_bytes_total{direction=\"received\",model=\"dlrm\",version=\"1\"}",
        "quantrec_tables_cache_capacity_bytes{model=\"dlrm\",version=\"1\"} 4096",
    ] {
        assert!(
            metrics.contains(family),
            "no {family} in /metrics:\n{metrics}"
        );
    }
    s.shutdown().unwrap();
}

/// A KServe JSON body with jagged ids (`sparse_lengths` `[n_tables, B]`, `sparse_values`
/// table-major).
fn multi_hot_json(b: &Batch) -> serde_json::Value {
    let lengths: Vec<i64> = b
        .sparse
        .iter()
        .flat_map(|f| f.offsets.windows(2).map(|w| w[1] - w[0]))
        .collect();
    let values: Vec<i64> = b.sparse.iter().flat_map(|f| f.ids.clone()).collect();
    json!({
        "inputs": [
            {"name": "dense", "datatype": "FP32", "shape": [b.size, b.n_dense], "data": b.dense},
            {"name": "sparse_lengths", "datatype": "INT32", "shape": [b.sparse.len(), b.size],
             "data": lengths},
            {"name": "sparse_values", "datatype": "INT64", "shape": [values.len()], "data": values},
        ],
    })
}

#[test]
fn a_version_whose_tables_are_not_pushed_is_refused_while_the_old_serves() {
    let _serial = serial();
    let tag = "remote_refused";
    let Some(urls) = cluster_urls(tag) else {
        return;
    };
    let dir = temp_dir(tag);
    let v1 = write_model(&dir, 1, 21);
    // A second model whose tables were never pushed: refused, the server still starts.
    let config = small_config();
    write_version(
        &dir,
        "unpushed",
        1,
        &artifact_bytes(&config, &Plan::f32(&config), 5),
    );
    let ns = namespace(tag);
    let st = store(&urls, &ns);
    push(&st, "dlrm", &v1);
    let s = server(&dir, &urls, &ns, 1000, 0);
    let index = post_json(s.http_addr, "/v2/repository/index", &json!({})).json();
    let unpushed = index
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "unpushed")
        .unwrap_or_else(|| panic!("{index}"));
    assert_eq!(unpushed["state"], "UNAVAILABLE", "{index}");
    assert!(
        unpushed["reason"].as_str().unwrap().contains("no manifest"),
        "{index}"
    );
    assert_eq!(get(s.http_addr, "/v2/models/unpushed/ready").status, 404);

    let b = random_batch(&config, 16, 9);
    assert_eq!(http_logits(&s, &b).unwrap(), want(&v1, &b));
    // Version 2 arrives without its tables: refused, version 1 keeps serving.
    let v2 = write_model(&dir, 2, 22);
    let failed = s.state.metrics().event_count("dlrm", "failed_load");
    let r = post_json(s.http_addr, "/v2/repository/models/dlrm/load", &json!({}));
    let body = String::from_utf8_lossy(&r.body).to_string();
    assert_eq!(r.status, 400, "{body}");
    assert!(body.contains("push them"), "{body}");
    assert_eq!(
        s.state.metrics().event_count("dlrm", "failed_load"),
        failed + 1
    );
    let index = post_json(s.http_addr, "/v2/repository/index", &json!({})).json();
    let v2_entry = index
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "dlrm" && e["version"] == "2")
        .unwrap_or_else(|| panic!("{index}"));
    assert_eq!(v2_entry["state"], "UNAVAILABLE", "{index}");
    assert!(
        v2_entry["reason"].as_str().unwrap().contains("push them"),
        "{index}"
    );
    assert_eq!(http_logits(&s, &b).unwrap(), want(&v1, &b));
    assert_eq!(
        get(s.http_addr, "/v2/models/dlrm/versions/1/ready").status,
        200
    );

    // Once its tables are pushed, the next load serves it (the refusal is not pinned to the
    // unchanged file).
    push(&st, "dlrm", &v2);
    let r = post_json(s.http_addr, "/v2/repository/models/dlrm/load", &json!({}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(http_logits(&s, &b).unwrap(), want(&v2, &b));
    assert_ne!(want(&v1, &b), want(&v2, &b));
    s.shutdown().unwrap();
}

fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    t0.elapsed()
}

#[test]
fn readiness_follows_a_paused_node_and_only_its_requests_fail() {
    let _serial = serial();
    let tag = "remote_paused";
    let (Some(urls), Some(cluster_dir)) = (cluster_urls(tag), cluster_dir(tag)) else {
        return;
    };
    wait_healthy(&cluster_dir);
    let dir = temp_dir(tag);
    let local = write_model(&dir, 1, 31);
    let ns = namespace(tag);
    push(&store(&urls, &ns), "dlrm", &local);
    let deadline = Duration::from_millis(300);
    let s = server(&dir, &urls, &ns, deadline.as_millis() as u64, 0);
    let port = ports(&cluster_dir).last().cloned().unwrap();
    let affected = blocks_on(&port, &ns);
    assert!(!affected.is_empty(), "node {port} holds none of the blocks");
    let safe = batch_avoiding(&local, &affected, ROWS_PER_BLOCK, 8, 1);
    let mut needs = safe.clone();
    let (t, b) = affected[0];
    needs.sparse[t] = SparseFeature::one_hot(vec![(b * ROWS_PER_BLOCK) as i64; needs.size]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = grpc_client(&s, &rt);
    assert_eq!(http_logits(&s, &needs).unwrap(), want(&local, &needs));
    assert_eq!(get(s.http_addr, "/v2/health/ready").status, 200);

    sh(&[&script(), "pause", &cluster_dir, &port]);
    let paused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let noticed = until("readiness false", Duration::from_secs(5), || {
            get(s.http_addr, "/v2/health/ready").status == 503
        });
        eprintln!("{tag}: readiness false {noticed:?} after the pause");
        assert_eq!(get(s.http_addr, "/v2/models/dlrm/ready").status, 503);
        let ready = |c: &mut GrpcInferenceServiceClient<_>| {
            rt.block_on(c.server_ready(ServerReadyRequest {}))
                .unwrap()
                .into_inner()
                .ready
        };
        assert!(!ready(&mut c));
        let model_ready = rt
            .block_on(c.model_ready(ModelReadyRequest {
                name: "dlrm".into(),
                version: "1".into(),
            }))
            .unwrap()
            .into_inner();
        assert!(!model_ready.ready);
        for _ in 0..3 {
            let t0 = Instant::now();
            let (status, body) = http_logits(&s, &needs).unwrap_err();
            assert_eq!(status, 503, "{body}");
            assert!(body.contains("remote tables"), "{body}");
            let e = grpc_logits(&mut c, &rt, &needs).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unavailable, "{e}");
            assert!(
                t0.elapsed() < 2 * (deadline + Duration::from_secs(1)),
                "{:?}",
                t0.elapsed()
            );
            let t0 = Instant::now();
            assert_eq!(http_logits(&s, &safe).unwrap(), want(&local, &safe));
            assert_eq!(
                grpc_logits(&mut c, &rt, &safe).unwrap(),
                want(&local, &safe)
            );
            assert!(t0.elapsed() < deadline + Duration::from_secs(1));
        }
    }));
    sh(&[&script(), "resume", &cluster_dir, &port]);
    if let Err(p) = paused {
        std::panic::resume_unwind(p);
    }
    let back = until("readiness true again", Duration::from_secs(10), || {
        get(s.http_addr, "/v2/health/ready").status == 200
    });
    eprintln!("{tag}: readiness true {back:?} after the resume");
    until(
        "requests on the node answered again",
        Duration::from_secs(10),
        || http_logits(&s, &needs).is_ok(),
    );
    assert_eq!(http_logits(&s, &needs).unwrap(), want(&local, &needs));
    let metrics = String::from_utf8(get(s.http_addr, "/metrics").body).unwrap();
    assert!(
        metrics.contains("quantrec_tables_fetch_errors_total{kind=\"timeout\",model=\"dlrm\""),
        "{metrics}"
    );
    s.shutdown().unwrap();
    wait_healthy(&cluster_dir);
}
