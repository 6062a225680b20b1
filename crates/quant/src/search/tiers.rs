//! Frequency-aware row tiers in the precision search: named recipes that split a table by its
//! rows' lookups on the calibration data ([`RowRanking`]), and the search phase that tries them
//! on top of the plan the greedy walks chose, under the same budget.
//!
//! A recipe is a list of (format, reach) tiers, hottest first, where a tier's reach is the share
//! of calibration lookups the ranked rows up to and including it cover (the last tier takes every
//! seen row), plus whether never-seen rows are pruned to the zero row (otherwise the last tier
//! also holds them). Tiers that end up empty are dropped.

use quantrec_kernels::formats::TableFormat;
use quantrec_model::plan::{TierLevel, TierPlan};
use quantrec_model::{ModelConfig, Plan};

use super::greedy::{Candidate, EvalCache, SEARCH_WALKS, greedy_walks};
use super::plan_search::{Budget, Evaluator};
use crate::calibrate::{RowRanking, TableRanking};
use crate::eval::Comparison;
use crate::plans::plan_bytes;
use crate::{QuantError, Result};

/// How far a tier reaches down the ranking.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reach {
    /// Up to the rows covering this share of the lookups.
    Share(f64),
    /// Every seen row.
    Seen,
}

/// A named way to split a table into tiers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TierRecipe {
    /// The name recorded in the plan (`8/4/2+prune`, ...).
    pub name: &'static str,
    levels: &'static [(TableFormat, Reach)],
    prune: bool,
}

use Reach::{Seen, Share};
use TableFormat::{Fused2, Fused4, Fused8};

/// Every recipe the search tries, cheapest last within each family.
pub const RECIPES: [TierRecipe; 7] = [
    TierRecipe {
        name: "8+prune",
        levels: &[(Fused8, Seen)],
        prune: true,
    },
    TierRecipe {
        name: "8/4/2",
        levels: &[(Fused8, Share(0.5)), (Fused4, Share(0.9)), (Fused2, Seen)],
        prune: false,
    },
    TierRecipe {
        name: "4/2",
        levels: &[(Fused4, Share(0.8)), (Fused2, Seen)],
        prune: false,
    },
    TierRecipe {
        name: "4+prune",
        levels: &[(Fused4, Seen)],
        prune: true,
    },
    TierRecipe {
        name: "8/4/2+prune",
        levels: &[(Fused8, Share(0.5)), (Fused4, Share(0.9)), (Fused2, Seen)],
        prune: true,
    },
    TierRecipe {
        name: "4/2+prune",
        levels: &[(Fused4, Share(0.8)), (Fused2, Seen)],
        prune: true,
    },
    TierRecipe {
        name: "2+prune",
        levels: &[(Fused2, Seen)],
        prune: true,
    },
];

impl TierRecipe {
    /// The recipe named `name`.
    pub fn parse(name: &str) -> Option<TierRecipe> {
        RECIPES.iter().copied().find(|r| r.name == name)
    }

    /// Whether every tier format stores rows of dimension `dim`.
    pub fn fits(&self, dim: usize) -> bool {
        self.levels.iter().all(|(f, _)| f.check_dim(dim).is_ok())
    }

    /// The tiers of a `rows`-row table ranked as `ranking` says.
    pub fn split(&self, rows: usize, ranking: &TableRanking) -> TierPlan {
        let seen = ranking.seen();
        let mut levels = Vec::new();
        let mut taken = 0;
        for (k, &(format, reach)) in self.levels.iter().enumerate() {
            let last = k + 1 == self.levels.len();
            let upto = match reach {
                _ if last && !self.prune => rows,
                Seen => seen,
                Share(s) => ranking.rows_covering(s).max(taken),
            };
            let n = upto.saturating_sub(taken);
            taken += n;
            if n > 0 {
                levels.push(TierLevel { format, rows: n });
            }
        }
        TierPlan {
            recipe: self.name.to_string(),
            levels,
            pruned: rows - taken,
        }
    }
}

/// `plan` with table `t` split by `recipe` (the plan's format becomes the hottest tier's; a table
/// with no stored rows keeps its format for the record).
pub fn apply(
    plan: &Plan,
    config: &ModelConfig,
    ranking: &RowRanking,
    t: usize,
    recipe: TierRecipe,
) -> Result<Plan> {
    let (tc, r) = config
        .tables
        .get(t)
        .zip(ranking.tables.get(t))
        .ok_or_else(|| QuantError::TableOutOfRange {
            what: "row tiers",
            table: t,
            tables: config.tables.len(),
        })?;
    let tiers = recipe.split(tc.rows, r);
    let mut out = plan.clone();
    if let Some(first) = tiers.levels.first() {
        out.tables[t] = first.format;
    }
    out.tiers.insert(t, tiers);
    Ok(out)
}

/// Re-splits every tiered table of `plan` with its recorded recipe on a new ranking (a refresh
/// on new calibration data). An unknown recipe name is an error.
pub fn resplit(plan: &Plan, config: &ModelConfig, ranking: &RowRanking) -> Result<Plan> {
    let mut out = plan.clone();
    for (&t, tiers) in &plan.tiers {
        let recipe =
            TierRecipe::parse(&tiers.recipe).ok_or_else(|| QuantError::UnknownTierRecipe {
                table: t,
                recipe: tiers.recipe.clone(),
                expected: RECIPES.map(|r| r.name).join(", "),
            })?;
        out = apply(&out, config, ranking, t, recipe)?;
    }
    Ok(out)
}

