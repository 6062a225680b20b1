//! The online day's figures: JSON (the demo report's `online` key), the printed story and the
//! Markdown section.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use quantrec_data::metrics::Metrics;
use quantrec_quant::demo::ReportSection;
use serde::Serialize;
use serde_json::Value;

use crate::config::CanaryConfig;
use crate::monitor::CanaryPolicy;

/// Day 1 online: the quantized model served, held-out rows replayed with labels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OnlineDay {
    /// Where the server listened.
    pub url: String,
    /// Requests replayed (each with an id, its labels fed back once answered).
    pub requests: usize,
    /// Rows replayed.
    pub rows: usize,
    /// Rows per request.
    pub rows_per_request: usize,
    /// Requests or feedback calls that failed.
    pub failed: usize,
    /// Labelled rows the monitor counted.
    pub labeled_rows: u64,
    /// Live NE from the fed-back labels.
    pub live_ne: Option<f64>,
    /// Offline NE of the same rows (the evaluation accumulators over `Model::predict`).
    pub offline_ne: Option<f64>,
    /// |live − offline|.
    pub ne_difference: Option<f64>,
    /// Live AUC.
    pub live_auc: Option<f64>,
    /// Offline AUC of the same rows.
    pub offline_auc: Option<f64>,
    /// Live calibration (mean prediction / CTR).
    pub live_calibration: Option<f64>,
    /// Rows also scored by the fp32 shadow and labelled.
    pub shadow_rows: u64,
    /// Live ΔNE (%) against the fp32 shadow on those rows.
    pub shadow_delta_ne_pct: Option<f64>,
    /// Offline ΔNE (%) at quantization time (all evaluation rows).
    pub offline_delta_ne_pct: f64,
    /// Mean |p − p_fp32| on shadowed rows.
    pub shadow_mean_abs_divergence: Option<f64>,
    /// The ΔNE budget (%) the alert checks against (the artifact's provenance).
    pub budget_ne_pct: Option<f64>,
    /// The monitor's alert, if it raised one.
    pub alert: Option<String>,
    /// The canary launch of the refreshed day-2 model.
    pub canary: Option<CanaryDay>,
    /// Seconds the online day took.
    pub seconds: f64,
}

/// Day 2 online: the refreshed model launched as a canary on drifted traffic.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CanaryDay {
    /// The canary's version.
    pub version: String,
    /// Fraction of the traffic it answered.
    pub fraction: f64,
    /// Labelled canary rows before the decision.
    pub min_labels: u64,
    /// Largest ΔNE (%) against the serving version that promotes.
    pub max_delta_ne_pct: f64,
    /// Day-2 requests replayed.
    pub requests: usize,
    /// Day-2 rows replayed.
    pub rows: usize,
    /// Failed requests or feedback calls.
    pub failed: usize,
    /// Requests answered by each version.
    pub answered_by: BTreeMap<String, usize>,
    /// `promote` or `rollback`.
    pub decision: String,
    /// The canary's live ΔNE (%) against the serving version on the same rows.
    pub delta_ne_pct: Option<f64>,
    /// Labelled rows the decision rests on.
    pub decided_on_rows: u64,
    /// Why it was rolled back.
    pub reason: Option<String>,
    /// Live NE of the canary on its rows.
    pub canary_ne: Option<f64>,
    /// Live NE of the serving version on the same rows.
    pub serving_ne: Option<f64>,
    /// Versions serving afterwards.
    pub serving_after: Vec<String>,
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn version<'a>(acc: &'a Value, v: &str) -> Option<&'a Value> {
    super::version_of(acc, v)
}

fn fmt5(x: Option<f64>) -> String {
    x.map_or("undefined".into(), |x| format!("{x:.5}"))
}

fn pct(x: Option<f64>) -> String {
    x.map_or("undefined".into(), |x| format!("{x:+.4}%"))
}

