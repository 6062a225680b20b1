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
//! - `quantrec_monitor_{ne,log_loss,auc,calibration}{model,version,role,scope}` (gauges): the
//!   accuracy monitor's figures on labelled live traffic, `scope` `since_load` or `window`;
//!   `quantrec_monitor_labeled_rows{model,version,role}`.
//! - `quantrec_monitor_shadow_delta_ne_percent{model,version}` and
//!   `quantrec_monitor_shadow_divergence{model,version,stat}` (`mean`, `max`): against the fp32
//!   reference on the same shadowed rows; `quantrec_monitor_alerting{model,version}` 1 while alerting.
//! - `quantrec_feedback_entries_total{model,result,reason}`: feedback entries `accepted` or
//!   `rejected` (with why).
//! - `quantrec_monitor_alerts_total{model,version}`: shadow ΔNE alerts raised.
//! - `quantrec_canary_decisions_total{model,version,decision}`: `promote`, `rollback`.
//! - `quantrec_tables_*{model,version,...}`: versions with tables in a Redis Cluster (cache
//!   lookups, bytes, fetch latency, wire bytes, errors; see `quantrec_tables::metrics`),
//!   registered by [`crate::remote_tables::TablesHub`].
//!
//! The monitor's gauges are refreshed from every model's monitor when `/metrics` is rendered.
//!
//! Requests refused before a version is chosen (unknown model or version, malformed body) carry
//! `version=""`.

use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::monitor::AccuracyReport;

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
    monitor: MonitorMetrics,
}

/// The accuracy monitor's metric families.
#[derive(Clone, Debug)]
struct MonitorMetrics {
    figures: [GaugeVec; 4],
    labeled_rows: GaugeVec,
    shadow_delta: GaugeVec,
    divergence: GaugeVec,
    alerting: GaugeVec,
    feedback: IntCounterVec,
    alerts: IntCounterVec,
    canary: IntCounterVec,
}

/// Names of [`MonitorMetrics::figures`], in order.
const FIGURES: [&str; 4] = ["ne", "log_loss", "auc", "calibration"];

/// The sum of `counters` whose `model` label is `model` and whose label `key` is `value`.
fn count_where(counters: &IntCounterVec, model: &str, (key, value): (&str, &str)) -> u64 {
    counters
        .collect()
        .iter()
        .flat_map(|f| f.get_metric())
        .filter(|m| {
            let has = |k: &str, v: &str| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == k && l.value() == v)
            };
            has("model", model) && has(key, value)
        })
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
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
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let fig = ["model", "version", "role", "scope"];
        let monitor = MonitorMetrics {
            figures: FIGURES.map(|f| {
                gauge(
                    &format!("quantrec_monitor_{f}"),
                    &format!("Live {f} on labelled traffic"),
                    &fig,
                )
            }),
            labeled_rows: gauge(
                "quantrec_monitor_labeled_rows",
                "Labelled rows since load",
                &["model", "version", "role"],
            ),
            shadow_delta: gauge(
                "quantrec_monitor_shadow_delta_ne_percent",
                "Live NE increase (percent) against the fp32 reference on the same shadowed rows",
                &["model", "version"],
            ),
            divergence: gauge(
                "quantrec_monitor_shadow_divergence",
                "Absolute probability difference against the fp32 reference on shadowed rows",
                &["model", "version", "stat"],
            ),
            alerting: gauge(
                "quantrec_monitor_alerting",
                "1 while the version's live ΔNE against the fp32 reference exceeds the budget",
                &["model", "version"],
            ),
            feedback: counter(
                "quantrec_feedback_entries_total",
                "Feedback entries accepted or rejected",
                &["model", "result", "reason"],
            ),
            alerts: counter(
                "quantrec_monitor_alerts_total",
                "Shadow ΔNE alerts raised",
                &["model", "version"],
            ),
            canary: counter(
                "quantrec_canary_decisions_total",
                "Canary promotions and rollbacks",
                &["model", "version", "decision"],
            ),
        };
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
            monitor,
        }
    }

    /// Counts feedback entries: `accepted` of them, and each rejection by reason.
    pub fn feedback(&self, model: &str, accepted: usize, rejected: &[&str]) {
        let f = &self.monitor.feedback;
        if accepted > 0 {
            f.with_label_values(&[model, "accepted", ""])
                .inc_by(accepted as u64);
        }
        for r in rejected {
            f.with_label_values(&[model, "rejected", r]).inc();
        }
    }

    /// Counts a shadow ΔNE alert that started.
    pub fn alert(&self, model: &str, version: &str) {
        self.monitor
            .alerts
            .with_label_values(&[model, version])
            .inc();
    }

    /// Counts a canary decision (`promote` or `rollback`).
    pub fn canary_decision(&self, model: &str, version: &str, decision: &str) {
        self.monitor
            .canary
            .with_label_values(&[model, version, decision])
            .inc();
    }

    /// How many times `decision` was taken about `model`'s canaries.
    pub fn canary_count(&self, model: &str, decision: &str) -> u64 {
        count_where(&self.monitor.canary, model, ("decision", decision))
    }

    /// Replaces the monitor's gauges by the figures of `reports` (one per model).
    pub fn monitor_figures<'a>(
        &self,
        reports: impl IntoIterator<Item = (&'a str, &'a AccuracyReport)>,
    ) {
        let m = &self.monitor;
        for g in
            m.figures
                .iter()
                .chain([&m.labeled_rows, &m.shadow_delta, &m.divergence, &m.alerting])
        {
            g.reset();
        }
        for (model, r) in reports {
            for v in &r.versions {
                let role = v.role.as_str();
                let since = [v.ne, v.log_loss, v.auc, v.calibration];
                let window = [
                    v.window.ne,
                    v.window.log_loss,
                    v.window.auc,
                    v.window.calibration,
                ];
                for (scope, values) in [("since_load", since), ("window", window)] {
                    for (g, x) in m.figures.iter().zip(values) {
                        if let Some(x) = x {
                            g.with_label_values(&[model, &v.version, role, scope])
                                .set(x);
                        }
                    }
                }
                m.labeled_rows
                    .with_label_values(&[model, &v.version, role])
                    .set(v.labeled_rows as f64);
                if let Some(s) = &v.shadow {
                    if let Some(d) = s.delta_ne_percent {
                        m.shadow_delta
                            .with_label_values(&[model, &v.version])
                            .set(d);
                    }
                    if let Some(mean) = s.mean_abs_divergence {
                        m.divergence
                            .with_label_values(&[model, &v.version, "mean"])
                            .set(mean);
                    }
                    m.divergence
                        .with_label_values(&[model, &v.version, "max"])
                        .set(s.max_abs_divergence);
                    m.alerting
                        .with_label_values(&[model, &v.version])
                        .set(f64::from(u8::from(v.alert.is_some())));
                }
            }
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
        count_where(&self.events, model, ("event", event))
    }

    /// The registry every family is in (for collectors of other crates, e.g. the remote
    /// tables' `quantrec_tables_*`).
    pub fn registry(&self) -> &Registry {
        &self.registry
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
