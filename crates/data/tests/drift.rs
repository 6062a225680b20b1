//! Day-2 drift of the synthetic generator: determinism, fresh rows, popularity shift, concept
//! drift at the same CTR, and refused settings.

use quantrec_data::DataError;
use quantrec_data::synth::{DriftConfig, Generator, Split, SynthConfig, SynthRow};

fn config(drift: Option<DriftConfig>) -> SynthConfig {
    SynthConfig {
        seed: 3,
        table_rows: vec![3, 50, 400, 2000],
        drift,
        ..SynthConfig::default()
    }
}

fn rows(g: &Generator, split: Split, n: u64) -> Vec<SynthRow> {
    let mut s = g.stream(split, n, 256);
    let mut v = Vec::new();
    while let Some(r) = s.next_row() {
        v.push(r.clone());
    }
    v
}

/// Share of table `t`'s draws taken by its `k` most frequent ids on day 1, on `day`.
fn head_share(day1: &[SynthRow], day: &[SynthRow], t: usize, k: usize) -> f64 {
    let mut counts = std::collections::HashMap::<i64, usize>::new();
    for r in day1 {
        *counts.entry(r.bags[t][0]).or_default() += 1;
    }
    let mut by = counts.into_iter().collect::<Vec<_>>();
    by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let head: Vec<i64> = by.iter().take(k).map(|x| x.0).collect();
    let hits = day.iter().filter(|r| head.contains(&r.bags[t][0])).count();
    hits as f64 / day.len() as f64
}

#[test]
fn drifted_days_are_deterministic_and_fresh() {
    let d = DriftConfig::new(7, 0.4);
    let a = rows(&Generator::new(config(Some(d))).unwrap(), Split::Train, 300);
    let b = rows(&Generator::new(config(Some(d))).unwrap(), Split::Train, 300);
    assert_eq!(a, b);
    let day1 = rows(&Generator::new(config(None)).unwrap(), Split::Train, 300);
    assert_ne!(
        a.iter().map(|r| &r.dense).collect::<Vec<_>>(),
        day1.iter().map(|r| &r.dense).collect::<Vec<_>>(),
        "day-2 rows must be fresh samples"
    );
    let other = rows(
        &Generator::new(config(Some(DriftConfig::new(8, 0.4)))).unwrap(),
        Split::Train,
        300,
    );
    assert_ne!(a, other);
}

#[test]
fn no_drift_keeps_the_distribution_and_the_labels_rule() {
    // Weight 0 and nothing trending: fresh rows, same teacher.
    let d = DriftConfig::new(1, 0.0);
    let g1 = Generator::new(config(None)).unwrap();
    let g2 = Generator::new(config(Some(d))).unwrap();
    assert_eq!(g2.trending_ids(), vec![0; 4]);
    for r in rows(&g2, Split::Evaluation, 200) {
        let p1 = g1.teacher_probability(&r.dense, &r.bags);
        assert!((p1 - r.prob).abs() < 1e-12, "{p1} vs {}", r.prob);
    }
}

#[test]
fn popularity_shifts_and_concept_drifts_at_the_same_ctr() {
    let g1 = Generator::new(config(None)).unwrap();
    let g2 = Generator::new(config(Some(DriftConfig::new(11, 0.5)))).unwrap();
    let moved = g2.trending_ids();
    assert!(moved[3] > 600 && moved[3] <= 1000, "{moved:?}");
    let day1 = rows(&g1, Split::Train, 20_000);
    let day1_again = rows(&g1, Split::Evaluation, 20_000);
    let day2 = rows(&g2, Split::Train, 20_000);
    // The day-1 head of the largest table loses traffic on day 2 (some head ids fade, some
    // rare ids trend), while an independent day-1 sample keeps it.
    let same = head_share(&day1, &day1_again, 3, 20);
    let shifted = head_share(&day1, &day2, 3, 20);
    assert!(shifted < same - 0.05, "head share {same} -> {shifted}");
    // Concept drift: the day-2 probability differs from the day-1 teacher's on the same sample,
    // but the CTR stays at the target.
    let mean_abs: f64 = day2
        .iter()
        .map(|r| (r.prob - g1.teacher_probability(&r.dense, &r.bags)).abs())
        .sum::<f64>()
        / day2.len() as f64;
    assert!(mean_abs > 0.03, "mean |Δp| {mean_abs}");
    let ctr = day2.iter().map(|r| f64::from(r.label)).sum::<f64>() / day2.len() as f64;
    assert!((ctr - 0.25).abs() < 0.015, "day-2 CTR {ctr}");
    // Labels follow the day-2 probability.
    for r in day2.iter().take(100) {
        assert!((g2.teacher_probability(&r.dense, &r.bags) - r.prob).abs() < 1e-12);
    }
}

#[test]
fn out_of_range_drift_is_refused() {
    for d in [
        DriftConfig::new(0, 1.5),
        DriftConfig {
            trending: -0.1,
            ..DriftConfig::new(0, 0.2)
        },
        DriftConfig::new(0, f64::NAN),
    ] {
        assert!(matches!(
            Generator::new(config(Some(d))),
            Err(DataError::Config { .. })
        ));
    }
}
