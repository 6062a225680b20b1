use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Opt {
    Int8,
    Int4,
}

fn cand(unit: &str, option: Opt, cost_saved: f64, delta_ne_alone: f64) -> Candidate<String, Opt> {
    Candidate {
        unit: unit.to_string(),
        option,
        cost_saved,
        delta_ne_alone,
    }
}

/// The sum of `field` over the candidates an assignment picks.
fn sum_over(
    cands: &[Candidate<String, Opt>],
    a: &Assignment<String, Opt>,
    field: fn(&Candidate<String, Opt>) -> f64,
) -> f64 {
    a.iter()
        .map(|(u, o)| {
            field(
                cands
                    .iter()
                    .find(|c| &c.unit == u && c.option == *o)
                    .unwrap(),
            )
        })
        .sum()
}

/// The ΔNE of an assignment under an additive model: the sum of the options' ΔNE alone.
fn additive(cands: &[Candidate<String, Opt>], a: &Assignment<String, Opt>) -> f64 {
    sum_over(cands, a, |c| c.delta_ne_alone)
}

/// The cost an assignment saves.
fn saved(cands: &[Candidate<String, Opt>], a: &Assignment<String, Opt>) -> f64 {
    sum_over(cands, a, |c| c.cost_saved)
}

/// Best cost saved over every assignment (each unit: baseline or one of its options) within the
/// budget, by exhaustive enumeration.
fn brute_force(
    cands: &[Candidate<String, Opt>],
    budget: f64,
    dne: impl Fn(&Assignment<String, Opt>) -> f64,
) -> (f64, Assignment<String, Opt>) {
    let mut units: Vec<String> = cands.iter().map(|c| c.unit.clone()).collect();
    units.sort();
    units.dedup();
    let mut best = (0.0, Assignment::new());
    let mut stack = vec![(0usize, Assignment::new())];
    while let Some((k, a)) = stack.pop() {
        if k == units.len() {
            let s = saved(cands, &a);
            if dne(&a) <= budget + 1e-12 && s > best.0 {
                best = (s, a);
            }
            continue;
        }
        stack.push((k + 1, a.clone()));
        for c in cands.iter().filter(|c| c.unit == units[k]) {
            let mut b = a.clone();
            b.insert(c.unit.clone(), c.option);
            stack.push((k + 1, b));
        }
    }
    best
}

#[test]
fn additive_model_reaches_the_optimum() {
    let cands = vec![
        cand("emb0", Opt::Int8, 30.0, 0.010),
        cand("emb0", Opt::Int4, 45.0, 0.030),
        cand("emb1", Opt::Int8, 20.0, 0.008),
        cand("emb1", Opt::Int4, 30.0, 0.035),
        cand("mlp0", Opt::Int8, 4.0, -0.001), // free: improves NE
        cand("mlp1", Opt::Int8, 0.0, 0.0),    // saves nothing: skipped
        cand("mlp2", Opt::Int8, 2.0, 0.2),    // over budget alone: skipped
        cand("mlp3", Opt::Int8, 3.0, 0.015),
    ];
    let budget = 0.04;
    let out = greedy::<_, _, QuantError, _>(&cands, budget, |a| Ok(additive(&cands, a))).unwrap();
    let (best, _) = brute_force(&cands, budget, |a| additive(&cands, a));
    assert_eq!(out.cost_saved, best);
    let keys: Vec<&str> = out.assignment.keys().map(String::as_str).collect();
    assert_eq!(keys, ["emb0", "emb1", "mlp0"]);
    assert_eq!(out.assignment["emb0"], Opt::Int4);
    assert_eq!(out.assignment["emb1"], Opt::Int8);
    // mlp0 (free), emb0 Int8, emb1 Int8, then emb0 upgraded to Int4 (0.037); the emb1 upgrade
    // (0.064) and mlp3 (0.052) break the budget and are backed off.
    assert_eq!(out.cost_saved, 69.0);
    assert!((out.delta_ne - 0.037).abs() < 1e-12);
    assert_eq!(out.skipped, vec![5, 6]);
    // The free option was tried first.
    assert_eq!(out.evaluations[0].assignment.len(), 1);
    assert!(out.evaluations[0].assignment.contains_key("mlp0"));
    let rejected: Vec<_> = out.evaluations.iter().filter(|e| !e.accepted).collect();
    assert_eq!(rejected.len(), 2);
    assert!(rejected.iter().all(|e| e.delta_ne > budget));
    assert!(out.evaluations.iter().all(|e| !e.from_cache));
}

