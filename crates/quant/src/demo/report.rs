//! The demo's report: Markdown through `Display` (`report.md`), JSON through `Serialize`
//! (`report.json`), with room for sections a later stage adds.

use std::collections::BTreeMap;
use std::fmt::{self, Display, Formatter, Write as _};

use quantrec_data::metrics::Metrics;
use quantrec_model::LayerPrecision;
use serde::Serialize;

use super::DemoOptions;
use super::data::{DemoData, Trained};
use super::day2::ne_fmt;
use super::throughput::ThroughputRow;
use crate::refresh::{Blame, RangeShift, WidenStep};
use crate::workflow::QuantizeOutcome;

/// The search behind the chosen plan, in brief.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchSummary {
    /// Plans evaluated.
    pub plans_evaluated: usize,
    /// Seconds the search took.
    pub seconds: f64,
    /// Name of the chosen plan.
    pub chosen: String,
    /// What it minimized (`Bytes`, `Latency`, `Both`).
    pub objective: String,
    /// The gate, e.g. `ΔNE <= 0.02%`.
    pub budget: String,
}

/// The latency-optimal plan within the same budget.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencyOptimal {
    /// One-line summary of the plan.
    pub plan: String,
    /// Whether it is the size-optimal plan too (then it is not measured twice).
    pub same_as_size_optimal: bool,
    /// Its ΔNE (%).
    pub delta_ne_pct: f64,
    /// Its bytes.
    pub bytes: u64,
    /// How it was found.
    pub how: String,
    /// Seconds it took to find.
    pub seconds: f64,
}

/// One unit whose precision refresh changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanChange {
    /// The unit (`bottom.0`, `table.3`, ...).
    pub unit: String,
    /// Its precision in the day-1 plan.
    pub previous: String,
    /// Its precision after refresh.
    pub new: String,
}

/// Day 2: drift, the model trained further, refresh of the day-1 recipe.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RefreshSection {
    /// Weight of the second teacher.
    pub drift: f64,
    /// Fraction of every table's ids re-ranked in popularity.
    pub trending: f64,
    /// Seed of the drift.
    pub drift_seed: u64,
    /// The re-ranked ids per table.
    pub trending_ids: Vec<usize>,
    /// Day-2 training rows.
    pub train_rows: u64,
    /// Seconds of day-2 training.
    pub train_seconds: f64,
    /// NE of the day-1 f32 model on day-2 evaluation rows.
    pub ne_day1_f32_on_day2: Option<f64>,
    /// NE of the day-2 f32 model on the same rows.
    pub ne_day2_f32: f64,
    /// ΔNE (%) of the day-1 recipe re-applied as it was.
    pub delta_ne_pct_recipe: f64,
    /// ΔNE (%) after repair.
    pub delta_ne_pct_final: f64,
    /// The gate.
    pub budget: String,
    /// Whether the gate passed.
    pub passed: bool,
    /// Bytes of the day-1 plan.
    pub bytes_previous: u64,
    /// Bytes of the refreshed plan.
    pub bytes: u64,
    /// Units whose precision changed.
    pub plan_diff: Vec<PlanChange>,
    /// What the debugger blamed.
    pub blamed: Vec<Blame>,
    /// What was widened.
    pub widened: Vec<WidenStep>,
    /// Static activation ranges, recipe vs recalibrated.
    pub ranges: Vec<RangeShift>,
    /// Seconds of refresh.
    pub refresh_seconds: f64,
    /// The refreshed artifact, when saved.
    pub model: Option<String>,
    /// Refresh's plan diff and gate as text (the Markdown shows it verbatim).
    #[serde(skip)]
    pub diff_text: String,
}

/// A Markdown section appended by a later stage (e.g. serving).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReportSection {
    /// Its Markdown, starting with its `## ` heading and ending with a blank line.
    pub markdown: String,
}

