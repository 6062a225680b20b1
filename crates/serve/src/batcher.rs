//! The dynamic batcher of one model version and the compute pool it runs on.
//!
//! Requests wait in a bounded queue (full: refused at once). A request that completes a batch
//! (`max_batch` rows waiting) while a pool thread is free starts its model call at once, from the
//! submitting thread; a call that ends takes the next ready batch on its own pool thread; a timer
//! thread per version starts a partial batch once its first request has waited `max_delay`. Model
//! calls run on the compute pool (never the tokio I/O runtime): a call with nothing else running
//! or waiting may use every pool thread, otherwise each call keeps to one. Requests whose
//! deadline has passed, or whose caller has gone, are answered or dropped without being computed.
//! A version whose rows are not independent of each other ([`crate::validate`]) runs every request
//! alone, exactly as sent.
//!
//! The timer thread ends when its [`Batcher`] is dropped, after running what is queued: a
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
    /// Rows of the queued requests.
    rows: usize,
    /// Model calls running (at most one per pool thread).
    busy: usize,
    closed: bool,
}

/// A batch taken from the queue: the requests of one model call and how many pool threads it
/// may use.
struct Call {
    jobs: Vec<Job>,
    threads: usize,
}

/// What the submitters, the timer thread and the running calls of one version share.
#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    /// Wakes the timer thread.
    wake: Condvar,
    model: Arc<Model>,
    pool: Arc<ComputePool>,
    limits: Limits,
    mergeable: bool,
    /// Model calls that may run at once: the pool's threads.
    slots: usize,
    labels: Labels,
    metrics: Metrics,
    stats: Arc<VersionStats>,
    scratches: Scratches,
}

/// The queue of one model version and its dispatch: a request that completes a batch while a
/// pool thread is free starts its model call at once, from the submitting thread; a call that
/// ends takes the next ready batch on the same pool thread (no hand-off while the server is
/// saturated); a timer thread starts a partial batch when its first request has waited
/// `max_delay`.
#[derive(Debug)]
pub struct Batcher {
    inner: Arc<Inner>,
}