impl OnlineDay {
    /// The day-1 figures from the accuracy report `acc` and the offline metrics of the same rows.
    pub fn from_day1(
        url: &str,
        requests: usize,
        rows: usize,
        failed: usize,
        acc: &Value,
        offline: &Metrics,
        offline_delta_ne_pct: f64,
    ) -> OnlineDay {
        let null = Value::Null;
        let v = version(acc, "1").unwrap_or(&null);
        let s = &v["shadow"];
        let live_ne = f(&v["ne"]);
        OnlineDay {
            url: url.into(),
            requests,
            rows,
            rows_per_request: super::ROWS_PER_REQUEST,
            failed,
            labeled_rows: v["labeled_rows"].as_u64().unwrap_or(0),
            live_ne,
            offline_ne: offline.ne,
            ne_difference: live_ne.zip(offline.ne).map(|(a, b)| (a - b).abs()),
            live_auc: f(&v["auc"]),
            offline_auc: offline.auc,
            live_calibration: f(&v["calibration"]),
            shadow_rows: s["rows"].as_u64().unwrap_or(0),
            shadow_delta_ne_pct: f(&s["delta_ne_percent"]),
            offline_delta_ne_pct,
            shadow_mean_abs_divergence: f(&s["mean_abs_divergence"]),
            budget_ne_pct: f(&acc["budget_ne_percent"]),
            alert: v["alert"].as_str().map(str::to_string),
            canary: None,
            seconds: 0.0,
        }
    }

    /// The day-1 lines of the printed story.
    pub fn day1_lines(&self) -> Vec<String> {
        let matches = self.ne_difference.is_some_and(|d| d <= 1e-9);
        vec![
            format!(
                "replayed {} held-out rows as {} KServe requests of {} rows with ids, labels fed back: {} failed",
                self.rows, self.requests, self.rows_per_request, self.failed
            ),
            format!(
                "live NE {} on {} labelled rows vs offline eval NE {} on the same rows: |Δ| = {:.1e} ({})",
                fmt5(self.live_ne),
                self.labeled_rows,
                fmt5(self.offline_ne),
                self.ne_difference.unwrap_or(f64::NAN),
                if matches { "equal to 1e-9" } else { "MISMATCH" }
            ),
            format!(
                "fp32 shadow on {} rows: live ΔNE {} (offline {:+.4}%), mean |p − p_fp32| {:.2e}, budget {}; {}",
                self.shadow_rows,
                pct(self.shadow_delta_ne_pct),
                self.offline_delta_ne_pct,
                self.shadow_mean_abs_divergence.unwrap_or(f64::NAN),
                self.budget_ne_pct
                    .map_or("none recorded".into(), |b| format!("{b}%")),
                self.alert
                    .as_ref()
                    .map_or("no alert".into(), |a| format!("ALERT: {a}"))
            ),
        ]
    }

    /// The report's `## Online day` section.
    pub fn section(&self) -> ReportSection {
        let mut s = String::from("## Online day (quantrec serve)\n\n");
        let _ = writeln!(
            s,
            "A real server on {} served the day-1 quantized model with its fp32 model as the shadow; {} held-out \
             rows were replayed as {} KServe v2 requests with ids and their labels fed back ({} failed).\n",
            self.url, self.rows, self.requests, self.failed
        );
        s.push_str("| figure | live (monitor) | offline (same rows) |\n|---|---|---|\n");
        let _ = writeln!(
            s,
            "| NE | {} | {} |",
            fmt5(self.live_ne),
            fmt5(self.offline_ne)
        );
        let _ = writeln!(
            s,
            "| AUC | {} | {} |",
            fmt5(self.live_auc),
            fmt5(self.offline_auc)
        );
        let _ = writeln!(
            s,
            "| ΔNE vs fp32 | {} ({} shadowed rows) | {:+.4}% |\n",
            pct(self.shadow_delta_ne_pct),
            self.shadow_rows,
            self.offline_delta_ne_pct
        );
        let _ = writeln!(
            s,
            "Live NE − offline NE: |Δ| = {:.1e}. Alert: {}.\n",
            self.ne_difference.unwrap_or(f64::NAN),
            self.alert.as_deref().unwrap_or("none")
        );
        if let Some(c) = &self.canary {
            s.push_str(&c.markdown());
        }
        ReportSection { markdown: s }
    }
}

