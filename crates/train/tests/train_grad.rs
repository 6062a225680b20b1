//! Finite-difference checks of the trainer's hand-written backward pass, for every parameter kind.

mod train_util;

use quantrec_model::ModelConfig;
use quantrec_model::config::{DotOrder, Interaction, Naming, PoolingMode};
use quantrec_train::{TrainOptions, Trainer};
use train_util::{config, dot, random_batch};

use PoolingMode::{Mean, Sum, WeightedSum};

/// Compares analytic gradients with central differences of the f64-accumulated loss on a few
/// coordinates of every tensor (and of touched and untouched table rows).
fn check(config: ModelConfig, batch_size: usize, seed: u64) {
    let batch = random_batch(&config, batch_size, 3, seed);
    let options = TrainOptions {
        seed,
        threads: Some(2),
        ..TrainOptions::default()
    };
    let mut tr = Trainer::new(config, options).unwrap();
    let grads = tr.gradients(&batch).unwrap();
    let base = tr.loss(&batch).unwrap();
    assert!((base - grads.loss).abs() < 1e-9, "{base} vs {}", grads.loss);
    let h = 1e-3f32;
    let mut worst = 0f64;
    let mut checked = 0;
    let mut skipped = 0;
    let mut fd = |tr: &mut Trainer, name: &str, i: usize, analytic: f32| {
        let orig = tr.parameter(name).unwrap()[i];
        tr.parameter_mut(name).unwrap()[i] = orig + h;
        let up = tr.loss(&batch).unwrap();
        tr.parameter_mut(name).unwrap()[i] = orig - h;
        let down = tr.loss(&batch).unwrap();
        tr.parameter_mut(name).unwrap()[i] = orig;
        let num = (up - down) / (2.0 * f64::from(h));
        // A ReLU kink inside [-h, h] makes the one-sided slopes disagree: skip such coordinates.
        let (s_up, s_down) = ((up - base) / f64::from(h), (base - down) / f64::from(h));
        if (s_up - s_down).abs() > 5e-3 + 0.2 * s_up.abs().max(s_down.abs()) {
            skipped += 1;
            return;
        }
        let err = (num - f64::from(analytic)).abs()
            / (1e-3 + 3e-2 * num.abs().max(f64::from(analytic).abs()));
        assert!(
            err <= 1.0,
            "{name}[{i}]: analytic {analytic}, finite difference {num}"
        );
        worst = worst.max(err);
        checked += 1;
    };
    for (name, g) in &grads.dense {
        let n = g.len();
        let picks: Vec<usize> = if n <= 8 {
            (0..n).collect()
        } else {
            (0..8).map(|k| (k * 7919 + 3) % n).collect()
        };
        for i in picks {
            fd(&mut tr, name, i, g[i]);
        }
    }
    let mut any_table = false;
    for tg in &grads.tables {
        let dim = tg.rows.len() / tg.ids.len().max(1);
        for (k, &id) in tg.ids.iter().enumerate().take(3) {
            for c in 0..dim {
                fd(&mut tr, &tg.name, id * dim + c, tg.rows[k * dim + c]);
                any_table = true;
            }
        }
        // An untouched row has no gradient.
        let rows = tr.parameter(&tg.name).unwrap().len() / dim.max(1);
        if let Some(free) = (0..rows).find(|r| !tg.ids.contains(r)) {
            fd(&mut tr, &tg.name, free * dim, 0.0);
        }
    }
    assert!(
        any_table && checked > 20 && skipped * 10 <= checked,
        "checked {checked}, skipped {skipped} at kinks"
    );
    eprintln!(
        "checked {checked} coordinates ({skipped} skipped at kinks), worst error ratio {worst:.3}"
    );
}

#[test]
fn dot_lower_order_sum_pooling() {
    check(
        config(
            5,
            &[7, 4],
            &[(11, 4, Sum), (9, 4, Sum), (13, 4, Sum)],
            dot(DotOrder::LowerByRow, false),
            &[6, 1],
            Naming::Dlrm,
        ),
        9,
        1,
    );
}

