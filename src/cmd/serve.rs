//! `quantrec serve`: the model server (KServe v2 / Triton-compatible HTTP and gRPC).

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use quantrec_serve::ServeOptions;
use quantrec_serve::remote_tables::TablesDefaults;

/// Arguments of `quantrec serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Model repository: DIR/<name>/<version>/model.safetensors, optional DIR/<name>/config.json.
    #[arg(long)]
    pub models: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// HTTP port (KServe v2 REST, /metrics); 0 picks a free port.
    #[arg(long, default_value_t = 8000)]
    pub http: u16,
    /// gRPC port (inference.GRPCInferenceService); 0 picks a free port.
    #[arg(long, default_value_t = 8001)]
    pub grpc: u16,
    /// Do not serve gRPC.
    #[arg(long)]
    pub no_grpc: bool,
    /// Rows merged into one model call.
    #[arg(long, default_value_t = 1024)]
    pub max_batch: usize,
    /// How long the first request of a batch waits for others, in microseconds.
    #[arg(long, default_value_t = 500)]
    pub max_delay_us: u64,
    /// Requests waiting per model version before new ones get 503 / RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 1024)]
    pub queue: usize,
    /// Rows one request may carry (the models' max_batch_size).
    #[arg(long, default_value_t = 16384)]
    pub max_request_rows: usize,
    /// Compute threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Threads of the I/O runtime that decodes requests and writes answers (0: one per four
    /// cores, at least one).
    #[arg(long, default_value_t = 0)]
    pub io_threads: usize,
    /// Largest request body (HTTP) or message (gRPC), in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_body_bytes: usize,
    /// Rescan the repository for new or changed versions every N seconds (0: never).
    #[arg(long, default_value_t = 0)]
    pub poll_secs: u64,
    /// Accept NaN and infinite dense values instead of refusing them with 400.
    #[arg(long)]
    pub allow_nonfinite: bool,
    /// Serve every model's tables from this Redis Cluster (seed nodes, comma separated), pushed
    /// there by `quantrec tables push DIR/<name>/<version>/model.safetensors --name <name>`; a
    /// model's config.json `tables` section overrides it.
    #[arg(long)]
    pub tables_redis: Option<String>,
    /// Key namespace of the store.
    #[arg(long, default_value = "quantrec")]
    pub tables_namespace: String,
    /// Bytes of each model version's local hot-row cache in front of the store.
    #[arg(long, visible_alias = "cache-bytes", default_value_t = 0)]
    pub tables_cache_bytes: usize,
    /// Deadline of one model call's row fetch, in milliseconds (503 / UNAVAILABLE after it).
    #[arg(long, default_value_t = 1000)]
    pub tables_deadline_ms: u64,
    /// Re-read every block of a version's tables and check its checksum before serving it.
    #[arg(long)]
    pub tables_verify: bool,
}

/// Runs `quantrec serve` until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> Result<()> {
    let mut o = ServeOptions::new(args.models);
    o.host = args.host;
    o.http_port = args.http;
    o.grpc_port = (!args.no_grpc).then_some(args.grpc);
    o.max_batch = args.max_batch;
    o.max_delay_us = args.max_delay_us;
    o.queue = args.queue;
    o.max_request_rows = args.max_request_rows;
    o.threads = args.threads;
    o.io_threads = args.io_threads;
    o.max_body_bytes = args.max_body_bytes;
    o.poll_secs = args.poll_secs;
    o.allow_nonfinite = args.allow_nonfinite;
    anyhow::ensure!(
        args.tables_deadline_ms > 0,
        "--tables-deadline-ms must be at least 1"
    );
    o.tables = TablesDefaults {
        redis: args.tables_redis,
        namespace: args.tables_namespace,
        cache_bytes: args.tables_cache_bytes,
        deadline: std::time::Duration::from_millis(args.tables_deadline_ms),
        verify: args.tables_verify,
    };
    quantrec_serve::run(o)?;
    Ok(())
}
