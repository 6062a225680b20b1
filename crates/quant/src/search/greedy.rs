//! Greedy precision assignment under a ΔNE budget, abstract over the model.
//!
//! A *unit* is anything that gets one precision (a table, a layer, a group); `U` is its id
//! (a name or an index; `Ord + Hash`). An *option* `O` is the caller's precision choice for a unit
//! (any `Eq + Hash` type, typically a field-less enum; an option that carries floats can be
//! passed as an index into the caller's own option list). Units not in
//! an [`Assignment`] stay at the baseline precision (an empty assignment is the baseline plan, ΔNE
//! 0 by definition, never evaluated).
//!
//! # Algorithm
//!
//! 1. Candidates with `cost_saved <= 0`, or whose ΔNE alone already exceeds the budget, are
//!    skipped (reported in [`GreedyOutcome::skipped`]).
//! 2. The rest are ordered by efficiency, cost saved per unit of ΔNE: candidates with
//!    `ΔNE alone <= 0` (free or improving) come first, by cost saved descending; then by
//!    `cost_saved / ΔNE alone` descending. Ties keep the input order (stable sort), so the search is
//!    deterministic.
//! 3. Walking that order, each candidate is tried on top of the current assignment (replacing the
//!    unit's current option if it has one; a candidate that would save no more than the unit's
//!    current option is passed over without an evaluation). The combined plan is evaluated with the
//!    caller's closure; if its ΔNE is within the budget the candidate is kept, otherwise it is
//!    dropped again (back-off) and the walk goes on with the next candidate.
//! 4. After the walk, it is repeated over the same order (up to the caller's number of walks: [`greedy_walks`]; the precision search makes [`SEARCH_WALKS`]) as
//!    long as the previous walk kept at least one candidate: a candidate dropped earlier is tried
//!    again on top of the changed assignment.
//! 5. Evaluations are cached by assignment: a combination seen before is not evaluated again.
//!    [`greedy_cached`] takes the cache from the caller, so several runs (e.g. a sweep over
//!    budgets, or over objectives with differently measured cost savings) share evaluations.
//!
//! Cost saved by an assignment is the sum of its options' `cost_saved` (costs are taken as
//! additive; ΔNE is measured, so interactions between units show up there).

use std::collections::{BTreeMap, HashMap};

use crate::QuantError;

/// Precision options of the units that leave the baseline: unit id → option.
pub type Assignment<U, O> = BTreeMap<U, O>;

/// Measured ΔNE of every combination evaluated so far.
pub type EvalCache<U, O> = HashMap<Assignment<U, O>, f64>;

/// One precision option for one unit, with its standalone measurements.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Candidate<U, O> {
    /// The unit.
    pub unit: U,
    /// The option for it.
    pub option: O,
    /// Cost (bytes, seconds, or a normalized mix) saved against the baseline.
    pub cost_saved: f64,
    /// ΔNE (percent) of the plan with only this option applied.
    pub delta_ne_alone: f64,
}

/// One evaluated combination.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evaluation<U: Ord, O> {
    /// The combination evaluated.
    pub assignment: Assignment<U, O>,
    /// Its measured ΔNE (percent).
    pub delta_ne: f64,
    /// Its cost saved (sum over its options).
    pub cost_saved: f64,
    /// Whether it was within budget and became the current assignment.
    pub accepted: bool,
    /// Whether the ΔNE came from the cache rather than a new call of the evaluator.
    pub from_cache: bool,
}

/// What [`greedy`] found.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GreedyOutcome<U: Ord, O> {
    /// The final assignment.
    pub assignment: Assignment<U, O>,
    /// Its measured ΔNE (0 for the empty baseline assignment).
    pub delta_ne: f64,
    /// Its cost saved.
    pub cost_saved: f64,
    /// Every combination tried, in order (from the evaluator or the cache).
    pub evaluations: Vec<Evaluation<U, O>>,
    /// Indices (into the input) of candidates skipped before the walk.
    pub skipped: Vec<usize>,
    /// Tries answered from the cache instead of a new evaluation.
    pub cache_hits: usize,
}

/// [`greedy_cached`] with a fresh cache.
pub fn greedy<U, O, E, F>(
    candidates: &[Candidate<U, O>],
    budget: f64,
    evaluate: F,
) -> Result<GreedyOutcome<U, O>, E>
where
    U: Ord + Clone + std::hash::Hash + std::fmt::Debug,
    O: Eq + Clone + std::hash::Hash + std::fmt::Debug,
    E: From<QuantError>,
    F: FnMut(&Assignment<U, O>) -> Result<f64, E>,
{
    greedy_cached(candidates, budget, &mut EvalCache::new(), evaluate)
}

/// Walks the precision search makes (see the module docs, step 4).
pub const SEARCH_WALKS: usize = 3;