#[test]
fn dot_upper_order_self_interaction_mean_pooling() {
    check(
        config(
            4,
            &[6, 3],
            &[(10, 3, Mean), (8, 3, Mean)],
            dot(DotOrder::UpperByRow, true),
            &[5, 4, 1],
            Naming::TorchRec,
        ),
        11,
        2,
    );
}

#[test]
fn dot_weighted_pooling_lower_self() {
    check(
        config(
            3,
            &[4],
            &[(12, 4, WeightedSum), (7, 4, Sum)],
            dot(DotOrder::LowerByRow, true),
            &[3, 1],
            Naming::Dlrm,
        ),
        10,
        3,
    );
}

#[test]
fn cat_mixed_dims_and_poolings() {
    check(
        config(
            4,
            &[5, 3],
            &[(9, 2, Sum), (10, 5, Mean), (8, 3, WeightedSum)],
            Interaction::Cat,
            &[6, 1],
            Naming::Dlrm,
        ),
        10,
        4,
    );
}

#[test]
fn cat_without_bottom_mlp() {
    check(
        config(
            3,
            &[],
            &[(9, 2, Sum), (6, 4, Mean)],
            Interaction::Cat,
            &[1],
            Naming::TorchRec,
        ),
        8,
        5,
    );
}

#[test]
fn dcn_cross_net() {
    check(
        config(
            4,
            &[6, 3],
            &[(9, 3, Sum), (10, 3, Mean), (7, 2, WeightedSum)],
            Interaction::Dcn { layers: 2, rank: 3 },
            &[5, 1],
            Naming::TorchRec,
        ),
        10,
        6,
    );
}

#[test]
fn several_chunks_reduce_correctly() {
    // More rows than one chunk, with a partial last chunk.
    check(
        config(
            5,
            &[6, 4],
            &[(40, 4, Sum), (30, 4, Mean)],
            dot(DotOrder::LowerByRow, false),
            &[5, 1],
            Naming::Dlrm,
        ),
        quantrec_train::CHUNK_ROWS * 2 + 37,
        7,
    );
}

/// `curvature_factors` against central differences of the logit in each table's pooled vector
/// (perturbing the one row a one-hot sample looks up), scaled by `sqrt(p(1-p))`.
#[test]
fn curvature_factors_are_scaled_logit_gradients() {
    let cfg = config(
        5,
        &[7, 4],
        &[(11, 4, Sum), (9, 4, Sum), (13, 4, Sum)],
        dot(DotOrder::LowerByRow, false),
        &[6, 1],
        Naming::Dlrm,
    );
    let mut checked = 0;
    for seed in 0..4u64 {
        let mut batch = random_batch(&cfg, 1, 1, 40 + seed);
        for (t, f) in batch.sparse.iter_mut().enumerate() {
            // One id per bag (the helper may draw empty bags).
            let id = (seed as i64 * 5 + t as i64) % 9;
            *f = quantrec_data::SparseFeature::one_hot(vec![id]);
        }
        let mut tr = Trainer::new(cfg.clone(), TrainOptions::default()).unwrap();
        let f = tr.curvature_factors(&batch).unwrap();
        assert_eq!(f.factors.len(), f.width);
        assert_eq!(f.table_cols.len(), 3);
        let logit = tr.predict(&batch).unwrap()[0];
        let p = 1.0 / (1.0 + (-f64::from(logit)).exp());
        let scale = (p * (1.0 - p)).sqrt();
        for t in 0..3 {
            let name = format!("emb_l.{t}.weight");
            let id = batch.sparse[t].ids[0] as usize;
            for c in 0..4 {
                let i = id * 4 + c;
                let h = 1e-3f32;
                let orig = tr.parameter(&name).unwrap()[i];
                tr.parameter_mut(&name).unwrap()[i] = orig + h;
                let up = tr.predict(&batch).unwrap()[0];
                tr.parameter_mut(&name).unwrap()[i] = orig - h;
                let down = tr.predict(&batch).unwrap()[0];
                tr.parameter_mut(&name).unwrap()[i] = orig;
                let num = f64::from(up - down) / (2.0 * f64::from(h)) * scale;
                let got = f64::from(f.factors[f.table_cols[t] + c]);
                assert!(
                    (num - got).abs() <= 2e-3 + 3e-2 * num.abs(),
                    "table {t} col {c}: factor {got}, finite difference {num}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 48);
}
