//! Precision search: the model-independent pieces (greedy assignment under a ΔNE budget, Pareto
//! frontier of evaluated plans and the choice of a plan within the budget), and frequency-aware
//! row tiers ([`tiers`]).

pub mod greedy;
pub mod pareto;
pub mod plan_search;
pub mod tiers;

pub use greedy::{
    Assignment, Candidate, EvalCache, Evaluation, GreedyOutcome, greedy, greedy_cached,
};
pub use pareto::{Objective, PlanPoint, pareto_front, pick};
pub use plan_search::{Budget, Evaluated, Evaluator, SearchOptions, SearchOutcome, search};
