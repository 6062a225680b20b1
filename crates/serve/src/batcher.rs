//! The dynamic batcher of one model version and the compute pool it runs on.
//!
//! Requests wait in a bounded queue (full: refused at once). One batcher thread per version takes
//! a free execution slot (as many as the pool has threads), waits for the first request, then for
//! more until `max_batch` rows are waiting or `max_delay` has passed since the first arrived, and
//! hands the merged batch to the compute pool (never the tokio I/O runtime). Requests whose
//! deadline has passed, or whose caller has gone, are answered or dropped without being computed.
//! A version whose rows are not independent of each other ([`crate::validate`]) runs every request
//! alone, exactly as sent.
//!
//! The batcher thread ends when its [`Batcher`] is dropped, after running what is queued: a
//! version replaced by a hot reload finishes every request that reached it.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use quantrec_data::Batch;
use quantrec_model::forward::sigmoid;
use quantrec_model::{Model, Scratch};
use tokio::sync::oneshot;

use crate::config::Limits;
use crate::metrics::Metrics;
use crate::stats::VersionStats;
use crate::validate::{canonical_rows, concat, pad_batch};
use crate::{Result, ServeError};

/// Scores of one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// Logits, one per row.
    pub logits: Vec<f32>,
    /// Probabilities (`sigmoid(logit)`, as `Model::predict` computes them).
    pub probabilities: Vec<f32>,
    /// Time spent waiting in the queue.
    pub queued: Duration,
    /// Duration of the model call that computed them.
    pub compute: Duration,
    /// Rows of that model call (after merging and padding).
    pub call_rows: usize,
}

/// A request waiting for its model call.
#[derive(Debug)]
pub struct Job {
    /// The validated inputs.
    pub batch: Batch,
    /// When it was accepted.
    pub enqueued: Instant,
    /// When it expires, with its timeout in µs.
    pub deadline: Option<(Instant, u64)>,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Scores>>,
}

/// The compute pool shared by every model.
#[derive(Debug)]
pub struct ComputePool {
    pool: rayon::ThreadPool,
    threads: usize,
}

impl ComputePool {
    /// A pool of `threads` threads (0: one per available core).
    pub fn new(threads: usize) -> std::io::Result<ComputePool> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("quantrec-compute-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(ComputePool { pool, threads })
    }

    /// Number of threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` on the pool and waits for it.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    fn spawn(&self, f: impl FnOnce() + Send + 'static) {
        self.pool.spawn(f)
    }
}

/// Identity of a version, for errors and metrics.
#[derive(Clone, Debug)]
pub struct Labels {
    /// Model name.
    pub model: String,
    /// Version.
    pub version: u64,
    /// Version as text (metric label).
    pub version_text: String,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Job>,
    busy: usize,
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// The queue and batcher thread of one model version.
#[derive(Debug)]
pub struct Batcher {
    shared: Arc<Shared>,
    limits: Limits,
    labels: Labels,
    metrics: Metrics,
}

/// Everything the batcher thread needs.
struct Worker {
    shared: Arc<Shared>,
    model: Arc<Model>,
    pool: Arc<ComputePool>,
    limits: Limits,
    mergeable: bool,
    labels: Labels,
    metrics: Metrics,
    stats: Arc<VersionStats>,
    scratches: Arc<Scratches>,
}

impl Batcher {
    /// Starts the batcher thread of a version.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        model: Arc<Model>,
        pool: Arc<ComputePool>,
        limits: Limits,
        mergeable: bool,
        labels: Labels,
        metrics: Metrics,
        stats: Arc<VersionStats>,
    ) -> std::io::Result<Batcher> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let worker = Worker {
            shared: shared.clone(),
            model,
            pool,
            limits,
            mergeable,
            labels: labels.clone(),
            metrics: metrics.clone(),
            stats,
            scratches: Arc::default(),
        };
        std::thread::Builder::new()
            .name(format!("batcher-{}-{}", labels.model, labels.version))
            .spawn(move || worker.run())?;
        Ok(Batcher {
            shared,
            limits,
            labels,
            metrics,
        })
    }

    /// Queues a request, or refuses it at once when the queue is full.
    pub fn submit(&self, job: Job) -> Result<()> {
        let mut st = self.shared.state.lock().expect("batcher lock");
        if st.closed {
            return Err(ServeError::Unavailable {
                model: self.labels.model.clone(),
                version: self.labels.version,
            });
        }
        if st.queue.len() >= self.limits.queue {
            return Err(ServeError::QueueFull {
                model: self.labels.model.clone(),
                version: self.labels.version,
                capacity: self.limits.queue,
            });
        }
        st.queue.push_back(job);
        self.metrics.queue_depth(
            &self.labels.model,
            &self.labels.version_text,
            st.queue.len(),
        );
        drop(st);
        self.shared.wake.notify_all();
        Ok(())
    }

    /// Requests waiting.
    pub fn depth(&self) -> usize {
        self.shared.state.lock().expect("batcher lock").queue.len()
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.shared.state.lock().expect("batcher lock").closed = true;
        self.shared.wake.notify_all();
    }
}

