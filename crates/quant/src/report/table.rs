//! Markdown table of evaluated plans.

use crate::Result;
use crate::search::pareto::{Objective, PlanPoint, pareto_front, scalar_costs};

/// A Markdown table with one row per plan, in the given order: size (MiB), latency (ms), ΔNE (%),
/// the objective's scalar cost when it is [`Objective::Both`], whether the plan is on the Pareto
/// frontier for `objective`, whether it is within `budget_pct`, and a mark on `chosen`.
pub fn markdown_table(
    points: &[PlanPoint],
    objective: Objective,
    budget_pct: f64,
    chosen: Option<usize>,
) -> Result<String> {
    let front = pareto_front(points, objective)?;
    let costs = scalar_costs(points, objective);
    let both = objective == Objective::Both;
    let mut out = String::from("| plan | size (MiB) | latency (ms) | ΔNE (%) |");
    if both {
        out.push_str(" cost |");
    }
    out.push_str(" Pareto | within budget | chosen |\n|---|---:|---:|---:|");
    if both {
        out.push_str("---:|");
    }
    out.push_str(":---:|:---:|:---:|\n");
    let mark = |b: bool| if b { "✓" } else { "" };
    for (i, p) in points.iter().enumerate() {
        out.push_str(&format!(
            "| {} | {:.3} | {:.3} | {:+.4} |",
            p.name.replace('|', "\\|"),
            p.bytes as f64 / (1u64 << 20) as f64,
            p.latency_s * 1e3,
            p.delta_ne_pct
        ));
        if both {
            out.push_str(&format!(" {:.4} |", costs[i]));
        }
        out.push_str(&format!(
            " {} | {} | {} |\n",
            mark(front.contains(&i)),
            mark(p.delta_ne_pct <= budget_pct),
            if chosen == Some(i) { "**◀**" } else { "" }
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_and_marks() {
        let pts = vec![
            PlanPoint {
                name: "f32".into(),
                bytes: 4 << 20,
                latency_s: 0.002,
                delta_ne_pct: 0.0,
            },
            PlanPoint {
                name: "a|b".into(),
                bytes: 1 << 20,
                latency_s: 0.001,
                delta_ne_pct: 0.05,
            },
        ];
        let t = markdown_table(&pts, Objective::Bytes, 0.02, Some(0)).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[2],
            "| f32 | 4.000 | 2.000 | +0.0000 | ✓ | ✓ | **◀** |"
        );
        assert_eq!(lines[3], "| a\\|b | 1.000 | 1.000 | +0.0500 | ✓ |  |  |");
        let t = markdown_table(&pts, Objective::Both, 0.02, None).unwrap();
        assert!(t.lines().next().unwrap().contains("cost"));
        assert!(t.lines().nth(3).unwrap().contains(" 0.7500 |"));
    }
}
