//! The demo's online day, after the offline stages of [`quantrec_quant::demo`]: a real server on
//! 127.0.0.1 serves the day-1 quantized model (with its fp32 model as the shadow reference);
//! held-out rows are replayed as KServe v2 requests with ids and their click labels fed back, and
//! the monitor's live NE is shown to equal the offline NE of the same rows; then the refreshed
//! day-2 model is launched as a canary on drifted day-2 traffic and promoted (or rolled back) by
//! the monitor's verdict, without a failed request.
//!
//! [`run_online`] adds an [`OnlineDay`] to the demo report (Markdown section and `online` JSON).

mod report;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quantrec_data::metrics::MetricsAccumulator;
use quantrec_data::{Batch, batch_ops};
use quantrec_model::{Model, Scratch};
use quantrec_quant::demo::{DemoEvent, DemoOutcome, Story};
use serde_json::{Value, json};

use crate::client::{FeedbackEntry, HttpClient, InferOptions};
use crate::config::CanaryConfig;
use crate::repository::ARTIFACT;
use crate::server::{ServeOptions, Server};
use crate::{Result, ServeError};

pub use report::{CanaryDay, OnlineDay};

/// The model's name in the demo's repository.
pub const MODEL: &str = "dlrm";
/// Rows per replayed request (one ranking request's candidates).
pub const ROWS_PER_REQUEST: usize = 256;
/// Requests in flight at once during a replay.
const CONCURRENCY: usize = 4;
/// Longest wait for the server to count labels or act on a verdict.
const WAIT: Duration = Duration::from_secs(60);

fn demo_err(step: &str, reason: impl ToString) -> ServeError {
    ServeError::Demo {
        step: step.into(),
        reason: reason.to_string(),
    }
}

/// The held-out rows cut into requests of [`ROWS_PER_REQUEST`] rows (labels kept), at most
/// `max_rows` rows.
fn requests_of(batches: &[Batch], max_rows: usize) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut rows = 0;
    for b in batches {
        let mut at = 0;
        while at < b.size && rows < max_rows {
            let n = ROWS_PER_REQUEST.min(b.size - at).min(max_rows - rows);
            out.push(batch_ops::slice(b, at, at + n));
            at += n;
            rows += n;
        }
    }
    out
}

/// What a replay did.
#[derive(Debug, Default)]
struct Replayed {
    requests: usize,
    rows: usize,
    failed: usize,
    /// Requests answered by each version.
    by_version: std::collections::BTreeMap<String, usize>,
}

/// Sends every request with an id (`prefix-k`) and, as soon as it is answered, its labels.
async fn replay(client: &HttpClient, requests: &[Batch], prefix: &str) -> Replayed {
    let mut tasks = tokio::task::JoinSet::new();
    let shared: Arc<Vec<Batch>> = Arc::new(requests.to_vec());
    for lane in 0..CONCURRENCY {
        let (client, shared, prefix) = (client.clone(), shared.clone(), prefix.to_string());
        tasks.spawn(async move {
            let mut r = Replayed::default();
            for k in (lane..shared.len()).step_by(CONCURRENCY) {
                let b = &shared[k];
                let id = format!("{prefix}-{k}");
                let opts = InferOptions {
                    id: Some(id.clone()),
                    version: None,
                    binary: true,
                };
                r.requests += 1;
                r.rows += b.size;
                let answer = match client.infer(MODEL, b, &opts).await {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "demo request failed");
                        r.failed += 1;
                        continue;
                    }
                };
                *r.by_version.entry(answer.model_version).or_insert(0) += 1;
                let labels = b.labels.clone().unwrap_or_default();
                match client
                    .feedback(MODEL, &[FeedbackEntry { id, labels }])
                    .await
                {
                    Ok(f) if f.accepted == 1 => {}
                    other => {
                        tracing::warn!(answer = ?other, "demo feedback not accepted");
                        r.failed += 1;
                    }
                }
            }
            r
        });
    }
    let mut total = Replayed::default();
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap_or_else(|_| Replayed {
            failed: 1,
            ..Replayed::default()
        });
        total.requests += r.requests;
        total.rows += r.rows;
        total.failed += r.failed;
        for (v, n) in r.by_version {
            *total.by_version.entry(v).or_insert(0) += n;
        }
    }
    total
}

