//! `quantrec loadgen`: an **open-loop** load generator for the KServe v2 server.
//!
//! Requests leave on a precomputed Poisson timeline ([`schedule`]) whatever the server does, and
//! each one's latency is measured from its *scheduled* send time to its answer, so queueing in
//! the server shows in the tail instead of slowing the generator down (closed-loop tools suffer
//! "coordinated omission": a stalled server stops being asked). A dedicated thread keeps the
//! timeline with the operating system's sleep precision and hands each request to a small tokio
//! runtime (where it waits for an in-flight slot, if need be); the lag between schedule and actual
//! send is reported too, and counts in the latency.
//!
//! Every request is a ranking request of `candidates` rows ([`inputs`]: synthetic ones shaped by
//! the model's config, or rows of a data file), encoded once before the run and cycled through.
//! An in-flight limit bounds connections: a request waiting for a slot still has its latency
//! counted from its scheduled time, and requests still waiting when the timeline ends are
//! reported as `unsent`. [`find_max_rate`] searches for the largest rate whose p99 meets a target.

pub mod inputs;
pub mod report;
pub mod schedule;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use quantrec_data::Batch;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

use crate::client::{
    EncodedInfer, GrpcClient, HttpBody, HttpClient, InferOptions, ModelShape, encode_http,
};
use crate::{Result, ServeError};
pub use report::{LoadReport, MaxRateReport, Quantiles, Trial};

/// Which protocol requests use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// KServe v2 HTTP; `binary`: Triton's binary tensor data extension instead of JSON.
    Http {
        /// Inputs and outputs as binary tensor data.
        binary: bool,
    },
    /// KServe v2 gRPC `ModelInfer` (raw contents).
    Grpc,
}

impl Protocol {
    /// `http-json`, `http-binary` or `grpc`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http { binary: false } => "http-json",
            Protocol::Http { binary: true } => "http-binary",
            Protocol::Grpc => "grpc",
        }
    }
}

/// Where request rows come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inputs {
    /// Synthetic ranking requests for the model's shape ([`inputs::synthetic`]).
    Synthetic,
    /// Rows of a data file ([`inputs::from_file`]).
    File(PathBuf),
}

/// Everything `quantrec loadgen` can be told.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadgenOptions {
    /// The server: `http://host:port` of its HTTP port, or of its gRPC port with [`Protocol::Grpc`].
    pub url: String,
    /// The model.
    pub model: String,
    /// Offered rate, requests per second.
    pub rate: f64,
    /// Length of the timeline.
    pub duration: Duration,
    /// Rows per request.
    pub candidates: usize,
    /// The protocol.
    pub protocol: Protocol,
    /// Most requests in flight (connections, for HTTP/1.1).
    pub concurrency_limit: usize,
    /// Seed of the timeline and of synthetic inputs.
    pub seed: u64,
    /// Where rows come from.
    pub inputs: Inputs,
    /// Per-request timeout (counted as a `timeout` error).
    pub timeout: Duration,
    /// Distinct requests encoded before the run and cycled through.
    pub distinct_requests: usize,
    /// Worker threads of the client runtime (the timeline has its own thread).
    pub client_threads: usize,
}

