use super::*;
use quantrec_data::metrics::MetricsAccumulator;
use quantrec_kernels::rng::Rng;

/// Probabilities and labels drawn so that labels follow the probabilities.
fn traffic(rows: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let probs: Vec<f32> = (0..rows)
        .map(|_| (0.02f32 + 0.6 * rng.uniform() as f32).min(0.98))
        .collect();
    let labels = probs
        .iter()
        .map(|&p| ((rng.uniform() as f32) < p) as u8 as f32)
        .collect();
    (probs, labels)
}

fn served(version: &str, role: Role, probs: &[f32]) -> ServedPrediction {
    ServedPrediction {
        version: version.into(),
        role,
        probabilities: probs.to_vec(),
        reference: None,
        incumbent: None,
    }
}

#[test]
fn live_ne_equals_offline_ne_on_the_same_rows() {
    let m = Monitor::new(MonitorConfig::default());
    m.track("1", Role::Serving);
    let (probs, labels) = traffic(5000, 1);
    let mut entries = Vec::new();
    for (i, (p, y)) in probs.chunks(64).zip(labels.chunks(64)).enumerate() {
        let id = format!("req-{i}");
        m.record(&id, served("1", Role::Serving, p)).unwrap();
        entries.push(FeedbackEntry {
            id,
            labels: y.to_vec(),
        });
    }
    let out = m.feedback(&entries);
    assert_eq!((out.accepted, out.rejected), (entries.len(), 0));
    let mut eval = MetricsAccumulator::with_auc();
    eval.extend(&probs, &labels).unwrap();
    let offline = eval.metrics();
    let r = m.report();
    let v = &r.versions[0];
    assert_eq!(v.labeled_rows, 5000);
    assert!((v.ne.unwrap() - offline.ne.unwrap()).abs() < 1e-9);
    assert!((v.log_loss.unwrap() - offline.log_loss.unwrap()).abs() < 1e-9);
    assert_eq!(v.auc, offline.auc);
    assert!((v.calibration.unwrap() - offline.calibration.unwrap()).abs() < 1e-9);
    assert_eq!(r.pending.waiting_requests, 0);
}

#[test]
fn rejections_are_counted_by_reason() {
    let m = Monitor::new(MonitorConfig::default());
    m.track("1", Role::Serving);
    m.record("a", served("1", Role::Serving, &[0.3, 0.4]))
        .unwrap();
    assert_eq!(
        m.record("a", served("1", Role::Serving, &[0.3])),
        Err(Rejection::DuplicateId)
    );
    let entries = [
        FeedbackEntry {
            id: "nope".into(),
            labels: vec![1.0],
        },
        FeedbackEntry {
            id: "a".into(),
            labels: vec![1.0],
        },
        FeedbackEntry {
            id: "a".into(),
            labels: vec![1.0, 0.0],
        },
        FeedbackEntry {
            id: "a".into(),
            labels: vec![1.0, 0.0],
        },
    ];
    let out = m.feedback(&entries);
    assert_eq!((out.accepted, out.rejected), (1, 3));
    let reasons: Vec<Rejection> = out.rejections.iter().map(|r| r.1).collect();
    assert_eq!(
        reasons,
        [
            Rejection::Unknown,
            Rejection::WrongLength,
            Rejection::AlreadyLabelled
        ]
    );
    let r = m.report();
    assert_eq!(r.feedback_rejected.values().sum::<u64>(), 4);
    assert_eq!(r.versions[0].labeled_rows, 2);
}

#[test]
fn expired_predictions_are_rejected() {
    let m = Monitor::new(MonitorConfig {
        ttl_secs: 0.05,
        ..MonitorConfig::default()
    });
    m.track("1", Role::Serving);
    m.record("a", served("1", Role::Serving, &[0.3])).unwrap();
    let later = Instant::now() + Duration::from_millis(200);
    let out = m.feedback_at(
        &[FeedbackEntry {
            id: "a".into(),
            labels: vec![1.0],
        }],
        later,
    );
    assert_eq!(out.rejections, [("a".to_string(), Rejection::Expired)]);
    assert_eq!(m.report().pending.expired, 1);
}