/// The demo's report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DemoReport {
    /// Version of quantrec that ran.
    pub quantrec_version: String,
    /// The machine's ISA levels.
    pub isa: String,
    /// Whether the short version ran.
    pub quick: bool,
    /// Where the rows came from.
    pub data: DemoData,
    /// Rows trained on.
    pub train_rows: u64,
    /// Seconds of training.
    pub train_seconds: f64,
    /// The teacher's NE (synthetic data).
    pub teacher_ne: Option<f64>,
    /// The ΔNE budget (%).
    pub budget_ne_pct: f64,
    /// NE of the f32 model.
    pub ne_f32: f64,
    /// NE of the quantized model.
    pub ne_quantized: f64,
    /// ΔNE (%).
    pub delta_ne_pct: f64,
    /// AUC of the f32 model.
    pub auc_f32: f64,
    /// AUC of the quantized model.
    pub auc_quantized: f64,
    /// ΔAUC.
    pub delta_auc: f64,
    /// Calibration of the f32 model.
    pub calibration_f32: Option<f64>,
    /// Calibration of the quantized model.
    pub calibration_quantized: f64,
    /// Every metric of the f32 model.
    pub metrics_f32: Metrics,
    /// Bytes of the f32 model.
    pub bytes_f32: u64,
    /// Bytes of the quantized model.
    pub bytes_quantized: u64,
    /// Quantized bytes / f32 bytes.
    pub size_fraction: f64,
    /// Precision per unit (`bottom.0`, `cross.0.v`, `table.3`, ...).
    pub plan: BTreeMap<String, String>,
    /// The search.
    pub search: Option<SearchSummary>,
    /// Predict throughput and latency.
    pub throughput: Vec<ThroughputRow>,
    /// Seconds from start to the report.
    pub seconds: f64,
    /// The latency-optimal plan.
    pub latency_optimal: LatencyOptimal,
    /// Day 2 (`null` with a click log).
    pub refresh: Option<RefreshSection>,
    /// The search report's Markdown (appended to the report's).
    #[serde(skip)]
    pub search_markdown: String,
    /// Sections of later stages, shown before the search.
    #[serde(skip)]
    pub sections: Vec<ReportSection>,
    /// JSON of later stages, by key.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Precision of every unit of the plan, by unit name.
pub fn plan_units(plan: &quantrec_model::Plan) -> BTreeMap<String, String> {
    let names = |prefix: &str, v: &[LayerPrecision]| -> Vec<(String, String)> {
        v.iter()
            .enumerate()
            .map(|(i, p)| (format!("{prefix}.{i}"), p.short_name()))
            .collect()
    };
    let mut out: BTreeMap<String, String> = names("bottom", &plan.bottom)
        .into_iter()
        .chain(names("top", &plan.top))
        .collect();
    for (l, cp) in plan.cross.iter().enumerate() {
        out.insert(format!("cross.{l}.v"), cp.v.short_name());
        out.insert(format!("cross.{l}.w"), cp.w.short_name());
    }
    for (i, f) in plan.tables.iter().enumerate() {
        out.insert(format!("table.{i}"), f.name().into());
    }
    out
}

impl DemoReport {
    /// The report of the offline stages (`seconds`, `search_markdown` and `refresh` are filled
    /// in by the caller).
    pub fn new(
        options: &DemoOptions,
        t: &Trained,
        o: &QuantizeOutcome,
        throughput: Vec<ThroughputRow>,
        latency_optimal: LatencyOptimal,
    ) -> DemoReport {
        let c = &o.comparison;
        DemoReport {
            quantrec_version: env!("CARGO_PKG_VERSION").to_string(),
            isa: quantrec_kernels::isa::describe(),
            quick: options.quick,
            data: t.source.clone(),
            train_rows: t.train_rows,
            train_seconds: t.train_seconds,
            teacher_ne: t.teacher_ne,
            budget_ne_pct: options.budget_ne,
            ne_f32: c.ne_reference,
            ne_quantized: c.ne,
            delta_ne_pct: c.delta_ne_pct,
            auc_f32: c.auc_reference,
            auc_quantized: c.auc,
            delta_auc: c.delta_auc,
            calibration_f32: o.reference.calibration,
            calibration_quantized: c.calibration,
            metrics_f32: o.reference.clone(),
            bytes_f32: o.bytes_f32,
            bytes_quantized: o.bytes_quantized,
            size_fraction: o.bytes_quantized as f64 / o.bytes_f32 as f64,
            plan: plan_units(&o.plan),
            search: o.search.as_ref().map(|s| SearchSummary {
                plans_evaluated: s.evaluated.len(),
                seconds: s.seconds,
                chosen: s.chosen().name.clone(),
                objective: format!("{:?}", s.objective),
                budget: s.budget.describe(),
            }),
            throughput,
            seconds: 0.0,
            latency_optimal,
            refresh: None,
            search_markdown: String::new(),
            sections: Vec::new(),
            extra: BTreeMap::new(),
        }
    }

    /// The JSON of `report.json` (keys in sorted order, as the file has always had them).
    pub fn to_json_pretty(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(&serde_json::to_value(self)?)
    }
}

/// Natural order of unit names: bottom, cross, top, table; `table.2` before `table.10`.
fn unit_rank(k: &str) -> (Option<usize>, usize, String) {
    let (prefix, index) = k.split_once('.').unwrap_or((k, ""));
    let rank = ["bottom", "cross", "top", "table"]
        .iter()
        .position(|p| *p == prefix);
    let number: usize = index
        .split('.')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (rank, number, k.to_string())
}

