//! Starting and stopping the server: options, the shared state of both protocols, the repository
//! poller, and graceful shutdown.
//!
//! Shutdown (SIGTERM/SIGINT for [`run`], [`Server::shutdown`] in process): readiness turns false
//! at once, both listeners stop accepting, every accepted request is answered (batchers run what
//! is queued), then the servers return.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::batcher::ComputePool;
use crate::config::Limits;
use crate::metrics::Metrics;
use crate::remote_tables::{TablesDefaults, TablesHub};
use crate::repository::Repository;
use crate::version::Context;
use crate::{Result, ServeError};

/// Everything `quantrec serve` can be told.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeOptions {
    /// The model repository.
    pub models: PathBuf,
    /// Address to listen on.
    pub host: IpAddr,
    /// HTTP port (0: any free port).
    pub http_port: u16,
    /// gRPC port (0: any free port); `None` disables gRPC.
    pub grpc_port: Option<u16>,
    /// Rows merged into one model call.
    pub max_batch: usize,
    /// How long the first request of a batch waits for others, in microseconds.
    pub max_delay_us: u64,
    /// Requests waiting per model version before new ones are refused.
    pub queue: usize,
    /// Rows one request may carry.
    pub max_request_rows: usize,
    /// Compute threads (0: one per core).
    pub threads: usize,
    /// Threads of the I/O runtime that decodes requests and writes answers (0: one per four
    /// cores, at least one).
    pub io_threads: usize,
    /// Largest accepted request body (HTTP and gRPC message).
    pub max_body_bytes: usize,
    /// Rescan the repository every this many seconds (0: never).
    pub poll_secs: u64,
    /// Accept NaN and infinite dense values instead of refusing them.
    pub allow_nonfinite: bool,
    /// Tables in a Redis Cluster (`--tables-redis` and friends; a model's config.json
    /// `tables` section overrides them).
    pub tables: TablesDefaults,
}

impl ServeOptions {
    /// Defaults for a repository: 127.0.0.1, HTTP 8000, gRPC 8001, batches of up to 1024 rows
    /// after at most 500 µs, queues of 1024 requests, 64 MiB bodies.
    pub fn new(models: PathBuf) -> ServeOptions {
        ServeOptions {
            models,
            host: IpAddr::from([127, 0, 0, 1]),
            http_port: 8000,
            grpc_port: Some(8001),
            max_batch: 1024,
            max_delay_us: 500,
            queue: 1024,
            max_request_rows: 16384,
            threads: 0,
            io_threads: 0,
            max_body_bytes: 64 << 20,
            poll_secs: 0,
            allow_nonfinite: false,
            tables: TablesDefaults::default(),
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            max_batch: self.max_batch.max(1),
            max_delay: Duration::from_micros(self.max_delay_us),
            queue: self.queue.max(1),
            max_request_rows: self.max_request_rows.max(1),
        }
    }
}

/// What the protocol handlers share.
#[derive(Debug)]
pub struct ServerState {
    /// The models.
    pub repo: Arc<Repository>,
    /// False once shutdown starts.
    pub ready: AtomicBool,
    /// Largest accepted body.
    pub max_body_bytes: usize,
}

impl ServerState {
    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.repo.context().metrics
    }

    /// Compute threads.
    pub fn threads(&self) -> usize {
        self.repo.context().pool.threads()
    }

    /// Whether the server has not started shutting down.
    pub fn accepting(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Whether the server is ready: not shutting down, and the Redis Cluster of every
    /// serving version with remote tables answered its last background ping (cached: never
    /// waits on the network).
    pub fn is_ready(&self) -> bool {
        self.accepting()
            && self.repo.loaded().iter().all(|m| {
                m.serving()
                    .versions
                    .values()
                    .all(|lv| lv.tables_reachable())
            })
    }
}

/// A running server (its own tokio runtime), for tests and embedding.
#[derive(Debug)]
pub struct Server {
    /// The HTTP address it listens on.
    pub http_addr: SocketAddr,
    /// The gRPC address, when enabled.
    pub grpc_addr: Option<SocketAddr>,
    /// The shared state.
    pub state: Arc<ServerState>,
    stop: watch::Sender<bool>,
    done: Option<std::thread::JoinHandle<Result<()>>>,
}

