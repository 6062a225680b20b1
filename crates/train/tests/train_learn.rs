//! The trainer learns, is deterministic per seed whatever the thread count, and rejects bad input.

mod train_util;

use quantrec_data::Batch;
use quantrec_kernels::rng::Rng;
use quantrec_model::ModelConfig;
use quantrec_model::config::{DotOrder, Interaction, Naming, PoolingMode};
use quantrec_train::{Optimizer, TrainError, TrainOptions, Trainer};
use train_util::{Teacher, config, dot, random_batch};

fn small(interaction: Interaction) -> ModelConfig {
    let tables: Vec<(usize, usize, PoolingMode)> = [50, 200, 20, 400, 80]
        .iter()
        .map(|&r| (r, 8, PoolingMode::Sum))
        .collect();
    config(6, &[16, 8], &tables, interaction, &[16, 1], Naming::Dlrm)
}

fn data(config: &ModelConfig, batches: usize, size: usize, seed: u64) -> Vec<Batch> {
    let teacher = Teacher::new(config, 99);
    let mut rng = Rng::new(seed);
    (0..batches)
        .map(|_| teacher.batch(config, size, &mut rng))
        .collect()
}

fn learns(interaction: Interaction, optimizer: Optimizer, lr_dense: f32, lr_sparse: f32) {
    let cfg = small(interaction);
    let train = data(&cfg, 60, 256, 1);
    let holdout = data(&cfg, 8, 512, 2);
    let options = TrainOptions {
        seed: 5,
        optimizer,
        lr_dense,
        lr_sparse,
        epochs: 3,
        threads: Some(2),
        ..TrainOptions::default()
    };
    let mut tr = Trainer::new(cfg, options).unwrap();
    let before = tr.evaluate(&holdout).unwrap();
    let mut first_running = None;
    let mut last_running = 0.0;
    let mut steps = 0;
    tr.fit(&train, |p| {
        first_running.get_or_insert(p.running_loss);
        last_running = p.running_loss;
        steps += 1;
        assert!(p.running_ne.is_finite());
    })
    .unwrap();
    assert_eq!(steps, 180);
    assert_eq!(tr.samples_seen(), 180 * 256);
    let after = tr.evaluate(&holdout).unwrap();
    eprintln!("{optimizer:?}: before {before:?}\n after {after:?}");
    assert!(last_running < first_running.unwrap());
    assert!(
        after.log_loss < before.log_loss - 0.05,
        "{before:?} -> {after:?}"
    );
    assert!(after.ne < 0.9, "{after:?}");
    assert!(
        after.auc > 0.75 && after.auc > before.auc + 0.1,
        "{before:?} -> {after:?}"
    );
}

#[test]
fn adagrad_learns_a_teacher() {
    learns(
        dot(DotOrder::LowerByRow, false),
        Optimizer::adagrad(),
        0.02,
        0.1,
    );
}

#[test]
fn adam_learns_a_teacher() {
    learns(
        dot(DotOrder::LowerByRow, false),
        Optimizer::adam_rowwise(),
        0.003,
        0.1,
    );
}

#[test]
fn sgd_learns_a_teacher() {
    learns(Interaction::Cat, Optimizer::Sgd, 0.2, 1.0);
}

#[test]
fn dcn_learns_a_teacher() {
    learns(
        Interaction::Dcn { layers: 1, rank: 4 },
        Optimizer::adagrad(),
        0.02,
        0.1,
    );
}

fn run(threads: usize, seed: u64) -> (Vec<f64>, Vec<Vec<f32>>) {
    let cfg = small(Interaction::Dcn { layers: 2, rank: 4 });
    // 700 rows: five full chunks and a 60-row tail; 130 rows: a 2-row tail (the kernels'
    // small-batch path); every product runs on the runtime-dispatched GEMM.
    let mut train = data(&cfg, 4, 700, 3);
    train.extend(data(&cfg, 2, 130, 4));
    let options = TrainOptions {
        seed,
        threads: Some(threads),
        ..TrainOptions::default()
    };
    let mut tr = Trainer::new(cfg, options).unwrap();
    let losses = train.iter().map(|b| tr.train_step(b).unwrap()).collect();
    (
        losses,
        tr.state_dict().into_iter().map(|t| t.data).collect(),
    )
}