#[test]
fn shadow_alert_fires_past_the_budget_only() {
    let m = Monitor::new(MonitorConfig {
        min_alert_rows: 1000,
        budget_ne_percent: Some(0.5),
        ..MonitorConfig::default()
    });
    m.track("good", Role::Serving);
    m.track("bad", Role::Canary);
    let (reference, labels) = traffic(4000, 2);
    // "good" is the reference up to tiny noise; "bad" is pulled halfway to the mean (much less
    // informative).
    let good: Vec<f32> = reference.iter().map(|&p| p * 1.0001).collect();
    let bad: Vec<f32> = reference.iter().map(|&p| 0.5 * p + 0.5 * 0.3).collect();
    let mut entries = Vec::new();
    for (i, ((r, y), (g, b))) in reference
        .chunks(100)
        .zip(labels.chunks(100))
        .zip(good.chunks(100).zip(bad.chunks(100)))
        .enumerate()
    {
        for (version, probs) in [("good", g), ("bad", b)] {
            let id = format!("{version}-{i}");
            let mut s = served(version, Role::Serving, probs);
            s.reference = Some(r.to_vec());
            m.record(&id, s).unwrap();
            entries.push(FeedbackEntry {
                id,
                labels: y.to_vec(),
            });
        }
    }
    // Below min_alert_rows nothing fires.
    let first = m.feedback(&entries[..8]);
    assert!(first.events.new_alerts.is_empty());
    let rest = m.feedback(&entries[8..]);
    assert_eq!(
        rest.events.new_alerts.len(),
        1,
        "{:?}",
        rest.events.new_alerts
    );
    assert_eq!(rest.events.new_alerts[0].0, "bad");
    let r = m.report();
    let bad_report = r.versions.iter().find(|v| v.version == "bad").unwrap();
    let shadow = bad_report.shadow.as_ref().unwrap();
    assert!(shadow.delta_ne_percent.unwrap() > 0.5);
    assert!(
        bad_report
            .alert
            .as_ref()
            .unwrap()
            .contains("exceeds the budget")
    );
    let good_report = r.versions.iter().find(|v| v.version == "good").unwrap();
    assert!(good_report.alert.is_none());
    assert!(good_report.shadow.as_ref().unwrap().max_abs_divergence < 1e-3);
    assert_eq!(r.alerts_raised, 1);
}

/// Plays canary traffic: the serving version is `serving_probs`, the canary `canary_probs`.
fn play_canary(canary_probs: impl Fn(f32) -> f32) -> (Monitor, Vec<Option<(String, Verdict)>>) {
    let m = Monitor::new(MonitorConfig::default());
    m.track("1", Role::Serving);
    m.start_canary(
        "2",
        CanaryPolicy {
            fraction: 0.5,
            min_labels: 2000,
            max_delta_ne_percent: 0.5,
            min_auc_ratio: None,
        },
    );
    let (serving, labels) = traffic(6000, 3);
    let mut verdicts = Vec::new();
    for (i, (p, y)) in serving.chunks(500).zip(labels.chunks(500)).enumerate() {
        let id = format!("c{i}");
        let canary: Vec<f32> = p.iter().map(|&x| canary_probs(x)).collect();
        let mut s = served("2", Role::Canary, &canary);
        s.incumbent = Some(("1".into(), p.to_vec()));
        m.record(&id, s).unwrap();
        let out = m.feedback(&[FeedbackEntry {
            id,
            labels: y.to_vec(),
        }]);
        verdicts.push(out.events.verdict);
    }
    (m, verdicts)
}

#[test]
fn a_canary_within_budget_is_promoted_once() {
    let (m, verdicts) = play_canary(|p| p);
    // 2000 labels arrive with the 4th request; the decision is made exactly once.
    assert!(verdicts[..3].iter().all(Option::is_none));
    let Some((version, Verdict::Promote { rows, .. })) = &verdicts[3] else {
        panic!("expected a promotion, got {:?}", verdicts[3]);
    };
    assert_eq!((version.as_str(), *rows), ("2", 2000));
    assert!(verdicts[4..].iter().all(Option::is_none));
    m.end_canary(true);
    let r = m.report();
    assert!(r.versions.iter().all(|v| v.role == Role::Serving));
    assert!(matches!(r.canary_verdict, Some(Verdict::Promote { .. })));
}

#[test]
fn a_canary_worse_than_budget_is_rolled_back() {
    let (m, verdicts) = play_canary(|p| 0.6 * p + 0.4 * 0.3);
    let Some((
        _,
        Verdict::Rollback {
            reason,
            delta_ne_percent,
            ..
        },
    )) = &verdicts[3]
    else {
        panic!("expected a rollback, got {:?}", verdicts[3]);
    };
    assert!(delta_ne_percent.unwrap() > 0.5);
    assert!(reason.contains("exceeds the budget"), "{reason}");
    m.end_canary(false);
    m.forget("2");
    assert_eq!(m.report().versions.len(), 1);
}

#[test]
fn report_serializes_to_the_documented_shape() {
    let m = Monitor::new(MonitorConfig::default());
    m.track("3", Role::Serving);
    m.record("x", served("3", Role::Serving, &[0.2, 0.7]))
        .unwrap();
    m.feedback(&[FeedbackEntry {
        id: "x".into(),
        labels: vec![0.0, 1.0],
    }]);
    let json = serde_json::to_value(m.report()).unwrap();
    let v = &json["versions"][0];
    assert_eq!(v["version"], "3");
    assert_eq!(v["role"], "serving");
    assert_eq!(v["labeled_rows"], 2);
    assert!(v["ne"].is_number());
    assert_eq!(v["auc"], 1.0);
    assert!(v["window"].is_object());
    assert!(v["alert"].is_null());
}