/// Loads the repository and builds the shared state (blocking).
fn build_state(opts: &ServeOptions) -> Result<Arc<ServerState>> {
    let pool = ComputePool::new(opts.threads).map_err(|source| ServeError::Io {
        what: "starting the compute pool".into(),
        source,
    })?;
    let metrics = Metrics::new();
    let tables =
        TablesHub::new(opts.tables.clone(), metrics.registry()).map_err(|e| ServeError::Io {
            what: "registering the remote tables' metrics".into(),
            source: std::io::Error::other(e),
        })?;
    let ctx = Arc::new(Context {
        pool: Arc::new(pool),
        metrics,
        limits: opts.limits(),
        allow_nonfinite: opts.allow_nonfinite,
        tables,
    });
    let repo = Arc::new(Repository::new(opts.models.clone(), ctx)?);
    for (name, r) in repo.load_all()? {
        match r {
            Ok(rep) => {
                tracing::info!(model = %name, loaded = ?rep.loaded, refused = rep.refused.len(), "model ready")
            }
            Err(e) => tracing::error!(model = %name, error = %e, "model not serving"),
        }
    }
    Ok(Arc::new(ServerState {
        repo,
        ready: AtomicBool::new(true),
        max_body_bytes: opts.max_body_bytes,
    }))
}

async fn bind(host: IpAddr, port: u16, what: &str) -> Result<TcpListener> {
    TcpListener::bind((host, port))
        .await
        .map_err(|source| ServeError::Io {
            what: format!("binding the {what} port {host}:{port}"),
            source,
        })
}

/// Serves until `stop` turns true.
async fn serve(
    state: Arc<ServerState>,
    http: TcpListener,
    grpc: Option<TcpListener>,
    poll_secs: u64,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let wait_stop = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    if poll_secs > 0 {
        let repo = state.repo.clone();
        let mut rx = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(poll_secs));
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let r = repo.clone();
                        let _ = tokio::task::spawn_blocking(move || r.poll()).await;
                    }
                    _ = async { rx.wait_for(|s| *s).await.map(|_| ()) } => return,
                }
            }
        });
    }
    let app = crate::http::router(state.clone());
    let http_task = tokio::spawn(
        axum::serve(
            axum::serve::ListenerExt::tap_io(http, |tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set on an HTTP connection");
                }
            }),
            app,
        )
        .with_graceful_shutdown(wait_stop(stop.clone()))
        .into_future(),
    );
    let grpc_task = grpc.map(|l| {
        let svc = crate::grpc::service(state.clone());
        let incoming = tokio_stream_incoming(l);
        tokio::spawn(
            // A 256-candidate request is ~66 KB: with HTTP/2's default 64 KiB windows every
            // request would wait for a WINDOW_UPDATE round trip (several, with streams sharing
            // the connection window), which costs milliseconds on a busy machine.
            tonic::transport::Server::builder()
                .initial_stream_window_size(GRPC_STREAM_WINDOW)
                .initial_connection_window_size(GRPC_CONNECTION_WINDOW)
                .max_frame_size(GRPC_MAX_FRAME)
                .add_service(svc)
                .serve_with_incoming_shutdown(incoming, wait_stop(stop.clone())),
        )
    });
    let _ = stop.wait_for(|s| *s).await;
    state.ready.store(false, Ordering::SeqCst);
    let h = http_task.await.map_err(|e| ServeError::Io {
        what: "HTTP server task".into(),
        source: std::io::Error::other(e),
    })?;
    h.map_err(|source| ServeError::Io {
        what: "serving HTTP".into(),
        source,
    })?;
    if let Some(g) = grpc_task {
        let r = g.await.map_err(|e| ServeError::Io {
            what: "gRPC server task".into(),
            source: std::io::Error::other(e),
        })?;
        r.map_err(|e| ServeError::Io {
            what: "serving gRPC".into(),
            source: std::io::Error::other(e),
        })?;
    }
    tracing::info!("server stopped: every accepted request was answered");
    Ok(())
}

/// HTTP/2 receive window of one gRPC stream (bytes).
const GRPC_STREAM_WINDOW: u32 = 4 << 20;
/// HTTP/2 receive window of one gRPC connection (bytes).
const GRPC_CONNECTION_WINDOW: u32 = 16 << 20;
/// Largest HTTP/2 frame a gRPC client may send (bytes; the protocol's default is 16 KiB): a
/// client that sends a 66 KB request in one or two frames lets the server read it in a few
/// large reads instead of many small ones.
const GRPC_MAX_FRAME: u32 = 1 << 20;

