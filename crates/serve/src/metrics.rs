//! Prometheus metrics of the server (served as text on the HTTP port's `/metrics`).
//!
//! - `quantrec_requests_total{model,version,protocol,code}`: every answered inference request;
//!   `code` is the HTTP status (`200`, `400`, `503`, ...) or the gRPC code name (`OK`,
//!   `INVALID_ARGUMENT`, ...).
//! - `quantrec_request_failures_total{model,version,protocol,code}`: the unsuccessful ones.
//! - `quantrec_request_seconds{model,version,protocol}`: total latency inside the server.
//! - `quantrec_queue_seconds{model,version}`: time from enqueue to the start of the model call.
//! - `quantrec_compute_seconds{model,version}`: duration of each model call.
//! - `quantrec_batch_rows{model,version}`: rows per model call (after merging).
//! - `quantrec_queue_depth{model,version}`: requests waiting.
//! - `quantrec_model_events_total{model,version,event}`: `load`, `unload`, `failed_load`.
//!
//! Requests refused before a version is chosen (unknown model or version, malformed body) carry
//! `version=""`.

use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The server's metric families, registered in their own registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    failures: IntCounterVec,
    total: HistogramVec,
    queue: HistogramVec,
    compute: HistogramVec,
    batch_rows: HistogramVec,
    depth: IntGaugeVec,
    events: IntCounterVec,
}

/// Latency buckets from 50 µs to 5 s.
fn latency_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(50e-6, 2.0, 17).expect("valid buckets")
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Fresh metrics, all zero.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: Vec<f64>| {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
                .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let mvp = ["model", "version", "protocol", "code"];
        let requests = counter(
            "quantrec_requests_total",
            "Inference requests answered",
            &mvp,
        );
        let failures = counter(
            "quantrec_request_failures_total",
            "Inference requests answered with an error",
            &mvp,
        );
        let total = histogram(
            "quantrec_request_seconds",
            "Request latency inside the server",
            &["model", "version", "protocol"],
            latency_buckets(),
        );
        let queue = histogram(
            "quantrec_queue_seconds",
            "Time from enqueue to the start of the model call",
            &["model", "version"],
            latency_buckets(),
        );
        let compute = histogram(
            "quantrec_compute_seconds",
            "Duration of one model call",
            &["model", "version"],
            latency_buckets(),
        );
        let batch_rows = histogram(
            "quantrec_batch_rows",
            "Rows per model call after merging",
            &["model", "version"],
            prometheus::exponential_buckets(1.0, 2.0, 14).expect("valid buckets"),
        );
        let depth = IntGaugeVec::new(
            Opts::new("quantrec_queue_depth", "Requests waiting"),
            &["model", "version"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(depth.clone()))
            .expect("unique metric");
        let events = counter(
            "quantrec_model_events_total",
            "Model version loads, unloads and refused loads",
            &["model", "version", "event"],
        );
        Metrics {
            registry,
            requests,
            failures,
            total,
            queue,
            compute,
            batch_rows,
            depth,
            events,
        }
    }

    /// Records an answered request.
    pub fn request(
        &self,
        model: &str,
        version: &str,
        protocol: &str,
        code: &str,
        ok: bool,
        t: Duration,
    ) {
        let labels = [model, version, protocol, code];
        self.requests.with_label_values(&labels).inc();
        if !ok {
            self.failures.with_label_values(&labels).inc();
        }
        self.total
            .with_label_values(&[model, version, protocol])
            .observe(t.as_secs_f64());
    }

    /// Records one model call and the queue times of the requests it served.
    pub fn batch(
        &self,
        model: &str,
        version: &str,
        rows: usize,
        compute: Duration,
        queued: &[Duration],
    ) {
        let l = [model, version];
        self.batch_rows.with_label_values(&l).observe(rows as f64);
        self.compute
            .with_label_values(&l)
            .observe(compute.as_secs_f64());
        let q = self.queue.with_label_values(&l);
        for d in queued {
            q.observe(d.as_secs_f64());
        }
    }

    /// Sets the number of waiting requests.
    pub fn queue_depth(&self, model: &str, version: &str, depth: usize) {
        self.depth
            .with_label_values(&[model, version])
            .set(depth as i64);
    }

    /// Records a model event (`load`, `unload`, `failed_load`).
    pub fn event(&self, model: &str, version: &str, event: &str) {
        self.events
            .with_label_values(&[model, version, event])
            .inc();
    }

    /// How many times `event` happened to `model` (any version).
    pub fn event_count(&self, model: &str, event: &str) -> u64 {
        self.events
            .collect()
            .iter()
            .flat_map(|f| f.get_metric())
            .filter(|m| {
                let has = |k: &str, v: &str| {
                    m.get_label()
                        .iter()
                        .any(|l| l.name() == k && l.value() == v)
                };
                has("model", model) && has("event", event)
            })
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}