/// One plan the tier phase evaluated.
#[derive(Clone, Debug)]
pub struct TierTrial {
    /// `sens:table.{t}=tiers:{recipe}` (on the sensitivity subset) or `tiers#{k}`.
    pub name: String,
    /// The plan (static parameters calibrated).
    pub plan: Plan,
    /// Its accuracy against the f32 reference.
    pub comparison: Comparison,
}

/// The least share of a table's bytes (in the base plan) that tiering it must save to be tried.
/// Tiered pooling decodes each row through its tier's remap before adding it, which measured
/// ~40% slower than a single-format table at batch 64 on the synthetic default, so a tier recipe
/// that saves a few percent of a table costs more in latency than it saves in memory; pruning
/// never-seen rows (most of a hashed Criteo table) saves far more than this.
pub const MIN_TABLE_SAVING: f64 = 0.25;

/// The tier phase of the search: every (table, recipe) that makes `base` smaller by at least
/// [`MIN_TABLE_SAVING`] of that table's bytes, measured alone
/// on top of it on the sensitivity subset (`sens_ev`); then the greedy walks over those
/// candidates, each combination measured on the whole set (`ev`) against what `budget` leaves
/// above `base`'s own gate value. Returns every evaluated plan and the greedy's cache hits.
pub fn tier_phase(
    ev: &mut Evaluator<'_>,
    sens_ev: &mut Evaluator<'_>,
    config: &ModelConfig,
    ranking: &RowRanking,
    base: &Plan,
    budget: Budget,
) -> Result<(Vec<TierTrial>, usize)> {
    let (_, base_full) = ev.evaluate(base)?;
    let (_, base_sub) = sens_ev.evaluate(base)?;
    let (gate_full, gate_sub) = (budget.value(&base_full), budget.value(&base_sub));
    let base_bytes = plan_bytes(config, base);
    let mut trials = Vec::new();
    let mut candidates: Vec<Candidate<usize, usize>> = Vec::new();
    for (t, tc) in config.tables.iter().enumerate() {
        if base.tiers.contains_key(&t) {
            continue;
        }
        for (ri, recipe) in RECIPES.iter().enumerate() {
            if !recipe.fits(tc.dim) {
                continue;
            }
            let plan = apply(base, config, ranking, t, *recipe)?;
            let bytes = plan_bytes(config, &plan);
            let table_bytes = tc.rows * base.tables[t].row_bytes(tc.dim);
            if bytes >= base_bytes
                || ((base_bytes - bytes) as f64) < MIN_TABLE_SAVING * table_bytes as f64
            {
                continue;
            }
            let (plan, c) = sens_ev.evaluate(&plan)?;
            candidates.push(Candidate {
                unit: t,
                option: ri,
                cost_saved: (base_bytes - bytes) as f64,
                delta_ne_alone: budget.value(&c) - gate_sub,
            });
            trials.push(TierTrial {
                name: format!("sens:table.{t}=tiers:{}", recipe.name),
                plan,
                comparison: c,
            });
        }
    }
    let room = budget.limit() - gate_full;
    if room < 0.0 || candidates.is_empty() {
        return Ok((trials, 0));
    }
    let mut cache = EvalCache::new();
    let mut full = Vec::new();
    let outcome = greedy_walks(&candidates, room, SEARCH_WALKS, &mut cache, |a| {
        let mut plan = base.clone();
        for (&t, &ri) in a {
            plan = apply(&plan, config, ranking, t, RECIPES[ri])?;
        }
        let (p, c) = ev.evaluate(&plan)?;
        let v = budget.value(&c) - gate_full;
        full.push((p, c));
        Ok::<f64, QuantError>(v)
    })?;
    for (k, (plan, comparison)) in full.into_iter().enumerate() {
        trials.push(TierTrial {
            name: format!("tiers#{}", k + 1),
            plan,
            comparison,
        });
    }
    Ok((trials, outcome.cache_hits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranking() -> TableRanking {
        // 10 rows; 4 seen with 6, 2, 1, 1 lookups.
        TableRanking {
            order: vec![3, 1, 7, 0, 2, 4, 5, 6, 8, 9],
            counts: vec![6, 2, 1, 1],
            lookups: 10,
        }
    }

    #[test]
    fn recipes_split_by_lookup_share_and_prune_unseen_rows() {
        let r = ranking();
        let t = TierRecipe::parse("8/4/2+prune").unwrap().split(10, &r);
        assert_eq!(
            t.levels,
            vec![
                TierLevel {
                    format: Fused8,
                    rows: 1
                },
                TierLevel {
                    format: Fused4,
                    rows: 2
                },
                TierLevel {
                    format: Fused2,
                    rows: 1
                },
            ]
        );
        assert_eq!(t.pruned, 6);
        let t = TierRecipe::parse("4/2").unwrap().split(10, &r);
        assert_eq!(t.levels[0].rows + t.levels[1].rows, 10);
        assert_eq!(t.pruned, 0);
        let t = TierRecipe::parse("2+prune").unwrap().split(10, &r);
        assert_eq!((t.levels.len(), t.pruned), (1, 6));
        assert!(TierRecipe::parse("nope").is_none());
        assert!(!TierRecipe::parse("4/2").unwrap().fits(6 + 1));
    }
}
