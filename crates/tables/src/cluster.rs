//! The connection to the Redis Cluster, its own small tokio runtime, and blocking calls with a
//! deadline for the synchronous callers (the model's forward pass, the command line).
//!
//! Administrative calls use the `redis` crate's async cluster client (one multiplexed
//! connection per node, `MOVED`/`ASK` followed, reconnects). Row fetches go through
//! [`Router`], which isolates a failed node (see [`crate::router`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use tokio::runtime::{Handle, Runtime};

use crate::router::Router;
use crate::{Result, TablesError};

/// How to reach the cluster and how long to wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterOptions {
    /// Seed nodes: `redis://HOST:PORT` (or `HOST:PORT`); the client discovers the rest.
    pub nodes: Vec<String>,
    /// Deadline of one row fetch (one model call): after it the call fails with
    /// [`TablesError::Timeout`], whatever the cluster does.
    pub deadline: Duration,
    /// Deadline of administrative calls (one pipeline of `push`, `verify`, `gc`).
    pub admin_deadline: Duration,
    /// TCP connect timeout per node.
    pub connect_timeout: Duration,
    /// Retries of a command on a redirection or a connection error (within the deadline).
    pub retries: u32,
}

impl ClusterOptions {
    /// Options for `urls`: comma-separated seed nodes, with or without `redis://`.
    pub fn from_urls(urls: &str) -> Result<ClusterOptions> {
        let nodes: Vec<String> = urls
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s.contains("://") {
                    s.to_string()
                } else {
                    format!("redis://{s}")
                }
            })
            .collect();
        if nodes.is_empty() {
            return Err(TablesError::InvalidArgument {
                what: "redis urls".into(),
                reason: format!("{urls:?} names no node"),
            });
        }
        Ok(ClusterOptions {
            nodes,
            deadline: Duration::from_millis(1000),
            admin_deadline: Duration::from_secs(30),
            connect_timeout: Duration::from_millis(500),
            retries: 3,
        })
    }
}

/// A cluster client with its runtime. Cheap to share behind an `Arc`.
pub struct Cluster {
    runtime: Option<Runtime>,
    handle: Handle,
    client: ClusterClient,
    conn: Arc<tokio::sync::Mutex<Option<ClusterConnection>>>,
    router: Arc<Router>,
    options: ClusterOptions,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("nodes", &self.options.nodes)
            .finish_non_exhaustive()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks end, which panics inside another runtime
        // (the server drops models from async code): let its threads finish in the background.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Cluster {
    /// A client for `options.nodes` with a runtime of two worker threads. Connects lazily: the
    /// first call (or [`Cluster::ping`]) opens the connections.
    pub fn new(options: ClusterOptions) -> Result<Cluster> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("quantrec-tables")
            .enable_all()
            .build()
            .map_err(TablesError::Runtime)?;
        let client = ClusterClient::builder(options.nodes.clone())
            .connection_timeout(options.connect_timeout)
            .response_timeout(options.deadline.max(Duration::from_millis(50)))
            .retries(options.retries)
            .min_retry_wait(10)
            .max_retry_wait(200)
            .build()
            .map_err(|e| TablesError::redis("cluster client", e))?;
        Ok(Cluster {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            client,
            conn: Arc::new(tokio::sync::Mutex::new(None)),
            router: Arc::new(Router::new(
                &options.nodes,
                options.connect_timeout,
                options.deadline.max(Duration::from_millis(50)),
            )),
            options,
        })
    }

    /// The options.
    pub fn options(&self) -> &ClusterOptions {
        &self.options
    }

    /// Runs `f` with a connection on the store's runtime and waits for it at most `deadline`
    /// (none: as long as it takes, each command still bounded by the response timeout).
    pub fn run<T, F, Fut>(&self, op: &str, deadline: Option<Duration>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(ClusterConnection) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let slot = self.conn.clone();
        let client = self.client.clone();
        self.block_on(op, deadline, async move {
            let conn = connection(&slot, &client).await?;
            f(conn).await
        })
    }

    /// Runs `f` with the fetch path's [`Router`] on the store's runtime, waiting at most
    /// `deadline`.
    pub fn run_routed<T, F, Fut>(&self, op: &str, deadline: Duration, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Router>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        self.block_on(op, Some(deadline), f(self.router.clone()))
    }

    fn block_on<T, Fut>(&self, op: &str, deadline: Option<Duration>, task: Fut) -> Result<T>
    where
        T: Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let op_name = op.to_string();
        self.handle.spawn(async move {
            let result = match deadline {
                Some(d) => match tokio::time::timeout(d, task).await {
                    Ok(r) => r,
                    Err(_) => Err(TablesError::Timeout {
                        op: op_name,
                        deadline: d,
                    }),
                },
                None => task.await,
            };
            // The caller may have given up already; nothing to do then.
            let _ = tx.send(result);
        });
        let timeout = |d: Duration| TablesError::Timeout {
            op: op.to_string(),
            deadline: d,
        };
        match deadline {
            // A grace period past the task's own timeout, for a runtime that is busy.
            Some(d) => rx
                .recv_timeout(d + Duration::from_millis(250))
                .map_err(|_| timeout(d))?,
            None => rx.recv().map_err(|_| timeout(Duration::ZERO))?,
        }
    }

    /// Spawns `task` on the store's runtime (background work such as [`crate::health`]).
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.handle.spawn(task);
    }

    /// The fetch path's router.
    pub(crate) fn router(&self) -> Arc<Router> {
        self.router.clone()
    }

    /// `PING` to every primary within the fetch deadline: whether the whole store answers.
    pub fn ping(&self) -> Result<()> {
        self.run_routed(
            "PING all primaries",
            self.options.deadline,
            |r| async move { r.ping_all().await },
        )
    }
}

/// The shared connection, opened on first use (and again after a failed open).
async fn connection(
    slot: &tokio::sync::Mutex<Option<ClusterConnection>>,
    client: &ClusterClient,
) -> Result<ClusterConnection> {
    let mut guard = slot.lock().await;
    if let Some(c) = guard.as_ref() {
        return Ok(c.clone());
    }
    let c = client
        .get_async_connection()
        .await
        .map_err(|e| TablesError::redis("connecting to the cluster", e))?;
    *guard = Some(c.clone());
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_and_given_a_scheme() {
        let o = ClusterOptions::from_urls("127.0.0.1:7000, redis://127.0.0.1:7001,").unwrap();
        assert_eq!(
            o.nodes,
            vec!["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]
        );
        assert!(ClusterOptions::from_urls(" , ").is_err());
    }

    #[test]
    fn an_unreachable_cluster_is_a_clean_error_within_the_deadline() {
        // Port 1 on loopback: nothing listens there.
        let mut o = ClusterOptions::from_urls("127.0.0.1:1").unwrap();
        o.deadline = Duration::from_millis(300);
        let c = Cluster::new(o).unwrap();
        let t0 = std::time::Instant::now();
        let e = c.ping().unwrap_err();
        assert!(e.is_unavailable(), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    }
}
