//! Pareto frontier of evaluated plans and the choice of the cheapest plan within a ΔNE budget.
//!
//! Every plan is a [`PlanPoint`]: its size in bytes, its latency and its ΔNE (the relative change
//! of normalized entropy against the f32 model, in percent; lower is better, negative is an
//! improvement). The [`Objective`] says which cost counts:
//! - [`Objective::Bytes`]: bytes only; the frontier is over (bytes, ΔNE).
//! - [`Objective::Latency`]: seconds only; the frontier is over (latency, ΔNE).
//! - [`Objective::Both`]: the frontier is over (bytes, latency, ΔNE), all three minimized; the
//!   scalar cost used to pick a plan is the normalized sum `bytes / max_bytes + latency /
//!   max_latency`, the maxima taken over the given points (normally the f32 baseline), so halving
//!   memory is worth as much as halving time.
//!
//! [`pick`] returns the plan of least scalar cost among those with `ΔNE <= budget`, breaking ties
//! by lower ΔNE and then by position; the plan it picks is always on the frontier.

use crate::{PlanMetric, QuantError, Result};

/// One evaluated plan.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlanPoint {
    /// Name shown in tables and plots.
    pub name: String,
    /// Size of the model's parameters under this plan.
    pub bytes: u64,
    /// Latency of the benchmark batch in seconds (median).
    pub latency_s: f64,
    /// ΔNE against the f32 model, in percent.
    pub delta_ne_pct: f64,
}

/// Which cost a search minimizes (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Objective {
    /// Model size.
    Bytes,
    /// Latency.
    Latency,
    /// Size and latency, normalized and summed.
    Both,
}

impl Objective {
    /// Label of the objective's cost axis.
    pub fn axis_label(self) -> &'static str {
        match self {
            Objective::Bytes => "size (MiB)",
            Objective::Latency => "latency (ms)",
            Objective::Both => "size/max + latency/max",
        }
    }
}

/// Refuses latencies that are negative or not finite and ΔNE values that are not finite, naming
/// the plan.
pub fn validate(points: &[PlanPoint]) -> Result<()> {
    for p in points {
        if !(p.latency_s.is_finite() && p.latency_s >= 0.0) {
            return Err(QuantError::InvalidPlanPoint {
                plan: p.name.clone(),
                metric: PlanMetric::Latency,
                value: p.latency_s,
            });
        }
        if !p.delta_ne_pct.is_finite() {
            return Err(QuantError::InvalidPlanPoint {
                plan: p.name.clone(),
                metric: PlanMetric::DeltaNe,
                value: p.delta_ne_pct,
            });
        }
    }
    Ok(())
}

/// The scalar cost of every point under `objective` (bytes as f64, seconds, or the normalized
/// sum). Points must be valid ([`validate`]).
pub fn scalar_costs(points: &[PlanPoint], objective: Objective) -> Vec<f64> {
    let max_bytes = points.iter().map(|p| p.bytes).max().unwrap_or(0) as f64;
    let max_lat = points.iter().map(|p| p.latency_s).fold(0.0, f64::max);
    let norm = |x: f64, max: f64| if max > 0.0 { x / max } else { 0.0 };
    points
        .iter()
        .map(|p| match objective {
            Objective::Bytes => p.bytes as f64,
            Objective::Latency => p.latency_s,
            Objective::Both => norm(p.bytes as f64, max_bytes) + norm(p.latency_s, max_lat),
        })
        .collect()
}

fn criteria(p: &PlanPoint, objective: Objective) -> Vec<f64> {
    match objective {
        Objective::Bytes => vec![p.bytes as f64, p.delta_ne_pct],
        Objective::Latency => vec![p.latency_s, p.delta_ne_pct],
        Objective::Both => vec![p.bytes as f64, p.latency_s, p.delta_ne_pct],
    }
}

/// `a` dominates `b`: no worse in every criterion and better in one.
fn dominates(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x <= y) && a.iter().zip(b).any(|(x, y)| x < y)
}

/// Indices of the points no other point dominates under `objective`, ordered by scalar cost
/// (then ΔNE, then index). Identical points are all kept.
pub fn pareto_front(points: &[PlanPoint], objective: Objective) -> Result<Vec<usize>> {
    validate(points)?;
    let crit: Vec<Vec<f64>> = points.iter().map(|p| criteria(p, objective)).collect();
    let mut front: Vec<usize> = (0..points.len())
        .filter(|&i| !crit.iter().any(|c| dominates(c, &crit[i])))
        .collect();
    let cost = scalar_costs(points, objective);
    front.sort_by(|&a, &b| {
        cost[a]
            .total_cmp(&cost[b])
            .then(points[a].delta_ne_pct.total_cmp(&points[b].delta_ne_pct))
            .then(a.cmp(&b))
    });
    Ok(front)
}

/// Indices of the points not dominated in the plane `(costs[i], delta_ne[i])` (both minimized),
/// ordered by cost (then ΔNE, then index): the staircase a plot draws. Both slices must have the
/// same length and hold no NaN.
pub fn front_2d(costs: &[f64], delta_ne: &[f64]) -> Vec<usize> {
    let crit: Vec<[f64; 2]> = costs.iter().zip(delta_ne).map(|(&c, &d)| [c, d]).collect();
    let mut front: Vec<usize> = (0..crit.len())
        .filter(|&i| !crit.iter().any(|c| dominates(c, &crit[i])))
        .collect();
    front.sort_by(|&a, &b| {
        costs[a]
            .total_cmp(&costs[b])
            .then(delta_ne[a].total_cmp(&delta_ne[b]))
            .then(a.cmp(&b))
    });
    front
}