/// `null` for NaN, as JSON would hold it; the Markdown then shows `NaN` again.
fn json_text<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).map_or_else(|_| String::new(), |v| v.to_string())
}

impl DemoReport {
    fn write_models(&self, s: &mut String) -> fmt::Result {
        s.push_str("| model | NE | AUC | calibration | bytes |\n|---|---|---|---|---|\n");
        writeln!(
            s,
            "| f32 | {:.5} | {:.5} | {:.4} | {} |",
            self.ne_f32,
            self.auc_f32,
            self.calibration_f32.unwrap_or(f64::NAN),
            self.bytes_f32
        )?;
        writeln!(
            s,
            "| quantized | {:.5} | {:.5} | {:.4} | {} |\n",
            self.ne_quantized, self.auc_quantized, self.calibration_quantized, self.bytes_quantized
        )?;
        writeln!(
            s,
            "ΔNE {:+.4}% against a budget of {}%; ΔAUC {:+.5}; the quantized model is {:.1}% of the f32 bytes.\n",
            self.delta_ne_pct,
            self.budget_ne_pct,
            self.delta_auc,
            100.0 * self.size_fraction
        )?;
        if let Some(t) = self.teacher_ne {
            writeln!(
                s,
                "Teacher NE (attainable optimum): {t:.5}; f32 model / teacher = {:.4}.\n",
                self.ne_f32 / t
            )?;
        }
        Ok(())
    }

    fn write_plan(&self, s: &mut String) -> fmt::Result {
        s.push_str("## Plan\n\n");
        s.push_str(
            "N-bit table rows are rounded for the model's loss on the calibration rows (Gauss-Newton \
             curvature; `quantize --table-rounding`): FBGEMM's layout, which PyTorch reads unchanged, \
             but not the bytes PyTorch's own quantizer writes (`--table-rounding pytorch`).\n\n",
        );
        s.push_str("| unit | precision |\n|---|---|\n");
        let mut units: Vec<_> = self.plan.iter().collect();
        units.sort_by_key(|(k, _)| unit_rank(k));
        for (k, v) in units {
            writeln!(s, "| {k} | {v} |")?;
        }
        Ok(())
    }

    fn write_throughput(&self, s: &mut String) -> fmt::Result {
        s.push_str("\n## Predict throughput\n\n| model | batch | threads | samples/s | p50 latency (µs) |\n|---|---|---|---|---|\n");
        for t in &self.throughput {
            writeln!(
                s,
                "| {} | {} | {} | {:.0} | {:.1} |",
                t.model, t.batch, t.threads, t.samples_per_second, t.latency_p50_us
            )?;
        }
        let l = &self.latency_optimal;
        writeln!(
            s,
            "\nModels: `quantized` is the size-optimal plan above; the latency-optimal plan within the same \
             budget ({}) is `{}` (ΔNE {:+.4}%, {} bytes){}.",
            l.how,
            l.plan,
            l.delta_ne_pct,
            l.bytes,
            if l.same_as_size_optimal {
                ", the same plan, so it is not measured twice"
            } else {
                ", measured as `q-latency`"
            }
        )
    }
}

impl RefreshSection {
    /// The `## Refresh (day 2)` section.
    pub fn markdown(&self) -> String {
        format!(
            "## Refresh (day 2)\n\nThe f32 model trained further on {} drifted day-2 rows (drift {}: a second \
             teacher blended into the labels, {} of every table's ids re-ranked in popularity); `refresh` \
             re-applied the day-1 plan, recalibrated on day-2 rows and re-validated ({}).\n\n\
             Day-2 holdout NE: day-1 f32 model {}, day-2 f32 model {:.5}.\n\n```\n{}```\n\n",
            self.train_rows,
            self.drift,
            self.drift,
            self.budget,
            ne_fmt(self.ne_day1_f32_on_day2),
            self.ne_day2_f32,
            self.diff_text,
        )
    }
}

/// The Markdown of `report.md`.
impl Display for DemoReport {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut s = String::from("# quantrec demo report\n\n");
        writeln!(s, "Machine: {}\n", self.isa)?;
        writeln!(s, "Data: `{}`\n", json_text(&self.data))?;
        self.write_models(&mut s)?;
        self.write_plan(&mut s)?;
        self.write_throughput(&mut s)?;
        s.push('\n');
        if let Some(r) = &self.refresh {
            s.push_str(&r.markdown());
        }
        for section in &self.sections {
            s.push_str(&section.markdown);
        }
        s.push_str("![Pareto frontier](frontier.png)\n\n## Precision search\n\n");
        s.push_str(&self.search_markdown);
        f.write_str(&s)
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
