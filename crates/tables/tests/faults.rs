//! Faults on a running Redis Cluster (`QUANTREC_REDIS_CLUSTER` and, for the script,
//! `QUANTREC_REDIS_CLUSTER_DIR`): a killed or unresponsive node fails only the requests that
//! need its rows, within the deadline, and requests succeed again once it is back; resharding
//! during a run loses no request. These tests change the cluster, so they run one at a time.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{cluster_dir, cluster_urls, inputs, logit_bits, model, namespace};
use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::formats::TableFormat;
use quantrec_kernels::rng::Rng;
use quantrec_model::{Model, ModelError};
use quantrec_tables::store::PushOptions;
use quantrec_tables::{
    Cluster, ClusterOptions, Policy, RemoteTables, Store, TablesError, model_tables,
};

static SERIAL: Mutex<()> = Mutex::new(());

const ROWS_PER_BLOCK: usize = 4;

fn script() -> String {
    format!(
        "{}/../../scripts/redis-cluster.sh",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn ports(dir: &str) -> Vec<String> {
    std::fs::read_to_string(Path::new(dir).join("ports"))
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

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

/// `(table, block)` of every block key held by the node on `port`.
fn blocks_on(port: &str, ns: &str) -> Vec<(usize, usize)> {
    let keys = sh(&[
        "redis-cli",
        "-p",
        port,
        "--scan",
        "--pattern",
        &format!("{ns}:rows:*"),
    ]);
    keys.lines()
        .filter_map(|k| {
            // ns:rows:{version.table.group}:block
            let (tag, block) = k.rsplit_once("}:")?;
            let t = tag.rsplit('.').nth(1)?.parse().ok()?;
            Some((t, block.parse().ok()?))
        })
        .collect()
}

/// One-hot on rows outside `avoid` (a table with none gets empty bags), and whether the given
/// batch needs a row in `avoid`.
fn batch_avoiding(m: &Model, avoid: &[(usize, usize)], size: usize, seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let c = m.config();
    let sparse = c
        .tables
        .iter()
        .enumerate()
        .map(|(t, tc)| {
            let ok: Vec<i64> = (0..tc.rows as i64)
                .filter(|&r| !avoid.contains(&(t, r as usize / ROWS_PER_BLOCK)))
                .collect();
            if ok.is_empty() {
                SparseFeature::from_lengths(&vec![0; size], Vec::new())
            } else {
                SparseFeature::one_hot(
                    (0..size)
                        .map(|_| ok[rng.below(ok.len() as u64) as usize])
                        .collect(),
                )
            }
        })
        .collect();
    Batch {
        size,
        n_dense: c.dense_features,
        dense: (0..size * c.dense_features)
            .map(|_| rng.uniform_f32(0.0, 3.0))
            .collect(),
        sparse,
        labels: None,
    }
}

fn is_unavailable(e: &ModelError) -> bool {
    match e {
        ModelError::RemoteRows { source, .. } => source
            .downcast_ref::<TablesError>()
            .is_some_and(TablesError::is_unavailable),
        _ => false,
    }
}

/// Waits (at most 60 s) until every node sees every other node connected with no `fail` or
/// `fail?` flag and all 16384 slots assigned: a node revived after a kill stays flagged FAIL in
/// its peers' views for a while after it answers again, and `redis-cli --cluster reshard`
/// refuses to run until it is cleared.
fn wait_healthy(dir: &str) {
    let ports = ports(dir);
    let t0 = Instant::now();
    let healthy = |p: &str| {
        let Ok(out) = Command::new("redis-cli")
            .args(["-p", p, "cluster", "nodes"])
            .output()
        else {
            return false;
        };
        let nodes = String::from_utf8_lossy(&out.stdout).to_string();
        let lines: Vec<&str> = nodes.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut slots = 0usize;
        for l in &lines {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 8
                || f[2].split(',').any(|flag| flag.starts_with("fail"))
                || f[7] != "connected"
            {
                return false;
            }
            for range in &f[8..] {
                if range.starts_with('[') {
                    continue; // a slot being migrated or imported
                }
                slots += match range.split_once('-') {
                    Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                        (Ok(a), Ok(b)) if b >= a => b - a + 1,
                        _ => return false,
                    },
                    None => 1,
                };
            }
        }
        lines.len() == ports.len() && slots == 16384
    };
    for p in &ports {
        while !healthy(p) {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "node {p}: the cluster is not healthy again after 60 s:\n{}",
                sh(&["redis-cli", "-p", p, "cluster", "nodes"])
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
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
    let safe = batch_avoiding(&local, &affected, 32, 1);
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
                assert!(is_unavailable(&e), "a clean store error, got {e}");
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
                assert!(is_unavailable(&e), "{e}");
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
            let b = batch_avoiding(&local, &[], 48, 10 + s);
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