/// Polls the accuracy report until `ready` accepts it.
async fn wait_report(
    client: &HttpClient,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let t0 = Instant::now();
    loop {
        let acc = client.accuracy(MODEL).await?;
        if ready(&acc) {
            return Ok(acc);
        }
        if t0.elapsed() > WAIT {
            return Err(demo_err(
                what,
                format!("not reached within {WAIT:?}: {acc}"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The report of `version` in an accuracy answer.
fn version_of<'a>(acc: &'a Value, version: &str) -> Option<&'a Value> {
    acc["versions"]
        .as_array()?
        .iter()
        .find(|v| v["version"] == version)
}

/// Offline NE, log loss, AUC and calibration of `model` on `requests`: the evaluation
/// accumulators over `Model::predict` of each request exactly as it was sent.
fn offline(model: &Model, requests: &[Batch]) -> Result<quantrec_data::metrics::Metrics> {
    let mut acc = MetricsAccumulator::with_auc();
    let mut scratch = Scratch::new();
    for b in requests {
        let p = model
            .predict(b, &mut scratch)
            .map_err(|e| demo_err("offline predictions", e))?;
        acc.extend(p, b.labels.as_deref().unwrap_or(&[]))
            .map_err(|e| demo_err("offline metrics", e))?;
    }
    Ok(acc.metrics())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| demo_err(&format!("writing {}", path.display()), e))
}

/// `DIR/dlrm/<version>/model.safetensors` as a copy of `artifact`.
fn add_version(models: &Path, version: u64, artifact: &Path) -> Result<()> {
    let d = models.join(MODEL).join(version.to_string());
    std::fs::create_dir_all(&d).map_err(|e| demo_err("creating the model repository", e))?;
    std::fs::copy(artifact, d.join(ARTIFACT))
        .map(|_| ())
        .map_err(|e| demo_err(&format!("copying {}", artifact.display()), e))
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Runs the online day on what the offline stages left, adds its section to `outcome.report`
/// (Markdown and the `online` JSON key) and returns it. The story goes to `on_event`.
pub fn run_online(
    outcome: &mut DemoOutcome,
    on_event: &mut dyn FnMut(DemoEvent<'_>),
) -> Result<OnlineDay> {
    let t0 = Instant::now();
    let mut story = Story::new(on_event);
    story.stage("online day: serve, replay with labels, canary launch");
    let out_dir = outcome
        .quantized_path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let models = out_dir.join("online-models");
    let _ = std::fs::remove_dir_all(&models);
    add_version(&models, 1, &outcome.quantized_path)?;
    let config_path = models.join(MODEL).join("config.json");
    let shadow = json!({"reference": absolute(&outcome.f32_path), "fraction": 1.0});
    write(
        &config_path,
        json!({"monitor": {"min_alert_rows": 5000, "shadow": shadow}})
            .to_string()
            .as_bytes(),
    )?;
    let mut opts = ServeOptions::new(models.clone());
    opts.http_port = 0;
    opts.grpc_port = None;
    let server = Server::start(opts)?;
    let url = format!("http://{}", server.http_addr);
    story.line(format!(
        "quantrec serve on {url}: model {MODEL} version 1 = the day-1 quantized artifact; fp32 shadow: {}",
        outcome.f32_path.display()
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| demo_err("starting the client runtime", e))?;
    let client = HttpClient::new(&url)?.with_timeout(Duration::from_secs(30));
    let quick = outcome.report.quick;
    let day1_rows = if quick { 50_000 } else { 100_000 };
    let day1 = requests_of(&outcome.eval.batches, day1_rows);
    let served = rt.block_on(replay(&client, &day1, "day1"));
    let rows = served.rows as u64;
    let acc = rt.block_on(wait_report(&client, "counting the day-1 labels", |a| {
        version_of(a, "1").is_some_and(|v| v["labeled_rows"] == rows)
    }))?;
    let offline_m = offline(&outcome.quantized.model, &day1)?;
    let mut online = OnlineDay::from_day1(
        &url,
        served.requests,
        served.rows,
        served.failed,
        &acc,
        &offline_m,
        outcome.report.delta_ne_pct,
    );
    for line in online.day1_lines() {
        story.line(line);
    }
    online.canary = match (&outcome.day2_path, &outcome.day2_eval) {
        (Some(path), Some(eval)) => Some(canary_day(
            &rt,
            &client,
            &server,
            &models,
            path,
            &requests_of(&eval.batches, day1_rows),
            quick,
        )?),
        _ => {
            story.line("canary launch skipped: no refreshed day-2 model (day 2 needs synthetic data and a passing refresh)");
            None
        }
    };
    if let Some(c) = &online.canary {
        for line in c.lines() {
            story.line(line);
        }
    }
    drop(client);
    server.shutdown()?;
    online.seconds = t0.elapsed().as_secs_f64();
    outcome.report.sections.push(online.section());
    let v = serde_json::to_value(&online).map_err(|e| demo_err("encoding the online report", e))?;
    outcome.report.extra.insert("online".into(), v);
    Ok(online)
}

/// Launches the refreshed day-2 model as a canary and replays day-2 traffic until the verdict is
/// acted on.
fn canary_day(
    rt: &tokio::runtime::Runtime,
    client: &HttpClient,
    server: &Server,
    models: &Path,
    day2_artifact: &Path,
    requests: &[Batch],
    quick: bool,
) -> Result<CanaryDay> {
    add_version(models, 2, day2_artifact)?;
    // The fp32 reference is day 1's: day 2 is judged against the serving version instead.
    write(
        &models.join(MODEL).join("config.json"),
        json!({"monitor": {}}).to_string().as_bytes(),
    )?;
    let launch = CanaryConfig {
        version: 2,
        fraction: 0.5,
        min_labels: if quick { 10_000 } else { 20_000 },
        max_delta_ne_percent: None,
        min_auc_ratio: None,
    };
    server
        .state
        .repo
        .load_with_canary(MODEL, Some(launch.clone()))?;
    let policy = server
        .state
        .repo
        .model(MODEL)?
        .serving()
        .canary
        .as_ref()
        .map(|c| c.policy)
        .ok_or_else(|| demo_err("launching the canary", "the canary did not start"))?;
    let served = rt.block_on(replay(client, requests, "day2"));
    let verdict = rt.block_on(wait_report(client, "the canary verdict", |a| {
        a["launches"].as_array().is_some_and(|l| !l.is_empty())
    }))?;
    let promoted = verdict["launches"][0]["decision"] == "promote";
    let want = if promoted { "2" } else { "1" };
    let t0 = Instant::now();
    let serving_after = loop {
        let versions: Vec<String> = server
            .state
            .repo
            .model(MODEL)?
            .serving()
            .versions
            .keys()
            .map(u64::to_string)
            .collect();
        if versions == [want] || t0.elapsed() > WAIT {
            break versions;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let acc = rt.block_on(client.accuracy(MODEL))?;
    Ok(CanaryDay::from_report(
        &launch,
        &policy,
        served.requests,
        served.rows,
        served.failed,
        served.by_version,
        &acc,
        serving_after,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_rows_are_cut_into_requests_with_their_labels() {
        let config = quantrec_data::synth::SynthConfig::default();
        let g = quantrec_data::synth::Generator::new(config).unwrap();
        use quantrec_data::source::BatchSource;
        let mut stream = g.stream(quantrec_data::synth::Split::Evaluation, 700, 300);
        let mut batches = Vec::new();
        while let Some(b) = stream.next_batch().unwrap() {
            batches.push(b);
        }
        let reqs = requests_of(&batches, 650);
        let sizes: Vec<usize> = reqs.iter().map(|b| b.size).collect();
        assert_eq!(sizes, [256, 44, 256, 44, 50]);
        assert!(
            reqs.iter()
                .all(|b| b.labels.as_ref().unwrap().len() == b.size)
        );
        assert_eq!(
            reqs[1].labels.as_deref(),
            Some(&batches[0].labels.as_ref().unwrap()[256..300])
        );
    }
}
