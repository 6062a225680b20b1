//! What a load run measured: counts, achieved rates, latency quantiles from an HDR histogram, and
//! errors by kind. Printed as text ([`std::fmt::Display`]) or one JSON object (`Serialize`).

use std::collections::BTreeMap;
use std::fmt;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::ServeError;

/// Highest latency the histograms track, in microseconds (larger values are clamped to it and
/// still counted; the report's `max_ms` then reads this bound).
pub const MAX_TRACKED_US: u64 = 600_000_000;

/// A latency histogram in microseconds (3 significant digits, 1 µs to 10 minutes).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).expect("static histogram bounds are valid")
}

/// Quantiles of a latency distribution, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Quantiles {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest value.
    pub max_ms: f64,
}

impl Quantiles {
    /// The quantiles of `h` (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Quantiles {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Quantiles {
                count: 0,
                mean_ms: 0.0,
                p50_ms: 0.0,
                p90_ms: 0.0,
                p99_ms: 0.0,
                p999_ms: 0.0,
                max_ms: 0.0,
            };
        }
        Quantiles {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// The error kind a failed request is counted under: `http <status>`, `grpc <Code>`, `timeout`,
/// `connect`, `transport`, `bad response`, or `client` (a request the client refused to build).
pub fn error_kind(e: &ServeError) -> String {
    match e {
        ServeError::HttpStatus { status, .. } => format!("http {status}"),
        ServeError::GrpcStatus { code, .. } => format!("grpc {code:?}"),
        ServeError::ClientTimeout { .. } => "timeout".into(),
        ServeError::Connect { .. } => "connect".into(),
        ServeError::Transport { .. } => "transport".into(),
        ServeError::BadResponse { .. } => "bad response".into(),
        _ => "client".into(),
    }
}

/// The result of one load run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadReport {
    /// `http-json`, `http-binary` or `grpc`.
    pub protocol: String,
    /// The server.
    pub url: String,
    /// The model.
    pub model: String,
    /// Rows per request.
    pub candidates: usize,
    /// Offered (Poisson) rate, requests per second.
    pub offered_rate: f64,
    /// The schedule's length, seconds.
    pub duration_s: f64,
    /// In-flight limit (requests waiting for it still count from their scheduled time).
    pub concurrency_limit: usize,
    /// Requests on the timeline.
    pub scheduled: u64,
    /// Requests sent.
    pub sent: u64,
    /// Requests never sent: still waiting for an in-flight slot when the schedule ended.
    pub unsent: u64,
    /// Requests answered successfully.
    pub ok: u64,
    /// Failed requests by kind ([`error_kind`]).
    pub errors: BTreeMap<String, u64>,
    /// The first error's message, if any.
    pub first_error: Option<String>,
    /// From the start to the last answer, seconds.
    pub elapsed_s: f64,
    /// Successful requests per second of `elapsed_s`.
    pub achieved_qps: f64,
    /// Scored rows per second of `elapsed_s`.
    pub rows_per_s: f64,
    /// Latency of successful requests, from their scheduled send time to the answer.
    pub latency: Quantiles,
    /// How late requests left compared with their schedule (the generator's own lag; included
    /// in `latency`).
    pub send_lag: Quantiles,
    /// Most requests in flight at once.
    pub max_in_flight: usize,
}