/// The accepted connections of a listener as the stream tonic serves, with Nagle's algorithm
/// off (tonic's own `tcp_nodelay` applies only to listeners it binds itself): otherwise a
/// response's last frames can wait for the client's delayed ACK.
fn tokio_stream_incoming(
    l: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(l).map(|s| {
        let s = s?;
        s.set_nodelay(true)?;
        Ok(s)
    })
}

/// The I/O runtime's threads for `requested` (0: one per four cores, at least one). Decoding and
/// answering a request costs a fraction of its model call, and every extra runtime thread that
/// parks and wakes between requests costs context switches on cores the compute pool needs.
fn io_threads(requested: usize) -> usize {
    if requested > 0 {
        return requested;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / 4).max(1)
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(io_threads(threads))
        .thread_name("quantrec-io")
        .enable_all()
        .build()
        .map_err(|source| ServeError::Io {
            what: "starting the I/O runtime".into(),
            source,
        })
}

impl Server {
    /// Loads the repository and starts serving on a runtime of its own; returns once both ports
    /// are bound.
    pub fn start(opts: ServeOptions) -> Result<Server> {
        let state = build_state(&opts)?;
        let rt = runtime(opts.io_threads)?;
        let (http, grpc) = rt.block_on(async {
            let http = bind(opts.host, opts.http_port, "HTTP").await?;
            let grpc = match opts.grpc_port {
                Some(p) => Some(bind(opts.host, p, "gRPC").await?),
                None => None,
            };
            Ok::<_, ServeError>((http, grpc))
        })?;
        let http_addr = http.local_addr().map_err(|source| ServeError::Io {
            what: "HTTP address".into(),
            source,
        })?;
        let grpc_addr = grpc.as_ref().and_then(|g| g.local_addr().ok());
        let (stop, rx) = watch::channel(false);
        let st = state.clone();
        let poll = opts.poll_secs;
        let done = std::thread::Builder::new()
            .name("quantrec-server".into())
            .spawn(move || rt.block_on(serve(st, http, grpc, poll, rx)))
            .map_err(|source| ServeError::Io {
                what: "starting the server thread".into(),
                source,
            })?;
        tracing::info!(http = %http_addr, grpc = ?grpc_addr, "serving");
        Ok(Server {
            http_addr,
            grpc_addr,
            state,
            stop,
            done: Some(done),
        })
    }

    /// Starts the graceful shutdown: readiness false, no new connections or requests.
    pub fn begin_shutdown(&self) {
        self.state.ready.store(false, Ordering::SeqCst);
        let _ = self.stop.send(true);
    }

    /// Shuts down gracefully and waits until every accepted request is answered.
    pub fn shutdown(mut self) -> Result<()> {
        self.begin_shutdown();
        self.join()
    }

    /// Waits for the server to stop.
    pub fn join(&mut self) -> Result<()> {
        match self.done.take() {
            Some(h) => h.join().unwrap_or_else(|_| {
                Err(ServeError::Io {
                    what: "server thread".into(),
                    source: std::io::Error::other("panicked"),
                })
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.begin_shutdown();
        let _ = self.join();
    }
}

/// Installs a `tracing` subscriber writing to stderr (level from `RUST_LOG`, default `info`)
/// unless one is installed already.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// What `quantrec serve` runs: starts the server, prints where it listens, and serves until
/// SIGTERM or SIGINT, then shuts down gracefully.
pub fn run(opts: ServeOptions) -> Result<()> {
    init_logging();
    let mut server = Server::start(opts)?;
    println!(
        "quantrec serve: HTTP on {}{}",
        server.http_addr,
        server
            .grpc_addr
            .map(|g| format!(", gRPC on {g}"))
            .unwrap_or_default()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ServeError::Io {
            what: "signal runtime".into(),
            source,
        })?;
    rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(|source| ServeError::Io {
            what: "installing the SIGTERM handler".into(),
            source,
        })?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        }
        Ok::<_, ServeError>(())
    })?;
    server.begin_shutdown();
    server.join()
}
