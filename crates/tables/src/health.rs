//! Reachability of the cluster for a server's readiness: `PING` of every primary, repeated in
//! the background on the cluster's own runtime, the last result cached, so that answering a
//! readiness probe never waits on the network.
//!
//! [`Health::watch`] pings once before it returns (an unreachable cluster is an error then), and
//! again every `interval`, each ping bounded by the fetch deadline: a node that stops answering
//! turns [`Health::reachable`] false within `interval + deadline`, and true again on the first
//! ping after it is back. The background task ends when the last [`Health`] is dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::{Result, TablesError};

/// The last ping's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthState {
    /// Whether every primary answered.
    pub reachable: bool,
    /// Why not, when it did not.
    pub error: Option<String>,
    /// When that ping ended.
    pub checked: Instant,
}

#[derive(Debug)]
struct Shared {
    reachable: AtomicBool,
    checks: AtomicU64,
    state: Mutex<HealthState>,
}

impl Shared {
    fn record(&self, result: &Result<()>) {
        let ok = result.is_ok();
        self.reachable.store(ok, Ordering::SeqCst);
        self.checks.fetch_add(1, Ordering::SeqCst);
        *self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = HealthState {
            reachable: ok,
            error: result.as_ref().err().map(ToString::to_string),
            checked: Instant::now(),
        };
    }
}

/// The cached reachability of a cluster, refreshed in the background.
#[derive(Clone, Debug)]
pub struct Health {
    shared: Arc<Shared>,
}

impl Health {
    /// Pings `cluster` now (an error when it does not answer within its fetch deadline), then
    /// every `interval` in the background (at least 10 ms apart).
    pub fn watch(cluster: &Cluster, interval: Duration) -> Result<Health> {
        cluster.ping()?;
        let shared = Arc::new(Shared {
            reachable: AtomicBool::new(true),
            checks: AtomicU64::new(1),
            state: Mutex::new(HealthState {
                reachable: true,
                error: None,
                checked: Instant::now(),
            }),
        });
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        let router = cluster.router();
        let deadline = cluster.options().deadline;
        let interval = interval.max(Duration::from_millis(10));
        cluster.spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                if weak.strong_count() == 0 {
                    return;
                }
                let result = match tokio::time::timeout(deadline, router.ping_all()).await {
                    Ok(r) => r,
                    Err(_) => Err(TablesError::Timeout {
                        op: "PING all primaries".into(),
                        deadline,
                    }),
                };
                match weak.upgrade() {
                    Some(s) => s.record(&result),
                    None => return,
                }
            }
        });
        Ok(Health { shared })
    }

    /// Whether the last ping reached every primary (never blocks).
    pub fn reachable(&self) -> bool {
        self.shared.reachable.load(Ordering::SeqCst)
    }

    /// The last ping's outcome.
    pub fn state(&self) -> HealthState {
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Pings done so far (the one of [`Health::watch`] included).
    pub fn checks(&self) -> u64 {
        self.shared.checks.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClusterOptions;

    #[test]
    fn an_unreachable_cluster_is_refused_at_once() {
        let mut o = ClusterOptions::from_urls("127.0.0.1:1").unwrap();
        o.deadline = Duration::from_millis(200);
        let c = Cluster::new(o).unwrap();
        let t0 = Instant::now();
        let e = Health::watch(&c, Duration::from_millis(50)).unwrap_err();
        assert!(e.is_unavailable(), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    }
}
