//! The search report on disk: `report.md` (plans, frontier, choice, sensitivity), `report.json`
//! (everything) and `frontier.png`.

use std::fmt::Write as _;
use std::path::Path;

use super::plot::render_png;
use super::table::markdown_table;
use crate::plans::summary;
use crate::search::SearchOutcome;
use crate::search::pareto::PlanPoint;
use crate::{QuantError, Result};

fn io(path: &Path, e: std::io::Error) -> QuantError {
    QuantError::io(path, e)
}

/// The Markdown report of a search. Sensitivity points are listed in their own table, not among
/// the plans.
pub fn markdown(s: &SearchOutcome) -> Result<String> {
    let (points, chosen) = plotted(s);
    let mut md = String::from("# Precision search\n\n");
    let c = s.chosen();
    let f32b = s.evaluated[0].bytes;
    let _ = writeln!(
        md,
        "Budget: {}. Objective: {:?}. {} model evaluations ({} cache hits) in {:.1} s.\n",
        s.budget.describe(),
        s.objective,
        s.model_evaluations,
        s.cache_hits,
        s.seconds
    );
    let _ = writeln!(
        md,
        "**Chosen: {}** — {} bytes ({:.1}% of f32), predicted latency {:.3} ms per {} samples (f32 {:.3} ms), ΔNE {:+.4}%, ΔAUC {:+.5}.\n\n`{}`\n",
        c.name,
        c.bytes,
        100.0 * c.bytes as f64 / f32b.max(1) as f64,
        c.latency_s * 1e3,
        s.cost_model.batch_size,
        s.evaluated[0].latency_s * 1e3,
        c.comparison.delta_ne_pct,
        c.comparison.delta_auc,
        summary(&c.plan)
    );
    if let (false, Some(u)) = (c.plan.tiers.is_empty(), s.best_untiered()) {
        let _ = writeln!(
            md,
            "Row tiers on {} tables: {} bytes against {} bytes ({:.1}% of f32) for the best plan with one precision per table ({}), {:.1}% fewer.\n",
            c.plan.tiers.len(),
            c.bytes,
            u.bytes,
            100.0 * u.bytes as f64 / f32b.max(1) as f64,
            u.name,
            100.0 * (1.0 - c.bytes as f64 / u.bytes.max(1) as f64)
        );
    }
    md.push_str("## Plans\n\n");
    md.push_str(&markdown_table(
        &points,
        s.objective,
        s.budget.limit(),
        chosen,
    )?);
    md.push_str("\n## Sensitivity (one unit at a time)\n\n| unit | option | gate | ΔNE (%) | bytes saved | latency saved (µs) |\n|---|---|---|---|---|---|\n");
    for r in &s.sensitivity {
        let _ = writeln!(
            md,
            "| {} | {} | {:.4} | {:+.4} | {} | {:.1} |",
            r.unit,
            r.option,
            r.gate,
            r.delta_ne_pct,
            r.bytes_saved,
            r.latency_saved_s * 1e6
        );
    }
    Ok(md)
}

/// The plans shown in tables and plots (baseline, greedy steps, presets; sensitivity points left
/// out) and the chosen plan's index among them.
pub fn plotted(s: &SearchOutcome) -> (Vec<PlanPoint>, Option<usize>) {
    let all = s.points();
    let mut out = Vec::new();
    let mut chosen = None;
    for (i, p) in all.into_iter().enumerate() {
        if p.name.starts_with("sens:") && i != s.chosen {
            continue;
        }
        if i == s.chosen {
            chosen = Some(out.len());
        }
        out.push(p);
    }
    (out, chosen)
}

/// Writes `report.md`, `report.json` and `frontier.png` into `dir` (created if needed).
pub fn write_report(dir: &Path, s: &SearchOutcome) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let md_path = dir.join("report.md");
    std::fs::write(&md_path, markdown(s)?).map_err(|e| io(&md_path, e))?;
    let json_path = dir.join("report.json");
    let json = serde_json::to_string_pretty(s).map_err(|source| QuantError::Json {
        what: "search report",
        source,
    })?;
    std::fs::write(&json_path, json).map_err(|e| io(&json_path, e))?;
    let (points, chosen) = plotted(s);
    render_png(
        &dir.join("frontier.png"),
        &points,
        s.objective,
        s.budget.limit(),
        chosen,
    )
}