impl Worker {
    fn run(self) {
        let slots = self.pool.threads().max(1);
        loop {
            let mut st = self.shared.state.lock().expect("batcher lock");
            // A free execution slot and a first request (or closed and drained: exit).
            loop {
                if st.busy < slots && !st.queue.is_empty() {
                    break;
                }
                if st.closed && st.queue.is_empty() {
                    return;
                }
                st = self.shared.wake.wait(st).expect("batcher lock");
            }
            // Wait for more rows until max_batch or max_delay after the first request.
            if self.mergeable {
                let first = st.queue[0].enqueued;
                loop {
                    let rows: usize = st.queue.iter().map(|j| j.batch.size).sum();
                    let left = self.limits.max_delay.saturating_sub(first.elapsed());
                    if rows >= self.limits.max_batch || left.is_zero() || st.closed {
                        break;
                    }
                    st = self
                        .shared
                        .wake
                        .wait_timeout(st, left)
                        .expect("batcher lock")
                        .0;
                }
            }
            let jobs = self.take(&mut st);
            if !jobs.is_empty() {
                st.busy += 1;
            }
            self.metrics.queue_depth(
                &self.labels.model,
                &self.labels.version_text,
                st.queue.len(),
            );
            drop(st);
            if jobs.is_empty() {
                continue;
            }
            let exec = Exec {
                shared: self.shared.clone(),
                model: self.model.clone(),
                labels: self.labels.clone(),
                metrics: self.metrics.clone(),
                stats: self.stats.clone(),
                mergeable: self.mergeable,
                scratches: self.scratches.clone(),
            };
            self.pool.spawn(move || exec.run(jobs));
        }
    }

    /// Takes the next batch: requests in arrival order up to `max_batch` rows (at least one), or
    /// one request when rows must not be merged. Expired and abandoned requests are answered or
    /// dropped here, unexecuted.
    fn take(&self, st: &mut State) -> Vec<Job> {
        let mut jobs = Vec::new();
        let mut rows = 0;
        let now = Instant::now();
        while let Some(job) = st.queue.front() {
            if job.reply.is_closed() {
                st.queue.pop_front();
                continue;
            }
            if let Some((deadline, timeout_us)) = job.deadline
                && deadline <= now
            {
                let job = st.queue.pop_front().expect("front exists");
                let err = ServeError::Timeout {
                    model: self.labels.model.clone(),
                    version: self.labels.version,
                    waited_us: job.enqueued.elapsed().as_micros() as u64,
                    timeout_us,
                };
                let _ = job.reply.send(Err(err));
                continue;
            }
            let n = job.batch.size;
            if !jobs.is_empty() && (!self.mergeable || rows + n > self.limits.max_batch) {
                break;
            }
            rows += n;
            jobs.push(st.queue.pop_front().expect("front exists"));
            if !self.mergeable {
                break;
            }
        }
        jobs
    }
}

/// Forward-pass buffers reused across calls. Not thread-local: a pool thread waiting inside one
/// call's parallel chunks may steal and run another call.
#[derive(Debug, Default)]
struct Scratches(Mutex<Vec<Scratch>>);