#[test]
fn deterministic_per_seed_across_thread_counts() {
    let a = run(1, 11);
    let b = run(2, 11);
    let c = run(2, 11);
    assert_eq!(a, b, "1 vs 2 threads");
    assert_eq!(b, c, "repeat");
    let d = run(2, 12);
    assert_ne!(a.1, d.1, "another seed gives another model");
}

#[test]
fn bad_batches_and_configs_are_typed_errors() {
    let cfg = small(dot(DotOrder::LowerByRow, false));
    let mut tr = Trainer::new(cfg.clone(), TrainOptions::default()).unwrap();
    let good = random_batch(&cfg, 5, 2, 1);

    let mut b = good.clone();
    assert!(!b.sparse[2].ids.is_empty());
    b.sparse[2].ids[0] = 20; // table 2 has 20 rows
    let e = tr.train_step(&b).unwrap_err();
    assert!(
        matches!(
            e,
            TrainError::IdOutOfRange {
                table: 2,
                bag: 0,
                id: 20,
                rows: 20
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("id 20"), "{e}");

    let mut b = good.clone();
    b.labels = None;
    assert!(matches!(tr.train_step(&b), Err(TrainError::MissingLabels)));
    assert!(tr.predict(&b).is_ok());

    let mut b = good.clone();
    b.sparse[0].offsets.pop();
    assert!(matches!(
        tr.train_step(&b),
        Err(TrainError::BagShape {
            table: 0,
            expected: 6,
            found: 5,
            ..
        })
    ));

    let mut b = good.clone();
    b.dense.pop();
    assert!(matches!(
        tr.train_step(&b),
        Err(TrainError::BatchShape { expected, found, .. }) if found + 1 == expected
    ));

    let mut b = good.clone();
    b.labels.as_mut().unwrap()[0] = 2.0;
    assert!(matches!(
        tr.train_step(&b),
        Err(TrainError::LabelRange {
            sample: 0,
            label: 2.0
        })
    ));

    let mut b = good;
    b.dense[3] = f32::NAN;
    assert!(matches!(
        tr.loss(&b),
        Err(TrainError::NonFiniteDense { sample, .. }) if sample == 3 / cfg.dense_features
    ));

    let mut bad = cfg.clone();
    bad.tables[1].dim = 4; // dot needs equal dims
    assert!(matches!(
        Trainer::new(bad, TrainOptions::default()),
        Err(TrainError::DotDimension {
            table: 1,
            found: 4,
            ..
        })
    ));
    let mut bad = cfg.clone();
    bad.top_mlp = vec![4, 2];
    assert!(matches!(
        Trainer::new(bad, TrainOptions::default()),
        Err(TrainError::MlpWidths { mlp: "top", .. })
    ));
    let opts = TrainOptions {
        lr_dense: f32::NAN,
        ..TrainOptions::default()
    };
    assert!(matches!(
        Trainer::new(cfg.clone(), opts),
        Err(TrainError::LearningRate { dense, .. }) if dense.is_nan()
    ));
    let opts = TrainOptions {
        threads: Some(0),
        ..TrainOptions::default()
    };
    assert!(matches!(
        Trainer::new(cfg.clone(), opts),
        Err(TrainError::ZeroThreads)
    ));

    let mut w = random_batch(
        &config(
            3,
            &[4],
            &[(5, 4, PoolingMode::WeightedSum)],
            Interaction::Cat,
            &[1],
            Naming::Dlrm,
        ),
        4,
        2,
        1,
    );
    w.sparse[0].weights = None;
    let mut tw = Trainer::new(
        config(
            3,
            &[4],
            &[(5, 4, PoolingMode::WeightedSum)],
            Interaction::Cat,
            &[1],
            Naming::Dlrm,
        ),
        TrainOptions::default(),
    )
    .unwrap();
    assert!(matches!(
        tw.train_step(&w),
        Err(TrainError::MissingBagWeights { table: 0 })
    ));
}

#[test]
fn suggested_config_trains() {
    let cfg = quantrec_train::suggested_config(13, &[10, 20, 30], 16);
    assert_eq!(cfg.interaction_out(), 16 + 6);
    let batch = random_batch(&cfg, 64, 1, 4);
    let mut tr = Trainer::new(cfg, TrainOptions::default()).unwrap();
    let l0 = tr.train_step(&batch).unwrap();
    for _ in 0..20 {
        tr.train_step(&batch).unwrap();
    }
    assert!(tr.loss(&batch).unwrap() < l0);
}