impl LoadgenOptions {
    /// Defaults: 100 req/s for 10 s, 256 candidates, HTTP/JSON, at most 256 in flight, seed 0,
    /// synthetic inputs, 10 s timeout, 64 distinct requests, one client thread.
    pub fn new(url: impl Into<String>, model: impl Into<String>) -> LoadgenOptions {
        LoadgenOptions {
            url: url.into(),
            model: model.into(),
            rate: 100.0,
            duration: Duration::from_secs(10),
            candidates: 256,
            protocol: Protocol::Http { binary: false },
            concurrency_limit: 256,
            seed: 0,
            inputs: Inputs::Synthetic,
            timeout: Duration::from_secs(10),
            distinct_requests: 64,
            client_threads: 1,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |option, reason: &str| {
            Err(ServeError::LoadgenOption {
                option,
                reason: reason.into(),
            })
        };
        if self.duration.is_zero() {
            return bad("duration", "must be positive");
        }
        if self.candidates == 0 {
            return bad("candidates", "a request needs at least one row");
        }
        if self.concurrency_limit == 0 || self.concurrency_limit > Semaphore::MAX_PERMITS {
            return bad("concurrency-limit", "must be at least 1");
        }
        if self.timeout.is_zero() {
            return bad("timeout", "must be positive");
        }
        if self.distinct_requests == 0 {
            return bad("distinct-requests", "must be at least 1");
        }
        if self.client_threads == 0 {
            return bad("client-threads", "must be at least 1");
        }
        Ok(())
    }
}

/// The encoded requests of a run and the client that sends them: bodies and messages are
/// encoded once and sent as they are (a reference-counted buffer per send, no copy or re-encoding),
/// so the client's cost per request is its transport's, not encoding.
enum Prepared {
    Http(HttpClient, Vec<HttpBody>),
    Grpc(GrpcClient, Vec<EncodedInfer>),
}

/// Connected client, model shape and encoded requests: what every trial of a run reuses.
pub struct Session {
    opts: LoadgenOptions,
    runtime: Runtime,
    prepared: Arc<Prepared>,
    shape: ModelShape,
}

/// What the tasks of a trial record.
struct Recorder {
    latency: Histogram<u64>,
    lag: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    first_error: Option<String>,
    last_done: Option<Instant>,
}

fn micros(d: Duration) -> u64 {
    (d.as_micros().min(u128::from(report::MAX_TRACKED_US)) as u64).max(1)
}

impl Session {
    /// Connects, reads the model's shape, builds and encodes the requests, and checks one
    /// request end to end (so a wrong URL, model or input file fails here, not as a report full
    /// of errors).
    pub fn connect(opts: LoadgenOptions) -> Result<Session> {
        opts.validate()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(opts.client_threads)
            .enable_all()
            .build()
            .map_err(|source| ServeError::Io {
                what: "starting the load generator's runtime".into(),
                source,
            })?;
        let o = &opts;
        let (prepared, shape) = runtime.block_on(async {
            let (client, shape) = match o.protocol {
                Protocol::Http { .. } => {
                    let c = HttpClient::new(&o.url)?.with_timeout(o.timeout);
                    let s = c.model_shape(&o.model).await?;
                    (Ok(c), s)
                }
                Protocol::Grpc => {
                    let c = GrpcClient::connect(&o.url).await?.with_timeout(o.timeout);
                    let s = c.model_shape(&o.model).await?;
                    (Err(c), s)
                }
            };
            if o.candidates > shape.max_batch_size {
                return Err(ServeError::LoadgenOption {
                    option: "candidates",
                    reason: format!(
                        "{} rows per request, the model takes at most {}",
                        o.candidates, shape.max_batch_size
                    ),
                });
            }
            let batches: Vec<Batch> = match &o.inputs {
                Inputs::Synthetic => {
                    inputs::synthetic(&shape, o.candidates, o.distinct_requests, o.seed)
                }
                Inputs::File(p) => inputs::from_file(p, &shape, o.candidates, o.distinct_requests)?,
            };
            let prepared = match client {
                Ok(c) => {
                    let binary = matches!(o.protocol, Protocol::Http { binary: true });
                    let bodies = batches
                        .iter()
                        .map(|b| encode_http(b, None, binary))
                        .collect::<Result<Vec<_>>>()?;
                    Prepared::Http(c, bodies)
                }
                Err(c) => {
                    let reqs = batches
                        .iter()
                        .map(|b| {
                            GrpcClient::infer_request(&o.model, b, &InferOptions::default())
                                .map(|r| EncodedInfer::new(&r))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    Prepared::Grpc(c, reqs)
                }
            };
            send(&prepared, &o.model, 0, o.candidates).await?;
            Ok((prepared, shape))
        })?;
        Ok(Session {
            opts,
            runtime,
            prepared: Arc::new(prepared),
            shape,
        })
    }

    /// The model's shape as the server described it.
    pub fn shape(&self) -> &ModelShape {
        &self.shape
    }

    /// The options the session was made with.
    pub fn options(&self) -> &LoadgenOptions {
        &self.opts
    }

    /// The first request exactly as it goes on the wire, for driving the same load with another
    /// tool: the HTTP body (and its `Inference-Header-Content-Length` when binary), or the gRPC
    /// message framed as on an HTTP/2 stream (a zero compression byte, the big-endian length,
    /// the protobuf `ModelInferRequest`).
    pub fn wire_request(&self) -> HttpBody {
        match self.prepared.as_ref() {
            Prepared::Http(_, bodies) => bodies[0].clone(),
            Prepared::Grpc(_, reqs) => HttpBody {
                body: reqs[0].framed(),
                header_len: None,
            },
        }
    }

    /// One open-loop trial at `rate` requests per second (timeline seed `seed`).
    pub fn run_at(&self, rate: f64, seed: u64) -> Result<LoadReport> {
        let o = &self.opts;
        let arrivals = schedule::poisson_arrivals(rate, o.duration, seed)?;
        let rec = Arc::new(Mutex::new(Recorder {
            latency: report::histogram(),
            lag: report::histogram(),
            ok: 0,
            errors: BTreeMap::new(),
            first_error: None,
            last_done: None,
        }));
        let limit = o.concurrency_limit;
        let sem = Arc::new(Semaphore::new(limit));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let handle = self.runtime.handle();
        let start = Instant::now() + Duration::from_millis(5);
        let end = start + o.duration;
        let sent = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::with_capacity(arrivals.len());
        for (i, &offset) in arrivals.iter().enumerate() {
            let target = start + offset;
            let now = Instant::now();
            if target > now {
                std::thread::sleep(target - now);
            }
            let (prepared, rec, sem) = (self.prepared.clone(), rec.clone(), sem.clone());
            let (in_flight, max_in_flight, sent) =
                (in_flight.clone(), max_in_flight.clone(), sent.clone());
            let (model, candidates) = (o.model.clone(), o.candidates);
            // The slot is awaited inside the runtime, so the timeline thread never blocks and a
            // finished request hands its slot on without a cross-thread wake-up.
            tasks.push(handle.spawn(async move {
                let permit = match sem.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => {
                        match tokio::time::timeout_at(end.into(), sem.acquire_owned()).await {
                            Ok(Ok(p)) => p,
                            _ => return,
                        }
                    }
                };
                let lag = Instant::now().saturating_duration_since(target);
                let n = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                max_in_flight.fetch_max(n, Ordering::SeqCst);
                sent.fetch_add(1, Ordering::SeqCst);
                let r = send(&prepared, &model, i, candidates).await;
                let done = Instant::now();
                in_flight.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
                let mut g = rec.lock().expect("recorder lock");
                g.lag.saturating_record(micros(lag));
                g.last_done = Some(g.last_done.map_or(done, |d| d.max(done)));
                match r {
                    Ok(()) => {
                        g.ok += 1;
                        g.latency.saturating_record(micros(done - target));
                    }
                    Err(e) => {
                        *g.errors.entry(report::error_kind(&e)).or_default() += 1;
                        g.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }));
        }
        // Waiting requests give up at the end of the timeline and every sent one has a timeout:
        // all tasks are done well within it plus a margin.
        let drain = async {
            tokio::time::timeout(o.timeout + Duration::from_secs(5), async {
                for t in tasks {
                    let _ = t.await;
                }
            })
            .await
        };
        if handle.block_on(drain).is_err() {
            return Err(ServeError::LoadgenOption {
                option: "timeout",
                reason: "requests were still in flight past their timeout".into(),
            });
        }
        let sent = sent.load(Ordering::SeqCst);
        let g = rec.lock().expect("recorder lock");
        let elapsed = g
            .last_done
            .unwrap_or_else(Instant::now)
            .saturating_duration_since(start)
            .as_secs_f64()
            .max(1e-6);
        let achieved = g.ok as f64 / elapsed;
        Ok(LoadReport {
            protocol: o.protocol.name().into(),
            url: o.url.clone(),
            model: o.model.clone(),
            candidates: o.candidates,
            offered_rate: rate,
            duration_s: o.duration.as_secs_f64(),
            concurrency_limit: limit,
            scheduled: arrivals.len() as u64,
            sent,
            unsent: arrivals.len() as u64 - sent,
            ok: g.ok,
            errors: g.errors.clone(),
            first_error: g.first_error.clone(),
            elapsed_s: elapsed,
            achieved_qps: achieved,
            rows_per_s: achieved * o.candidates as f64,
            latency: Quantiles::of(&g.latency),
            send_lag: Quantiles::of(&g.lag),
            max_in_flight: max_in_flight.load(Ordering::SeqCst),
        })
    }
}

/// Sends request `i` (cycling through the prepared ones) and checks it scored every row.
async fn send(p: &Prepared, model: &str, i: usize, candidates: usize) -> Result<()> {
    let r = match p {
        Prepared::Http(c, bodies) => c.infer_body(model, None, &bodies[i % bodies.len()]).await?,
        Prepared::Grpc(c, reqs) => c.infer_encoded(&reqs[i % reqs.len()]).await?,
    };
    if r.probabilities.len() != candidates {
        return Err(ServeError::BadResponse {
            reason: format!(
                "{} scores for a request of {candidates} rows",
                r.probabilities.len()
            ),
        });
    }
    Ok(())
}

/// One run at the options' rate.
pub fn run(opts: LoadgenOptions) -> Result<LoadReport> {
    let seed = opts.seed;
    let rate = opts.rate;
    Session::connect(opts)?.run_at(rate, seed)
}

/// Most trials of a max-rate search (retries included).
pub const MAX_TRIALS: usize = 20;

/// Whether a trial met the target: no error, nothing unsent, p99 within `p99_ms`.
fn passed(r: &LoadReport, p99_ms: f64) -> bool {
    r.error_count() == 0 && r.unsent == 0 && r.ok > 0 && r.latency.p99_ms <= p99_ms
}

/// Searches for the largest rate whose p99 is at most `p99_ms` with no errors: from the options'
/// rate it doubles while trials pass (halves while they fail), then bisects geometrically until
/// the bracket is within 5% or [`MAX_TRIALS`] trials ran. Each trial lasts the options' duration.
///
/// On a shared machine one scheduling hiccup can put a single trial's p99 over the target, so a
/// rate that misses is tried once more on another timeline and counts as over only when both
/// trials miss; every trial is reported (the second one flagged `retry`). The figure is then the
/// capacity the server sustains, not the first noisy trial's rate.
pub fn find_max_rate(opts: LoadgenOptions, p99_ms: f64) -> Result<MaxRateReport> {
    if !(p99_ms.is_finite() && p99_ms > 0.0) {
        return Err(ServeError::LoadgenOption {
            option: "p99-ms",
            reason: format!("must be a positive number of milliseconds, found {p99_ms}"),
        });
    }
    let (first, seed) = (opts.rate, opts.seed);
    let session = Session::connect(opts)?;
    search(first, seed, p99_ms, |rate, seed| session.run_at(rate, seed))
}

/// The search of [`find_max_rate`], from `first`, with `run` running one trial.
fn search(
    first: f64,
    seed: u64,
    p99_ms: f64,
    mut run: impl FnMut(f64, u64) -> Result<LoadReport>,
) -> Result<MaxRateReport> {
    let mut trials = Vec::new();
    let mut best: Option<LoadReport> = None;
    let (mut lo, mut hi): (Option<f64>, Option<f64>) = (None, None);
    let mut rate = first;
    while trials.len() < MAX_TRIALS {
        let mut ok = false;
        for retry in [false, true] {
            if retry && (ok || trials.len() >= MAX_TRIALS) {
                break;
            }
            let r = run(rate, seed.wrapping_add(trials.len() as u64))?;
            ok = passed(&r, p99_ms);
            trials.push(Trial {
                rate,
                passed: ok,
                p99_ms: r.latency.p99_ms,
                achieved_qps: r.achieved_qps,
                failed: r.error_count() + r.unsent,
                retry,
            });
            if ok && best.as_ref().is_none_or(|b| b.offered_rate < rate) {
                best = Some(r);
            }
        }
        if ok {
            lo = Some(lo.map_or(rate, |l: f64| l.max(rate)));
        } else {
            hi = Some(hi.map_or(rate, |h: f64| h.min(rate)));
        }
        rate = match (lo, hi) {
            (Some(l), None) => l * 2.0,
            (None, Some(h)) if h / 2.0 >= 1.0 => h / 2.0,
            (None, Some(_)) => break,
            (Some(l), Some(h)) if h / l > 1.05 => (l * h).sqrt(),
            _ => break,
        };
    }
    Ok(MaxRateReport {
        p99_target_ms: p99_ms,
        max_rate: lo,
        best,
        trials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trial at `rate` of a server whose p99 is `p99_ms`.
    fn report(rate: f64, p99_ms: f64) -> LoadReport {
        let q = |ms| Quantiles {
            count: 100,
            mean_ms: ms,
            p50_ms: ms,
            p90_ms: ms,
            p99_ms: ms,
            p999_ms: ms,
            max_ms: ms,
        };
        LoadReport {
            protocol: "grpc".into(),
            url: "http://127.0.0.1:1".into(),
            model: "m".into(),
            candidates: 1,
            offered_rate: rate,
            duration_s: 1.0,
            concurrency_limit: 8,
            scheduled: 100,
            sent: 100,
            unsent: 0,
            ok: 100,
            errors: BTreeMap::new(),
            first_error: None,
            elapsed_s: 1.0,
            achieved_qps: rate,
            rows_per_s: rate,
            latency: q(p99_ms),
            send_lag: q(0.0),
            max_in_flight: 1,
        }
    }

    #[test]
    fn one_noisy_trial_does_not_end_the_search() {
        // Capacity 1000 req/s; the first trial at each rate from 150 up is a scheduling hiccup.
        let mut seen = Vec::new();
        let r = search(20.0, 0, 10.0, |rate, _| {
            let first = !seen.contains(&rate.to_bits());
            seen.push(rate.to_bits());
            let hiccup = first && rate >= 150.0;
            Ok(report(
                rate,
                if rate > 1000.0 || hiccup { 50.0 } else { 2.0 },
            ))
        })
        .unwrap();
        let max = r.max_rate.unwrap();
        assert!((900.0..=1000.0).contains(&max), "{max} {:?}", r.trials);
        assert!(r.trials.iter().any(|t| t.retry && t.passed));
        assert!(r.trials.len() <= MAX_TRIALS);
        assert_eq!(r.best.as_ref().unwrap().offered_rate, max);
        // A rate that misses twice is over: the bracket's top was retried.
        let over = r.trials.iter().filter(|t| !t.passed && t.retry).count();
        assert!(over >= 1, "{:?}", r.trials);
    }

    #[test]
    fn a_server_that_always_misses_has_no_max_rate() {
        let r = search(4.0, 0, 10.0, |rate, _| Ok(report(rate, 50.0))).unwrap();
        assert_eq!(r.max_rate, None);
        assert!(r.best.is_none());
        // 4, 2 and 1 req/s each tried twice, then the search stops below 1 req/s.
        let rates: Vec<(f64, bool)> = r.trials.iter().map(|t| (t.rate, t.retry)).collect();
        assert_eq!(
            rates,
            [
                (4.0, false),
                (4.0, true),
                (2.0, false),
                (2.0, true),
                (1.0, false),
                (1.0, true)
            ]
        );
    }
}