impl Scratches {
    fn take(&self) -> Scratch {
        self.0
            .lock()
            .expect("scratch lock")
            .pop()
            .unwrap_or_default()
    }
    fn put(&self, s: Scratch) {
        self.0.lock().expect("scratch lock").push(s);
    }
}

/// One model call on the compute pool.
struct Exec {
    shared: Arc<Shared>,
    model: Arc<Model>,
    labels: Labels,
    metrics: Metrics,
    stats: Arc<VersionStats>,
    mergeable: bool,
    scratches: Arc<Scratches>,
}

impl Exec {
    fn run(self, mut jobs: Vec<Job>) {
        let start = Instant::now();
        let queued: Vec<Duration> = jobs.iter().map(|j| start - j.enqueued).collect();
        let sizes: Vec<usize> = jobs.iter().map(|j| j.batch.size).collect();
        let merged;
        let batch = if self.mergeable && jobs.len() > 1 {
            let parts: Vec<&Batch> = jobs.iter().map(|j| &j.batch).collect();
            let mut b = concat(&parts);
            let rows = canonical_rows(b.size, self.model.chunk_size());
            pad_batch(&mut b, rows);
            merged = b;
            &merged
        } else {
            // One request: run its own batch, padded in place when merging rules need it
            // (the padding rows' scores are never answered), instead of copying it.
            let b = &mut jobs[0].batch;
            if self.mergeable {
                pad_batch(b, canonical_rows(b.size, self.model.chunk_size()));
            }
            &jobs[0].batch
        };
        // Inputs were validated, so the model does not refuse them; a panic would still be
        // answered as an error rather than take the pool down.
        let mut scratch = self.scratches.take();
        let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.model
                .predict_logits(batch, &mut scratch)
                .map(|l| l.to_vec())
        }));
        self.scratches.put(scratch);
        let result = match call {
            Ok(r) => r.map_err(|source| {
                ServeError::model_call(&self.labels.model, self.labels.version, source)
            }),
            Err(_) => Err(ServeError::ComputePanicked {
                model: self.labels.model.clone(),
                version: self.labels.version,
            }),
        };
        let compute = start.elapsed();
        let call_rows = batch.size;
        // Free the slot before answering so the batcher can start the next call.
        {
            let mut st = self.shared.state.lock().expect("batcher lock");
            st.busy -= 1;
        }
        self.shared.wake.notify_all();
        self.metrics.batch(
            &self.labels.model,
            &self.labels.version_text,
            call_rows,
            compute,
            &queued,
        );
        let rows: usize = sizes.iter().sum();
        self.stats.batch(rows, call_rows, compute, &queued);
        match result {
            Ok(logits) => {
                let mut at = 0;
                for ((job, q), n) in jobs.into_iter().zip(queued).zip(sizes) {
                    let l = &logits[at..at + n];
                    at += n;
                    let _ = job.reply.send(Ok(Scores {
                        logits: l.to_vec(),
                        probabilities: l.iter().map(|&x| sigmoid(x)).collect(),
                        queued: q,
                        compute,
                        call_rows,
                    }));
                }
            }
            Err(e) => {
                tracing::error!(model = %self.labels.model, version = self.labels.version, error = %e, "model call failed");
                let reason = e.to_string();
                let tables_down = matches!(
                    e,
                    ServeError::Tables {
                        unavailable: true,
                        ..
                    }
                );
                let mut first = Some(e);
                for job in jobs {
                    let err = first.take().unwrap_or_else(|| {
                        let (model, version) = (self.labels.model.clone(), self.labels.version);
                        if tables_down {
                            // Merged with a request whose rows the store could not deliver.
                            ServeError::Tables {
                                model,
                                version,
                                reason: format!("merged model call failed: {reason}"),
                                unavailable: true,
                            }
                        } else {
                            ServeError::MergedCallFailed {
                                model,
                                version,
                                reason: reason.clone(),
                            }
                        }
                    });
                    let _ = job.reply.send(Err(err));
                }
            }
        }
    }
}