impl CanaryDay {
    /// The canary figures from the final accuracy report `acc`.
    #[allow(clippy::too_many_arguments)]
    pub fn from_report(
        launch: &CanaryConfig,
        policy: &CanaryPolicy,
        requests: usize,
        rows: usize,
        failed: usize,
        answered_by: BTreeMap<String, usize>,
        acc: &Value,
        serving_after: Vec<String>,
    ) -> CanaryDay {
        let version_text = launch.version.to_string();
        let l = acc["launches"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["version"] == version_text.as_str()))
            .cloned()
            .unwrap_or(Value::Null);
        let null = Value::Null;
        let paired = version(acc, &version_text).map_or(&null, |v| &v["versus_serving"]);
        CanaryDay {
            version: version_text.clone(),
            fraction: policy.fraction,
            min_labels: policy.min_labels,
            max_delta_ne_pct: policy.max_delta_ne_percent,
            requests,
            rows,
            failed,
            answered_by,
            decision: l["decision"].as_str().unwrap_or("none").to_string(),
            delta_ne_pct: f(&l["delta_ne_percent"]),
            decided_on_rows: l["rows"].as_u64().unwrap_or(0),
            reason: l["reason"].as_str().map(str::to_string),
            canary_ne: f(&paired["ne"]),
            serving_ne: f(&paired["reference_ne"]),
            serving_after,
        }
    }

    /// The canary lines of the printed story.
    pub fn lines(&self) -> Vec<String> {
        let answered: Vec<String> = self
            .answered_by
            .iter()
            .map(|(v, n)| format!("v{v} {n}"))
            .collect();
        vec![
            format!(
                "canary: the refreshed day-2 model as version {} on {} of the traffic, decision after {} labelled rows within ΔNE ≤ {}%",
                self.version, self.fraction, self.min_labels, self.max_delta_ne_pct
            ),
            format!(
                "replayed {} drifted day-2 rows as {} requests (answered: {}), {} failed",
                self.rows,
                self.requests,
                answered.join(", "),
                self.failed
            ),
            format!(
                "verdict: {} on {} rows, live ΔNE {} against the serving version (NE {} vs {}){}; now serving: {}",
                self.decision,
                self.decided_on_rows,
                pct(self.delta_ne_pct),
                fmt5(self.canary_ne),
                fmt5(self.serving_ne),
                self.reason
                    .as_ref()
                    .map_or(String::new(), |r| format!(" ({r})")),
                self.serving_after.join(", ")
            ),
        ]
    }

    fn markdown(&self) -> String {
        let mut s = String::from("### Canary launch of the refreshed day-2 model\n\n");
        for l in self.lines() {
            let _ = writeln!(s, "- {l}");
        }
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn acc() -> Value {
        json!({
            "budget_ne_percent": 0.02,
            "versions": [
                {"version": "1", "role": "serving", "labeled_rows": 1000, "ne": 0.8, "auc": 0.75,
                 "calibration": 1.01, "alert": null,
                 "shadow": {"rows": 1000, "delta_ne_percent": 0.01, "mean_abs_divergence": 0.002}},
                {"version": "2", "role": "serving", "labeled_rows": 600,
                 "versus_serving": {"ne": 0.78, "reference_ne": 0.8}}
            ],
            "launches": [{"version": "2", "decision": "promote", "delta_ne_percent": -2.5, "rows": 600}]
        })
    }

    fn metrics(ne: f64) -> Metrics {
        Metrics {
            count: 1000,
            ctr: Some(0.2),
            log_loss: Some(0.4),
            ne: Some(ne),
            auc: Some(0.75),
            calibration: Some(1.0),
        }
    }

    #[test]
    fn day1_figures_compare_live_and_offline() {
        let offline = metrics(0.8 + 1e-12);
        let d = OnlineDay::from_day1("http://x", 4, 1000, 0, &acc(), &offline, 0.015);
        assert_eq!(d.labeled_rows, 1000);
        assert!(d.ne_difference.unwrap() < 1e-9);
        assert_eq!(d.shadow_rows, 1000);
        assert_eq!(d.budget_ne_pct, Some(0.02));
        assert!(d.day1_lines()[1].contains("equal to 1e-9"));
        let off = metrics(0.81);
        let bad = OnlineDay::from_day1("http://x", 4, 1000, 0, &acc(), &off, 0.015);
        assert!(bad.day1_lines()[1].contains("MISMATCH"));
        let md = d.section().markdown;
        assert!(md.starts_with("## Online day") && md.contains("| NE | 0.80000 | 0.80000 |"));
    }

    #[test]
    fn canary_figures_come_from_its_launch_record() {
        let launch = CanaryConfig {
            version: 2,
            fraction: 0.5,
            min_labels: 500,
            max_delta_ne_percent: None,
            min_auc_ratio: None,
        };
        let policy = launch.policy(Some(0.02)).unwrap();
        let c = CanaryDay::from_report(
            &launch,
            &policy,
            10,
            2560,
            0,
            BTreeMap::from([("1".to_string(), 6), ("2".to_string(), 4)]),
            &acc(),
            vec!["2".into()],
        );
        assert_eq!(c.decision, "promote");
        assert_eq!(c.delta_ne_pct, Some(-2.5));
        assert_eq!((c.canary_ne, c.serving_ne), (Some(0.78), Some(0.8)));
        assert_eq!(c.max_delta_ne_pct, 0.02);
        assert!(c.lines()[2].contains("promote on 600 rows"));
    }
}