impl LoadReport {
    /// All failed requests.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "loadgen {} {} model {}: {} candidates/request, Poisson {:.1} req/s for {:.1} s (in-flight limit {})",
            self.protocol,
            self.url,
            self.model,
            self.candidates,
            self.offered_rate,
            self.duration_s,
            self.concurrency_limit
        )?;
        writeln!(
            f,
            "  requests   scheduled {}  sent {}  unsent {}  ok {}  errors {}  (max in flight {})",
            self.scheduled,
            self.sent,
            self.unsent,
            self.ok,
            self.error_count(),
            self.max_in_flight
        )?;
        writeln!(
            f,
            "  achieved   {:.1} req/s  {:.0} rows/s  over {:.2} s",
            self.achieved_qps, self.rows_per_s, self.elapsed_s
        )?;
        let q = &self.latency;
        writeln!(
            f,
            "  latency ms p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}",
            q.p50_ms, q.p90_ms, q.p99_ms, q.p999_ms, q.max_ms, q.mean_ms
        )?;
        let l = &self.send_lag;
        write!(
            f,
            "  send lag ms p50 {:.3}  p99 {:.3}  max {:.3}",
            l.p50_ms, l.p99_ms, l.max_ms
        )?;
        for (k, n) in &self.errors {
            write!(f, "\n  error      {k}: {n}")?;
        }
        if let Some(e) = &self.first_error {
            write!(f, "\n  first error: {e}")?;
        }
        Ok(())
    }
}

/// The result of a search for the largest rate that meets a p99 target.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MaxRateReport {
    /// The p99 target, milliseconds.
    pub p99_target_ms: f64,
    /// The largest rate tried that met it (p99 within the target, no errors, nothing unsent).
    pub max_rate: Option<f64>,
    /// The run at that rate.
    pub best: Option<LoadReport>,
    /// Every trial, in order: (rate, met the target, p99 ms, errors).
    pub trials: Vec<Trial>,
}

/// One trial of a max-rate search.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trial {
    /// Offered rate.
    pub rate: f64,
    /// Whether it met the target.
    pub passed: bool,
    /// Its p99, milliseconds.
    pub p99_ms: f64,
    /// Its achieved rate.
    pub achieved_qps: f64,
    /// Its failed plus unsent requests.
    pub failed: u64,
    /// Whether it re-ran a rate whose first trial missed the target (see
    /// [`super::find_max_rate`]).
    pub retry: bool,
}

impl fmt::Display for MaxRateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.trials {
            writeln!(
                f,
                "trial {:>9.1} req/s: p99 {:>9.3} ms, achieved {:>9.1} req/s, failed {} -> {}{}",
                t.rate,
                t.p99_ms,
                t.achieved_qps,
                t.failed,
                if t.passed { "ok" } else { "over" },
                if t.retry { " (retry)" } else { "" }
            )?;
        }
        match (&self.max_rate, &self.best) {
            (Some(r), Some(b)) => write!(
                f,
                "largest rate with p99 <= {} ms: {r:.1} req/s ({:.0} rows/s)\n{b}",
                self.p99_target_ms, b.rows_per_s
            ),
            _ => write!(
                f,
                "no rate tried met p99 <= {} ms without errors",
                self.p99_target_ms
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn errors_are_counted_by_kind() {
        let url = String::from("http://x");
        let cases = [
            (
                ServeError::HttpStatus {
                    url: url.clone(),
                    status: 503,
                    message: String::new(),
                },
                "http 503",
            ),
            (
                ServeError::GrpcStatus {
                    code: tonic::Code::ResourceExhausted,
                    message: String::new(),
                },
                "grpc ResourceExhausted",
            ),
            (
                ServeError::ClientTimeout {
                    url: url.clone(),
                    after: Duration::from_secs(1),
                },
                "timeout",
            ),
            (
                ServeError::Connect {
                    url,
                    reason: String::new(),
                },
                "connect",
            ),
        ];
        for (e, kind) in cases {
            assert_eq!(error_kind(&e), kind);
        }
    }

    #[test]
    fn quantiles_read_the_histogram_in_milliseconds() {
        let mut h = histogram();
        for us in 1..=1000u64 {
            h.record(us * 10).unwrap();
        }
        let q = Quantiles::of(&h);
        assert_eq!(q.count, 1000);
        assert!((q.p50_ms - 5.0).abs() < 0.01, "{q:?}");
        assert!((q.p99_ms - 9.9).abs() < 0.01, "{q:?}");
        assert!((q.max_ms - 10.0).abs() < 0.01, "{q:?}");
        assert_eq!(Quantiles::of(&histogram()).count, 0);
    }
}