impl Batcher {
    /// Starts the batcher (and its timer thread) of a version.
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
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            slots: pool.threads().max(1),
            model,
            pool,
            limits,
            mergeable,
            labels: labels.clone(),
            metrics,
            stats,
            scratches: Scratches::default(),
        });
        let timer = inner.clone();
        std::thread::Builder::new()
            .name(format!("batcher-{}-{}", labels.model, labels.version))
            .spawn(move || timer.run_timer())?;
        Ok(Batcher { inner })
    }

    /// Queues a request, or refuses it at once when the queue is full. When it makes a batch
    /// ready and a pool thread is free, its model call starts now.
    pub fn submit(&self, job: Job) -> Result<()> {
        let inner = &self.inner;
        let mut st = inner.lock();
        if st.closed {
            return Err(ServeError::Unavailable {
                model: inner.labels.model.clone(),
                version: inner.labels.version,
            });
        }
        if st.queue.len() >= inner.limits.queue {
            return Err(ServeError::QueueFull {
                model: inner.labels.model.clone(),
                version: inner.labels.version,
                capacity: inner.limits.queue,
            });
        }
        st.rows += job.batch.size;
        st.queue.push_back(job);
        let call = inner.take_ready(&mut st);
        // The timer must start timing a partial batch that a free thread is waiting for.
        let wake_timer = call.is_none() && st.queue.len() == 1 && st.busy < inner.slots;
        inner.report_depth(&st);
        drop(st);
        if let Some(call) = call {
            inner.start(call);
        } else if wake_timer {
            inner.wake.notify_all();
        }
        Ok(())
    }

    /// Requests waiting.
    pub fn depth(&self) -> usize {
        self.inner.lock().queue.len()
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.inner.lock().closed = true;
        self.inner.wake.notify_all();
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while the lock is held, so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn report_depth(&self, st: &State) {
        self.metrics.queue_depth(
            &self.labels.model,
            &self.labels.version_text,
            st.queue.len(),
        );
    }

    /// Whether the queue holds a batch to start now: a free slot and a first request that is
    /// alone by nature (rows not mergeable), completes `max_batch` rows, has waited `max_delay`,
    /// or must go because the version is closing.
    fn ready(&self, st: &State) -> bool {
        if st.busy >= self.slots {
            return false;
        }
        let Some(first) = st.queue.front() else {
            return false;
        };
        !self.mergeable
            || st.closed
            || st.rows >= self.limits.max_batch
            || first.enqueued.elapsed() >= self.limits.max_delay
    }

    /// Takes the next batch when one is ready, claiming a slot for it.
    fn take_ready(self: &Arc<Self>, st: &mut State) -> Option<Call> {
        if !self.ready(st) {
            return None;
        }
        let jobs = self.take(st);
        if jobs.is_empty() {
            return None;
        }
        // A call with nothing else running or waiting may spread over every pool thread (the
        // lowest latency); otherwise each call keeps to one thread, which does more rows per
        // second than splitting every call.
        let threads = if st.busy == 0 && st.queue.is_empty() {
            self.slots
        } else {
            1
        };
        st.busy += 1;
        Some(Call { jobs, threads })
    }

    /// Takes the next batch: requests in arrival order up to `max_batch` rows (at least one), or
    /// one request when rows must not be merged. Expired and abandoned requests are answered or
    /// dropped here, unexecuted.
    fn take(&self, st: &mut State) -> Vec<Job> {
        let mut jobs = Vec::new();
        let mut rows = 0;
        let now = Instant::now();
        while let Some(job) = st.queue.front() {
            let n = job.batch.size;
            if job.reply.is_closed() {
                st.queue.pop_front();
                st.rows -= n;
                continue;
            }
            if let Some((deadline, timeout_us)) = job.deadline
                && deadline <= now
            {
                let job = st.queue.pop_front().expect("front exists");
                st.rows -= n;
                let err = ServeError::Timeout {
                    model: self.labels.model.clone(),
                    version: self.labels.version,
                    waited_us: job.enqueued.elapsed().as_micros() as u64,
                    timeout_us,
                };
                let _ = job.reply.send(Err(err));
                continue;
            }
            if !jobs.is_empty() && (!self.mergeable || rows + n > self.limits.max_batch) {
                break;
            }
            rows += n;
            st.rows -= n;
            jobs.push(st.queue.pop_front().expect("front exists"));
            if !self.mergeable {
                break;
            }
        }
        jobs
    }

    /// Runs `call` on the pool; when it ends, the same pool thread runs the next ready batch.
    fn start(self: &Arc<Self>, call: Call) {
        let inner = self.clone();
        self.pool.spawn(move || {
            let mut call = call;
            loop {
                inner.execute(call);
                let mut st = inner.lock();
                st.busy -= 1;
                let next = inner.take_ready(&mut st);
                // A partial batch now has a free thread: the timer times it (or, closing and
                // drained, ends).
                let wake_timer = next.is_none() && (!st.queue.is_empty() || st.closed);
                if next.is_some() {
                    inner.report_depth(&st);
                }
                drop(st);
                match next {
                    Some(n) => call = n,
                    None => {
                        if wake_timer {
                            inner.wake.notify_all();
                        }
                        return;
                    }
                }
            }
        });
    }

    /// The timer thread: starts partial batches once their first request has waited
    /// `max_delay` (and whatever submitters and ending calls left ready), until the version is
    /// closed and its queue is empty.
    fn run_timer(self: Arc<Self>) {
        let mut st = self.lock();
        loop {
            if let Some(call) = self.take_ready(&mut st) {
                self.report_depth(&st);
                drop(st);
                self.start(call);
                st = self.lock();
                continue;
            }
            if st.closed && st.queue.is_empty() {
                return;
            }
            st = match st.queue.front() {
                // A partial batch with a free slot: wait out its delay (or an earlier wake-up).
                Some(first) if st.busy < self.slots => {
                    let left = self
                        .limits
                        .max_delay
                        .saturating_sub(first.enqueued.elapsed());
                    self.wake
                        .wait_timeout(st, left.max(Duration::from_micros(1)))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                // Nothing queued, or every slot busy (ending calls take the next batch).
                _ => self.wake.wait(st).unwrap_or_else(|e| e.into_inner()),
            };
        }
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

impl Inner {
    /// Runs one model call and answers its requests.
    fn execute(&self, call: Call) {
        let Call { mut jobs, threads } = call;
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
                .predict_logits_threads(batch, &mut scratch, threads)
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
