//! Summaries, options and holdouts of training runs.

use super::*;
use crate::TrainError;

fn report() -> EvalReport {
    EvalReport {
        samples: 10,
        log_loss: 0.5,
        ne: 0.9,
        auc: 0.7,
    }
}

#[test]
fn options_are_reported_by_optimizer_name() {
    let o = TrainOptions {
        optimizer: Optimizer::Sgd,
        ..TrainOptions::default()
    };
    let s = OptionsSummary::from(&o);
    assert_eq!(s.optimizer, "sgd");
    assert_eq!(s.batch_size, o.batch_size);
    let v = serde_json::to_value(&s).unwrap();
    for k in [
        "seed",
        "optimizer",
        "lr_dense",
        "lr_sparse",
        "batch_size",
        "epochs",
        "threads",
    ] {
        assert!(v.get(k).is_some(), "{k}");
    }
}

#[test]
fn file_summary_text_and_json() {
    let s = FileSummary {
        source: "d.tsv".into(),
        train_rows: 100,
        table_rows: vec![5, 6],
        options: OptionsSummary::from(&TrainOptions::default()),
        holdout: None,
        train_seconds: 2.0,
        samples_per_second: 50.0,
        wall_seconds: 3.0,
        output: "o.safetensors".into(),
    };
    let text = s.to_string();
    assert!(text.starts_with("trained on 100 rows × "), "{text}");
    assert!(text.contains("no holdout (use --holdout-rows"));
    assert!(text.ends_with("state dict → o.safetensors"));
    let v = serde_json::to_value(&s).unwrap();
    assert!(v["holdout"].is_null());
    assert_eq!(v["source"], "d.tsv");
    let with = FileSummary {
        holdout: Some(report()),
        ..s
    };
    assert!(
        with.to_string()
            .contains("holdout: 10 samples, log loss 0.50000, NE 0.90000, AUC 0.70000")
    );
    assert_eq!(
        serde_json::to_value(&with).unwrap()["holdout"]["samples"],
        10
    );
}

#[test]
fn synthetic_summary_text_names_the_teacher() {
    let s = SyntheticSummary {
        source: "synthetic",
        train_rows: 1000,
        eval_rows: 100,
        table_rows: vec![10],
        zipf_exponent: 1.1,
        options: OptionsSummary::from(&TrainOptions::default()),
        holdout: report(),
        teacher_ne: None,
        teacher_auc: None,
        ne_ratio: 1.01,
        train_seconds: 1.0,
        samples_per_second: 1000.0,
        wall_seconds: 1.5,
        output: "o".into(),
    };
    let text = s.to_string();
    assert!(
        text.contains("teacher (attainable optimum): NE undefined; model NE / teacher NE = 1.0100")
    );
    assert!(
        text.starts_with("trained on 1000 synthetic rows in 1.0 s (1000 samples/s; 1.5 s in all)")
    );
}

#[test]
fn holdouts_leave_rows_to_train_on() {
    assert_eq!(holdout_rows(&Holdout::Rows(10), 100).unwrap(), 10);
    assert_eq!(holdout_rows(&Holdout::Fraction(0.25), 100).unwrap(), 25);
    assert_eq!(holdout_rows(&Holdout::None, 100).unwrap(), 0);
    assert!(matches!(
        holdout_rows(&Holdout::Rows(100), 100),
        Err(TrainError::Holdout {
            rows: 100,
            holdout: 100
        })
    ));
    assert!(matches!(
        holdout_rows(&Holdout::Fraction(1.5), 100),
        Err(TrainError::HoldoutFraction { .. })
    ));
}