/// The cheapest plan under `objective` whose ΔNE is within `budget_pct` (see the module docs), or
/// `None` if no plan meets the budget.
pub fn pick(points: &[PlanPoint], objective: Objective, budget_pct: f64) -> Result<Option<usize>> {
    validate(points)?;
    if budget_pct.is_nan() {
        return Err(QuantError::InvalidBudget { value: budget_pct });
    }
    let cost = scalar_costs(points, objective);
    Ok((0..points.len())
        .filter(|&i| points[i].delta_ne_pct <= budget_pct)
        .min_by(|&a, &b| {
            cost[a]
                .total_cmp(&cost[b])
                .then(points[a].delta_ne_pct.total_cmp(&points[b].delta_ne_pct))
                .then(a.cmp(&b))
        }))
}

/// A test point: `mib` MiB, `ms` milliseconds, ΔNE `dne` percent.
#[cfg(test)]
pub(crate) fn pt(name: &str, mib: u64, ms: f64, dne: f64) -> PlanPoint {
    PlanPoint {
        name: name.into(),
        bytes: mib << 20,
        latency_s: ms / 1000.0,
        delta_ne_pct: dne,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f32 baseline, a few mixed plans; "slow8" is dominated in bytes by "int8" and "bad" by all.
    fn points() -> Vec<PlanPoint> {
        vec![
            pt("f32", 100, 10.0, 0.0),   // 0
            pt("fp16", 50, 8.0, 0.001),  // 1
            pt("int8", 25, 5.0, 0.02),   // 2
            pt("int4", 13, 6.0, 0.08),   // 3
            pt("slow8", 25, 9.0, 0.03),  // 4: dominated by int8 everywhere
            pt("mixed", 30, 4.0, 0.015), // 5
            pt("bad", 110, 12.0, 0.5),   // 6: dominated by f32
        ]
    }

    #[test]
    fn frontier_by_bytes() {
        let f = pareto_front(&points(), Objective::Bytes).unwrap();
        // Ordered by bytes: int4 13, int8 25, mixed 30, fp16 50, f32 100.
        assert_eq!(f, vec![3, 2, 5, 1, 0]);
    }

    #[test]
    fn frontier_by_latency_and_both() {
        // Latency: mixed 4ms/0.015 dominates int8 (5ms/0.02) and int4 (6ms/0.08).
        assert_eq!(
            pareto_front(&points(), Objective::Latency).unwrap(),
            vec![5, 1, 0]
        );
        // Both: int8 and int4 survive on bytes; slow8 and bad are dominated.
        let mut f = pareto_front(&points(), Objective::Both).unwrap();
        f.sort();
        assert_eq!(f, vec![0, 1, 2, 3, 5]);
    }

    #[test]
    fn pick_within_budget() {
        let p = points();
        assert_eq!(pick(&p, Objective::Bytes, 0.1).unwrap(), Some(3));
        assert_eq!(pick(&p, Objective::Bytes, 0.05).unwrap(), Some(2));
        assert_eq!(pick(&p, Objective::Bytes, 0.0199).unwrap(), Some(5));
        assert_eq!(pick(&p, Objective::Bytes, 0.0).unwrap(), Some(0));
        assert_eq!(pick(&p, Objective::Bytes, -1.0).unwrap(), None);
        assert_eq!(pick(&p, Objective::Latency, 0.1).unwrap(), Some(5));
        // Both, normalized by 110 MiB and 12 ms: int4 13/110+6/12 = 0.618,
        // int8 25/110+5/12 = 0.644, mixed 30/110+4/12 = 0.606 -> mixed.
        assert_eq!(pick(&p, Objective::Both, 0.1).unwrap(), Some(5));
        let costs = scalar_costs(&p, Objective::Both);
        assert!((costs[3] - (13.0 / 110.0 + 0.5)).abs() < 1e-12);
        // The pick is always on the frontier.
        for obj in [Objective::Bytes, Objective::Latency, Objective::Both] {
            for budget in [0.0, 0.01, 0.02, 0.05, 1.0] {
                if let Some(i) = pick(&p, obj, budget).unwrap() {
                    assert!(pareto_front(&p, obj).unwrap().contains(&i));
                }
            }
        }
    }

    #[test]
    fn ties_and_bad_points() {
        let p = vec![
            pt("a", 10, 1.0, 0.02),
            pt("b", 10, 1.0, 0.01),
            pt("c", 10, 1.0, 0.01),
        ];
        assert_eq!(pick(&p, Objective::Bytes, 1.0).unwrap(), Some(1));
        assert_eq!(pareto_front(&p, Objective::Bytes).unwrap(), vec![1, 2]);
        let mut bad = p.clone();
        bad[0].delta_ne_pct = f64::NAN;
        assert!(pareto_front(&bad, Objective::Bytes).is_err());
        bad[0].delta_ne_pct = 0.0;
        bad[0].latency_s = -1.0;
        assert!(pick(&bad, Objective::Latency, 1.0).is_err());
        assert!(pick(&p, Objective::Bytes, f64::NAN).is_err());
        assert!(pareto_front(&[], Objective::Both).unwrap().is_empty());
    }
}