#[test]
fn interaction_is_backed_off() {
    // x and y are each cheap in ΔNE but break the budget together; z fits with x.
    let cands = vec![
        cand("x", Opt::Int8, 10.0, 0.01),
        cand("y", Opt::Int8, 9.0, 0.01),
        cand("z", Opt::Int8, 5.0, 0.02),
    ];
    let model = |a: &Assignment<String, Opt>| {
        let base: f64 = additive(&cands, a);
        if a.contains_key("x") && a.contains_key("y") {
            base + 0.08
        } else {
            base
        }
    };
    let budget = 0.05;
    let out = greedy::<_, _, QuantError, _>(&cands, budget, |a| Ok(model(a))).unwrap();
    let (best, best_a) = brute_force(&cands, budget, model);
    assert_eq!(out.assignment, best_a);
    assert_eq!(out.cost_saved, best);
    let keys: Vec<&str> = out.assignment.keys().map(String::as_str).collect();
    assert_eq!(keys, ["x", "z"]);
    let tried: Vec<(Vec<&str>, bool)> = out
        .evaluations
        .iter()
        .map(|e| {
            (
                e.assignment.keys().map(String::as_str).collect(),
                e.accepted,
            )
        })
        .collect();
    assert_eq!(
        tried,
        vec![
            (vec!["x"], true),
            (vec!["x", "y"], false),
            (vec!["x", "z"], true)
        ]
    );
    assert_eq!(out.evaluations[1].cost_saved, 19.0);
}

#[test]
fn shared_cache_avoids_reevaluation_and_is_deterministic() {
    let cands = vec![
        cand("a", Opt::Int8, 5.0, 0.01),
        cand("b", Opt::Int8, 5.0, 0.01),
        cand("c", Opt::Int4, 8.0, 0.03),
        cand("c", Opt::Int8, 4.0, 0.01),
    ];
    let mut calls = 0;
    let mut cache = EvalCache::new();
    let first = greedy_cached::<_, _, QuantError, _>(&cands, 0.035, &mut cache, |a| {
        calls += 1;
        Ok(additive(&cands, a))
    })
    .unwrap();
    let n = calls;
    assert_eq!(n, first.evaluations.len());
    let second = greedy_cached::<_, _, QuantError, _>(&cands, 0.035, &mut cache, |a| {
        calls += 1;
        Ok(additive(&cands, a))
    })
    .unwrap();
    assert_eq!(calls, n, "everything came from the cache");
    assert_eq!(second.cache_hits, second.evaluations.len());
    assert_eq!(second.assignment, first.assignment);
    assert_eq!(second.cost_saved, first.cost_saved);
    // Equal efficiency keeps input order: a before b.
    assert_eq!(first.evaluations[0].assignment.keys().next().unwrap(), "a");
}

#[test]
fn errors_are_reported() {
    let cands = vec![cand("a", Opt::Int8, 5.0, 0.01)];
    let err = greedy::<_, _, QuantError, _>(&cands, 0.1, |_| {
        Err(QuantError::Empty {
            what: "eval".into(),
        })
    })
    .unwrap_err();
    assert!(matches!(err, QuantError::Empty { .. }));
    let err = greedy::<_, _, QuantError, _>(&cands, 0.1, |_| Ok(f64::NAN)).unwrap_err();
    assert!(matches!(err, QuantError::NanEvaluation { .. }));
    let bad = vec![cand("a", Opt::Int8, f64::INFINITY, 0.01)];
    assert!(greedy::<_, _, QuantError, _>(&bad, 0.1, |_| Ok(0.0)).is_err());
    assert!(greedy::<_, _, QuantError, _>(&cands, f64::NAN, |_| Ok(0.0)).is_err());
    // No candidates: the baseline.
    let out = greedy::<String, Opt, QuantError, _>(&[], 0.1, |_| Ok(0.0)).unwrap();
    assert!(out.assignment.is_empty() && out.evaluations.is_empty());
    assert_eq!((out.delta_ne, out.cost_saved), (0.0, 0.0));
}

#[test]
fn later_walks_retry_what_earlier_walks_dropped() {
    // a alone fits; b on top of a breaks the budget; c saves least but its error cancels a's, and
    // once it is in, b fits. One walk keeps {a, c}; a second finds {a, b, c}; a third keeps
    // nothing new and ends the search.
    let cands = vec![
        cand("a", Opt::Int8, 10.0, 0.03),
        cand("b", Opt::Int8, 8.0, 0.03),
        cand("c", Opt::Int8, 1.0, 0.03),
    ];
    let model = |a: &Assignment<String, Opt>| {
        let mut d: f64 = additive(&cands, a);
        if a.contains_key("a") && a.contains_key("c") {
            d -= 0.05;
        }
        d
    };
    let budget = 0.05;
    let one = greedy::<_, _, QuantError, _>(&cands, budget, |a| Ok(model(a))).unwrap();
    let keys: Vec<&str> = one.assignment.keys().map(String::as_str).collect();
    assert_eq!(keys, ["a", "c"]);
    let mut calls = 0;
    let three =
        greedy_walks::<_, _, QuantError, _>(&cands, budget, 3, &mut EvalCache::new(), |a| {
            calls += 1;
            Ok(model(a))
        })
        .unwrap();
    let keys: Vec<&str> = three.assignment.keys().map(String::as_str).collect();
    assert_eq!(keys, ["a", "b", "c"]);
    assert_eq!(three.cost_saved, 19.0);
    assert!(three.delta_ne <= budget);
    let (best, _) = brute_force(&cands, budget, model);
    assert_eq!(three.cost_saved, best);
    // Walk 1: {a}, {a,b} dropped, {a,c}; walk 2: {a,b,c} kept; walk 3 tries nothing new.
    assert_eq!(calls, 4);
    assert_eq!(three.evaluations.len(), 4);
}
