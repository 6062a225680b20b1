//! `quantrec loadgen`: open-loop load against a running server ([`quantrec_serve::loadgen`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use quantrec_serve::loadgen::{self, Inputs, LoadgenOptions, Protocol};

/// Arguments of `quantrec loadgen`.
#[derive(Args, Debug)]
pub struct LoadgenArgs {
    /// The server: http://host:port of its HTTP port (of its gRPC port with --grpc).
    #[arg(long)]
    pub url: String,
    /// The model to load.
    #[arg(long)]
    pub model: String,
    /// Offered rate, requests per second (Poisson arrivals); with --find-max-rate, the first
    /// rate tried.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Length of the run (of each trial with --find-max-rate), seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Rows (ranking candidates) per request.
    #[arg(long, default_value_t = 256)]
    pub candidates: usize,
    /// Use gRPC ModelInfer instead of HTTP.
    #[arg(long)]
    pub grpc: bool,
    /// HTTP: send and receive tensors with the binary data extension instead of JSON.
    #[arg(long, conflicts_with = "grpc")]
    pub binary: bool,
    /// Most requests in flight; waiting ones still count from their scheduled time.
    #[arg(long, default_value_t = 256)]
    pub concurrency_limit: usize,
    /// Seed of the arrival timeline and of synthetic inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Rows from a data file (Criteo TSV, gzip or batch file), cut into requests.
    #[arg(long, conflicts_with = "synthetic")]
    pub inputs: Option<PathBuf>,
    /// Synthetic ranking requests for the model's shape (the default).
    #[arg(long)]
    pub synthetic: bool,
    /// Per-request timeout, milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Distinct requests encoded up front and cycled through.
    #[arg(long, default_value_t = 64)]
    pub distinct_requests: usize,
    /// Worker threads of the client.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// Search for the largest rate with p99 within --p99-ms (doubling, then bisecting).
    #[arg(long)]
    pub find_max_rate: bool,
    /// The p99 target of --find-max-rate, milliseconds.
    #[arg(long, default_value_t = 10.0, requires = "find_max_rate")]
    pub p99_ms: f64,
    /// Write the first request as it goes on the wire (HTTP body, or length-prefixed gRPC
    /// message) to this file and exit, to drive the same load with another tool.
    #[arg(long)]
    pub dump_request: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `quantrec loadgen`.
pub fn run(a: LoadgenArgs) -> Result<()> {
    if !(a.duration.is_finite() && a.duration > 0.0) {
        bail!(
            "--duration must be a positive number of seconds, found {}",
            a.duration
        );
    }
    let mut o = LoadgenOptions::new(a.url, a.model);
    o.rate = a.rate;
    o.duration = Duration::from_secs_f64(a.duration);
    o.candidates = a.candidates;
    o.protocol = if a.grpc {
        Protocol::Grpc
    } else {
        Protocol::Http { binary: a.binary }
    };
    o.concurrency_limit = a.concurrency_limit;
    o.seed = a.seed;
    o.inputs = a.inputs.map_or(Inputs::Synthetic, Inputs::File);
    o.timeout = Duration::from_millis(a.timeout_ms);
    o.distinct_requests = a.distinct_requests;
    o.client_threads = a.client_threads;
    if let Some(path) = a.dump_request {
        let w = loadgen::Session::connect(o)?.wire_request();
        std::fs::write(&path, &w.body).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "{}",
            serde_json::json!({"file": path.display().to_string(), "bytes": w.body.len(), "header_len": w.header_len})
        );
        return Ok(());
    }
    if a.find_max_rate {
        super::output::print_line(&loadgen::find_max_rate(o, a.p99_ms)?, a.json)
    } else {
        super::output::print_line(&loadgen::run(o)?, a.json)
    }
}
