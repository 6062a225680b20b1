//! Faults on a running Redis Cluster (`QUANTREC_REDIS_CLUSTER` and, for the script,
//! `QUANTREC_REDIS_CLUSTER_DIR`): a killed or unresponsive node fails only the requests that
//! need its rows, within the deadline, and requests succeed again once it is back; resharding
//! during a run loses no request. These tests change the cluster, so they run one at a time.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{inputs, logit_bits, model};
use quantrec_data::Batch;
use quantrec_kernels::formats::TableFormat;
use quantrec_model::Model;
use quantrec_tables::error::unavailable;
use quantrec_tables::store::PushOptions;
use quantrec_tables::testing::{
    batch_avoiding, blocks_on, cluster_dir, cluster_urls, namespace, ports, script, sh,
    wait_healthy,
};
use quantrec_tables::{Cluster, ClusterOptions, Policy, RemoteTables, Store, model_tables};

static SERIAL: Mutex<()> = Mutex::new(());

const ROWS_PER_BLOCK: usize = 4;

/// A store with a short deadline, the model pushed in small blocks of one block per slot group
/// (its rows spread over many slots, so over every node).
fn setup(urls: &str, tag: &str, deadline: Duration) -> (Store, Model) {
    let mut o = ClusterOptions::from_urls(urls).unwrap();
    o.deadline = deadline;
    let st = Store::new(Arc::new(Cluster::new(o).unwrap()), &namespace(tag)).unwrap();
    let m = model(TableFormat::Fused4);
    let opts = PushOptions {
        rows_per_block: ROWS_PER_BLOCK,
        blocks_per_group: 1,
        max_new_blocks: None,
    };
    assert!(st.push("dlrm", &model_tables(&m), &opts).unwrap().complete);
    (st, m)
}

fn remote(st: &Store, m: &Model, cache: usize) -> Model {
    let t = Arc::new(RemoteTables::open(st.clone(), "dlrm", cache, Policy::WTinyLfu).unwrap());
    let mut r = m.clone();
    r.set_row_source(t).unwrap();
    r
}

/// Runs `fault` on the last node, checks requests while it lasts, runs `heal`, checks recovery.
fn node_fault(tag: &str, fault: &str, heal: &str) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (Some(urls), Some(dir)) = (cluster_urls(tag), cluster_dir(tag)) else {
        return;
    };
    wait_healthy(&dir);
    let deadline = Duration::from_millis(400);
    let (st, local) = setup(&urls, tag, deadline);
    let r = remote(&st, &local, 0);
    let port = ports(&dir).last().cloned().unwrap();
    let affected = blocks_on(&port, &st.keys().namespace);
    assert!(
        !affected.is_empty(),
        "node {port} holds none of the model's blocks"
    );
    let safe = batch_avoiding(&local, &affected, ROWS_PER_BLOCK, 32, 1);
    let mut needs = inputs();
    let (t, b) = affected[0];
    needs.sparse[t].ids[0] = (b * ROWS_PER_BLOCK) as i64;
    assert_eq!(
        logit_bits(&r, &needs).unwrap(),
        logit_bits(&local, &needs).unwrap()
    );
    let want_safe = logit_bits(&local, &safe).unwrap();

    // Persist the node's keys so that a restarted node has them again.
    sh(&["redis-cli", "-p", &port, "save"]);
    sh(&[&script(), fault, &dir, &port]);
    let t_fault = Instant::now();
    let mut failures = 0;
    // Long enough for the cluster to notice (node timeout 2 s) and for the client to see it.
    while t_fault.elapsed() < Duration::from_secs(5) {
        let t0 = Instant::now();
        match logit_bits(&r, &needs) {
            Err(e) => {
                assert!(unavailable(&e), "a clean store error, got {e}");
                failures += 1;
            }
            Ok(_) => panic!("a request that needs node {port} succeeded while it is {fault}ed"),
        }
        assert!(
            t0.elapsed() < deadline + Duration::from_secs(1),
            "{:?}",
            t0.elapsed()
        );
        let t0 = Instant::now();
        assert_eq!(
            logit_bits(&r, &safe)
                .unwrap_or_else(|e| panic!("a request not needing node {port}: {e}")),
            want_safe
        );
        assert!(
            t0.elapsed() < deadline + Duration::from_secs(1),
            "{:?}",
            t0.elapsed()
        );
    }
    assert!(failures > 0);

    sh(&[&script(), heal, &dir, &port]);
    let t_heal = Instant::now();
    loop {
        match logit_bits(&r, &needs) {
            Ok(bits) => {
                assert_eq!(bits, logit_bits(&local, &needs).unwrap());
                break;
            }
            Err(e) => {
                assert!(unavailable(&e), "{e}");
                assert!(
                    t_heal.elapsed() < Duration::from_secs(30),
                    "no recovery after {heal}: {e}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    eprintln!(
        "{tag}: {failures} clean failures during {fault}, recovered {:?} after {heal}",
        t_heal.elapsed()
    );
    // Let the cluster settle (the node is marked back up everywhere) before the next test.
    wait_healthy(&dir);
}

#[test]
fn a_killed_node_fails_only_its_requests_and_recovery_follows_its_restart() {
    node_fault("killed_node", "kill", "revive");
}

#[test]
fn an_unresponsive_node_times_out_only_its_requests_and_recovery_follows() {
    node_fault("paused_node", "pause", "resume");
}

#[test]
fn resharding_during_a_run_loses_no_request() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let tag = "resharding";
    let (Some(urls), Some(dir)) = (cluster_urls(tag), cluster_dir(tag)) else {
        return;
    };
    wait_healthy(&dir);
    let (st, local) = setup(&urls, tag, Duration::from_secs(2));
    let r = Arc::new(remote(&st, &local, 0));
    let batches: Vec<(Batch, Vec<u32>)> = (0..8)
        .map(|s| {
            let b = batch_avoiding(&local, &[], ROWS_PER_BLOCK, 48, 10 + s);
            let want = logit_bits(&local, &b).unwrap();
            (b, want)
        })
        .collect();
    let batches = Arc::new(batches);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let worker = {
        let (r, batches, stop, done) = (r.clone(), batches.clone(), stop.clone(), done.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let (b, want) = &batches[i % batches.len()];
                let got = logit_bits(&r, b)
                    .unwrap_or_else(|e| panic!("request {i} lost during resharding: {e}"));
                assert_eq!(&got, want, "request {i}");
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    };
    let p = ports(&dir);
    let id = |port: &str| {
        sh(&["redis-cli", "-p", port, "cluster", "myid"])
            .trim()
            .to_string()
    };
    let (a, b) = (id(&p[0]), id(&p[1]));
    let node = format!("127.0.0.1:{}", p[0]);
    let before = done.load(Ordering::Relaxed);
    for (from, to) in [(&a, &b), (&b, &a)] {
        sh(&[
            "redis-cli",
            "--cluster",
            "reshard",
            &node,
            "--cluster-from",
            from,
            "--cluster-to",
            to,
            "--cluster-slots",
            "1200",
            "--cluster-yes",
        ]);
    }
    let during = done.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    worker.join().expect("no request failed");
    eprintln!("{tag}: {during} requests bit-identical while 2 × 1200 slots moved");
    assert!(during > 0, "no request ran while slots moved");
}
