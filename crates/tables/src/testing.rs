//! Helpers for tests that run against a live Redis Cluster (this crate's and the server's):
//! finding the cluster CI starts, fresh namespaces, and driving `scripts/redis-cluster.sh`
//! (kill, revive, pause, resume a node). Test code: they panic on failure.
//!
//! The cluster comes from `QUANTREC_REDIS_CLUSTER` (seed URLs) and, for the script,
//! `QUANTREC_REDIS_CLUSTER_DIR`. Without them a test prints `SKIPPED` and returns, except under
//! `CI=true`, where it fails: CI must start the cluster.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::rng::Rng;
use quantrec_model::Model;

fn env_or_skip(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "{test}: {var} is not set: CI must start the Redis Cluster \
                 (scripts/redis-cluster.sh start DIR) and export it"
            );
            eprintln!(
                "SKIPPED {test}: {var} is not set (scripts/redis-cluster.sh start DIR, then \
                 QUANTREC_REDIS_CLUSTER=$(scripts/redis-cluster.sh urls DIR) \
                 QUANTREC_REDIS_CLUSTER_DIR=DIR)"
            );
            None
        }
    }
}

/// The cluster's seed URLs, or `None` (skip) outside CI.
pub fn cluster_urls(test: &str) -> Option<String> {
    env_or_skip("QUANTREC_REDIS_CLUSTER", test)
}

/// The cluster's directory (for [`script`]), or `None` (skip) outside CI.
pub fn cluster_dir(test: &str) -> Option<String> {
    env_or_skip("QUANTREC_REDIS_CLUSTER_DIR", test)
}

/// A namespace no other test (or earlier run) uses.
pub fn namespace(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("qrtest-{tag}-{}-{nanos}", std::process::id())
}

/// Path of `scripts/redis-cluster.sh`.
pub fn script() -> String {
    format!(
        "{}/../../scripts/redis-cluster.sh",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Runs `args` and returns its standard output; panics unless it succeeds.
pub fn sh(args: &[&str]) -> String {
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

/// The ports of the cluster in `dir`, in start order.
pub fn ports(dir: &str) -> Vec<String> {
    std::fs::read_to_string(Path::new(dir).join("ports"))
        .unwrap_or_else(|e| panic!("{dir}/ports: {e}"))
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// `(table, block)` of every block key of namespace `ns` held by the node on `port`.
pub fn blocks_on(port: &str, ns: &str) -> Vec<(usize, usize)> {
    let pattern = format!("{ns}:rows:*");
    sh(&["redis-cli", "-p", port, "--scan", "--pattern", &pattern])
        .lines()
        .filter_map(|k| {
            // ns:rows:{version.table.group}:block
            let (tag, block) = k.rsplit_once("}:")?;
            let t = tag.rsplit('.').nth(1)?.parse().ok()?;
            Some((t, block.parse().ok()?))
        })
        .collect()
}

/// Whether the node on `port` sees every node of `expected` connected, with no `fail` or
/// `fail?` flag, and all 16384 slots assigned.
fn healthy(port: &str, expected: usize) -> bool {
    let Ok(out) = Command::new("redis-cli")
        .args(["-p", port, "cluster", "nodes"])
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
    lines.len() == expected && slots == 16384
}

/// Waits (at most 60 s) until every node of the cluster in `dir` sees a healed cluster: a node
/// revived after a kill stays flagged FAIL in its peers' views for a while after it answers
/// again, and `redis-cli --cluster reshard` refuses to run until it is cleared.
pub fn wait_healthy(dir: &str) {
    let ports = ports(dir);
    let t0 = Instant::now();
    for p in &ports {
        while !healthy(p, ports.len()) {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "node {p}: the cluster is not healthy again after 60 s:\n{}",
                sh(&["redis-cli", "-p", p, "cluster", "nodes"])
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `size` one-hot samples of `m` (dense in [0, 3)) whose rows all lie outside the blocks
/// `avoid` (`(table, block)` with `rows_per_block` rows per block); a table with no row left
/// gets empty bags.
pub fn batch_avoiding(
    m: &Model,
    avoid: &[(usize, usize)],
    rows_per_block: usize,
    size: usize,
    seed: u64,
) -> Batch {
    let mut rng = Rng::new(seed);
    let c = m.config();
    let sparse = c
        .tables
        .iter()
        .enumerate()
        .map(|(t, tc)| {
            let ok: Vec<i64> = (0..tc.rows as i64)
                .filter(|&r| !avoid.contains(&(t, r as usize / rows_per_block)))
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
    batch_of(m, size, sparse, &mut rng, 3.0)
}

/// A batch of `size` samples of `m` with the sparse features `sparse` (one per table) and dense
/// values uniform in `[0, dense_hi)`, drawn from `rng` after the ids.
pub fn batch_of(
    m: &Model,
    size: usize,
    sparse: Vec<SparseFeature>,
    rng: &mut Rng,
    dense_hi: f32,
) -> Batch {
    let n_dense = m.config().dense_features;
    let dense = (0..size * n_dense)
        .map(|_| rng.uniform_f32(0.0, dense_hi))
        .collect();
    Batch::unlabeled(size, n_dense, dense, sparse)
}