/// Runs the greedy search (see the module docs) with a single walk, reading and filling `cache`,
/// with `budget` as the largest acceptable ΔNE (percent). `evaluate` measures the ΔNE of a combined
/// plan; its errors are passed through, and a NaN result is refused with
/// [`QuantError::NanEvaluation`] (converted into `E`).
pub fn greedy_cached<U, O, E, F>(
    candidates: &[Candidate<U, O>],
    budget: f64,
    cache: &mut EvalCache<U, O>,
    evaluate: F,
) -> Result<GreedyOutcome<U, O>, E>
where
    U: Ord + Clone + std::hash::Hash + std::fmt::Debug,
    O: Eq + Clone + std::hash::Hash + std::fmt::Debug,
    E: From<QuantError>,
    F: FnMut(&Assignment<U, O>) -> Result<f64, E>,
{
    greedy_walks(candidates, budget, 1, cache, evaluate)
}

/// [`greedy_cached`] with up to `walks` walks over the ordered candidates (step 4 of the module
/// docs; at least one).
pub fn greedy_walks<U, O, E, F>(
    candidates: &[Candidate<U, O>],
    budget: f64,
    walks: usize,
    cache: &mut EvalCache<U, O>,
    mut evaluate: F,
) -> Result<GreedyOutcome<U, O>, E>
where
    U: Ord + Clone + std::hash::Hash + std::fmt::Debug,
    O: Eq + Clone + std::hash::Hash + std::fmt::Debug,
    E: From<QuantError>,
    F: FnMut(&Assignment<U, O>) -> Result<f64, E>,
{
    if !budget.is_finite() {
        return Err(QuantError::InvalidBudget { value: budget }.into());
    }
    for c in candidates {
        if !(c.cost_saved.is_finite() && c.delta_ne_alone.is_finite()) {
            return Err(QuantError::InvalidCandidate {
                candidate: format!("{:?} = {:?}", c.unit, c.option),
                cost_saved: c.cost_saved,
                delta_ne_alone: c.delta_ne_alone,
            }
            .into());
        }
    }
    let (mut order, skipped): (Vec<usize>, Vec<usize>) = (0..candidates.len())
        .partition(|&i| candidates[i].cost_saved > 0.0 && candidates[i].delta_ne_alone <= budget);
    order.sort_by(|&a, &b| {
        let (ca, cb) = (&candidates[a], &candidates[b]);
        match (ca.delta_ne_alone <= 0.0, cb.delta_ne_alone <= 0.0) {
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            (true, true) => cb.cost_saved.total_cmp(&ca.cost_saved),
            (false, false) => {
                (cb.cost_saved / cb.delta_ne_alone).total_cmp(&(ca.cost_saved / ca.delta_ne_alone))
            }
        }
    });

    let mut current: Assignment<U, O> = BTreeMap::new();
    let mut saved_by_unit: BTreeMap<U, f64> = BTreeMap::new();
    let mut current_dne = 0.0;
    let mut evaluations = Vec::new();
    let mut cache_hits = 0;
    // Later passes retry what earlier ones dropped: ΔNE is measured on the combined plan, and
    // errors of different units partly cancel, so a candidate refused early can fit once others
    // have changed. The search stops after a walk that keeps nothing (or after `walks`).
    for _walk in 0..walks.max(1) {
        let mut kept = false;
        for &i in &order {
            let c = &candidates[i];
            let previous = saved_by_unit.get(&c.unit).copied();
            if previous.is_some_and(|s| c.cost_saved <= s) {
                continue;
            }
            let mut trial = current.clone();
            trial.insert(c.unit.clone(), c.option.clone());
            let trial_saved: f64 =
                saved_by_unit.values().sum::<f64>() - previous.unwrap_or(0.0) + c.cost_saved;
            let (dne, from_cache) = match cache.get(&trial) {
                Some(&d) => {
                    cache_hits += 1;
                    (d, true)
                }
                None => {
                    let d = evaluate(&trial)?;
                    if d.is_nan() {
                        return Err(QuantError::NanEvaluation {
                            assignment: format!("{trial:?}"),
                        }
                        .into());
                    }
                    cache.insert(trial.clone(), d);
                    (d, false)
                }
            };
            evaluations.push(Evaluation {
                assignment: trial.clone(),
                delta_ne: dne,
                cost_saved: trial_saved,
                accepted: dne <= budget,
                from_cache,
            });
            if dne <= budget {
                kept = true;
                current = trial;
                saved_by_unit.insert(c.unit.clone(), c.cost_saved);
                current_dne = dne;
            }
        }
        if !kept {
            break;
        }
    }
    Ok(GreedyOutcome {
        cost_saved: saved_by_unit.values().sum(),
        assignment: current,
        delta_ne: current_dne,
        evaluations,
        skipped,
        cache_hits,
    })
}

#[cfg(test)]
mod tests;
