//! Borrowed inputs: `predict_view` / `score_view` on KeyedJaggedTensor-style windows give the
//! owned batch's bits and refuse the same bad inputs with the same typed errors.

mod common;

use common::{import, inputs, kjt, kjt_view, multi_hot};
use quantrec_data::Batch;
use quantrec_kernels::KernelError;
use quantrec_model::config::PoolingMode;
use quantrec_model::score::Predictions;
use quantrec_model::{Model, ModelError, Plan, Scratch};

fn model(name: &str, pooling: Option<PoolingMode>) -> Model {
    let imp = import(name);
    let mut config = imp.config.clone();
    if let Some(p) = pooling {
        for t in &mut config.tables {
            t.pooling = p;
        }
    }
    Model::from_parts(&config, &imp.weights, &Plan::f32(&config)).unwrap()
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Owned batch vs its KJT view, probabilities and logits, at a small chunk size (so chunks start
/// inside every table's window) and the default one.
fn assert_same_bits(m: &Model, batch: &Batch) {
    let k = kjt(batch);
    let view = kjt_view(batch, &k);
    assert!(
        view.sparse.iter().skip(1).any(|f| f.base > 0),
        "windows start past 0"
    );
    for chunk in [7, 256] {
        let mut m = m.clone();
        m.set_chunk_size(chunk);
        let (mut a, mut b) = (Scratch::new(), Scratch::new());
        let want = bits(m.predict(batch, &mut a).unwrap());
        assert_eq!(bits(m.predict_view(&view, &mut b).unwrap()), want);
        let want = bits(m.predict_logits(batch, &mut a).unwrap());
        assert_eq!(bits(m.predict_logits_view(&view, &mut b).unwrap()), want);
        assert_eq!(
            bits(m.predict_logits_view(&batch.view(), &mut b).unwrap()),
            want
        );
    }
}

#[test]
fn kjt_windows_predict_the_owned_batchs_bits() {
    for name in ["dlrm_dot", "torchrec_dlrm", "torchrec_dlrm_dcn"] {
        let m = model(name, None);
        let fixture = inputs(name).batch;
        assert_same_bits(&m, &fixture);
    }
    let weighted = model("dlrm_dot", Some(PoolingMode::WeightedSum));
    assert_same_bits(&weighted, &multi_hot(&weighted, 300, 11));
    let mean = model("torchrec_dlrm", Some(PoolingMode::Mean));
    assert_same_bits(&mean, &multi_hot(&mean, 300, 12));
}

#[test]
fn score_view_matches_score_and_refuses_non_finite_dense_the_same_way() {
    let m = model("dlrm_dot", None);
    let mut batch = inputs("dlrm_dot").batch;
    batch.labels = Some((0..batch.size).map(|i| (i % 2) as f32).collect());
    let k = kjt(&batch);
    let (mut owned, mut viewed) = (Predictions::default(), Predictions::default());
    owned.score(&m, &batch, &mut Scratch::new()).unwrap();
    viewed
        .score_view(&m, &kjt_view(&batch, &k), &mut Scratch::new())
        .unwrap();
    assert_eq!(owned, viewed);

    batch.dense[3 * batch.n_dense + 2] = f32::NAN;
    let err = |p: Result<(), ModelError>| format!("{:?}", p.unwrap_err());
    let want = err(owned.score(&m, &batch, &mut Scratch::new()));
    let got = err(viewed.score_view(&m, &kjt_view(&batch, &k), &mut Scratch::new()));
    assert_eq!(got, want);
    assert!(want.starts_with("NonFiniteDense"), "{want}");
}

#[test]
fn bad_views_are_refused_with_the_owned_batchs_errors() {
    let m = model("dlrm_dot", None);
    let good = inputs("dlrm_dot").batch;
    let mut s = Scratch::new();

    // An id out of range names the same table, bag (counted from the batch start), id and rows.
    let mut bad = good.clone();
    let rows = m.config().tables[3].rows;
    bad.sparse[3].ids[5] = rows as i64;
    let mut small = m.clone();
    small.set_chunk_size(4);
    let want = format!("{:?}", small.predict(&bad, &mut s).unwrap_err());
    let k = kjt(&bad);
    let got = format!(
        "{:?}",
        small.predict_view(&kjt_view(&bad, &k), &mut s).unwrap_err()
    );
    assert_eq!(got, want);
    assert!(matches!(
        small.predict_view(&kjt_view(&bad, &k), &mut s),
        Err(ModelError::Kernel(KernelError::IdOutOfRange { table: 3, id, .. })) if id == rows as i64
    ));

    // Decreasing offsets: the same table and bag; the offsets are the window's own values.
    let mut bad = good.clone();
    bad.sparse[2].offsets[5] = 10_000;
    let k = kjt(&bad);
    let view = kjt_view(&bad, &k);
    let base = view.sparse[2].base;
    match m.predict_view(&view, &mut s) {
        Err(ModelError::OffsetsDecrease {
            table: 2,
            bag: 5,
            offset,
            ..
        }) => assert_eq!(offset - base, 10_000),
        other => panic!("expected OffsetsDecrease, got {other:?}"),
    }

    // A window whose ids are one short of its last offset.
    let k = kjt(&good);
    let mut view = kjt_view(&good, &k);
    let ids = view.sparse[1].ids;
    view.sparse[1].ids = &ids[..ids.len() - 1];
    assert!(matches!(
        m.predict_view(&view, &mut s),
        Err(ModelError::BagBounds { table: 1, ids, last, .. })
            if last - view.sparse[1].base == ids as i64 + 1
    ));

    // Shapes: dense one short, a table missing, weights missing for weighted pooling.
    let mut view = kjt_view(&good, &k);
    view.dense = &good.dense[1..];
    assert!(matches!(
        m.predict_view(&view, &mut s),
        Err(ModelError::BatchShape { expected, found, .. }) if found + 1 == expected
    ));
    let mut view = kjt_view(&good, &k);
    view.sparse.pop();
    assert!(matches!(
        m.predict_view(&view, &mut s),
        Err(ModelError::BatchShape { .. })
    ));
    let weighted = model("dlrm_dot", Some(PoolingMode::WeightedSum));
    assert!(matches!(
        weighted.predict_view(&kjt_view(&good, &k), &mut s),
        Err(ModelError::MissingBagWeights { table: 0 })
    ));
}
