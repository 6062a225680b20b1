//! Timing and reporting shared by every benchmark family.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};

/// Runs `f` once to warm up, then repeatedly for at least `min_time` and `min_iters` runs, and returns
/// the median wall time of one run in seconds.
pub fn time_median(min_time: Duration, min_iters: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times = Vec::new();
    let end = Instant::now() + min_time;
    while Instant::now() < end || times.len() < min_iters {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Collects benchmark results: JSON lines to a file or stdout, and a table on stdout.
pub struct Reporter {
    json: Option<Box<dyn Write>>,
    filter: Option<String>,
    rows: usize,
}

impl Reporter {
    /// `json`: a file path, `-` for stdout, or none; `filter`: a substring of op names to keep.
    pub fn new(json: Option<&Path>, filter: Option<String>) -> Result<Self> {
        let json: Option<Box<dyn Write>> = match json {
            None => None,
            Some(p) if p.as_os_str() == "-" => Some(Box::new(std::io::stdout())),
            Some(p) => Some(Box::new(BufWriter::new(
                File::create(p).with_context(|| format!("creating {}", p.display()))?,
            ))),
        };
        Ok(Reporter {
            json,
            filter,
            rows: 0,
        })
    }

    /// Whether an op passes the `--filter`.
    pub fn wants(&self, op: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| op.contains(f))
    }

    /// Records one measurement: prints a table row and writes a JSON line.
    pub fn record(
        &mut self,
        isa: &str,
        op: &str,
        shape: Value,
        seconds: f64,
        rate: f64,
        unit: &str,
    ) -> Result<()> {
        self.record_with(isa, op, shape, seconds, rate, unit, Value::Null)
    }

    /// Like [`Reporter::record`], with extra fields merged into the JSON object (e.g. `peak_fraction`).
    #[allow(clippy::too_many_arguments)]
    pub fn record_with(
        &mut self,
        isa: &str,
        op: &str,
        shape: Value,
        seconds: f64,
        rate: f64,
        unit: &str,
        extra: Value,
    ) -> Result<()> {
        if self.rows == 0 {
            println!(
                "{:<32} {:<8} {:<48} {:>12} {:>12} unit",
                "op", "isa", "shape", "median s", "rate"
            );
        }
        self.rows += 1;
        let shape_s = shape_text(&shape);
        let extra_s = match &extra {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| format!(" {k}={}", short(v)))
                .collect::<String>(),
            _ => String::new(),
        };
        println!("{op:<32} {isa:<8} {shape_s:<48} {seconds:>12.3e} {rate:>12.3} {unit}{extra_s}");
        if let Some(w) = self.json.as_mut() {
            let mut obj = json!({
                "impl": "quantrec", "isa": isa, "op": op, "shape": shape,
                "seconds": seconds, "rate": rate, "unit": unit,
            });
            if let (Value::Object(o), Value::Object(e)) = (&mut obj, extra) {
                o.extend(e);
            }
            writeln!(w, "{obj}")?;
        }
        Ok(())
    }

    /// Flushes the JSON output.
    pub fn finish(mut self) -> Result<()> {
        if let Some(w) = self.json.as_mut() {
            w.flush()?;
        }
        Ok(())
    }
}

fn short(v: &Value) -> String {
    match v {
        Value::Number(n) => n
            .as_f64()
            .map_or_else(|| n.to_string(), |f| format!("{f:.3}")),
        other => other.to_string(),
    }
}

fn shape_text(shape: &Value) -> String {
    match shape {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"')))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}
