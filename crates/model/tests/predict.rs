//! Predict: determinism, chunked parallel execution, thread safety, observers, batch refusals.

mod common;

use common::{assert_close, import, inputs};
use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::KernelError;
use quantrec_model::forward::{Observer, View, sigmoid};
use quantrec_model::{Model, ModelError, Plan, Scratch};

fn model(name: &str) -> Model {
    let imp = import(name);
    let plan = Plan::f32(&imp.config);
    Model::from_parts(&imp.config, &imp.weights, &plan).unwrap()
}

/// Concatenates `copies` copies of `b`.
fn tile(b: &Batch, copies: usize) -> Batch {
    let mut out = Batch::unlabeled(
        b.size * copies,
        b.n_dense,
        b.dense.repeat(copies),
        Vec::new(),
    );
    for f in &b.sparse {
        let lengths: Vec<usize> = f
            .offsets
            .windows(2)
            .map(|w| (w[1] - w[0]) as usize)
            .collect();
        out.sparse.push(SparseFeature::from_lengths(
            &lengths.repeat(copies),
            f.ids.repeat(copies),
        ));
    }
    out
}

#[test]
fn predictions_are_deterministic_and_scratch_is_reusable() {
    let m = model("torchrec_dlrm_dcn");
    let batch = inputs("torchrec_dlrm_dcn").batch;
    let mut s = Scratch::new();
    let first = m.predict(&batch, &mut s).unwrap().to_vec();
    // A smaller batch in between must not disturb later results.
    let mut one = tile(&batch, 1);
    one.size = 1;
    one.dense.truncate(13);
    for f in &mut one.sparse {
        f.offsets.truncate(2);
        f.ids.truncate(f.offsets[1] as usize);
    }
    let single = m.predict(&one, &mut s).unwrap().to_vec();
    assert_eq!(single.len(), 1);
    assert_close("sample 0 alone", &single, &first[..1], 1e-6, 1e-3);
    assert_eq!(m.predict(&batch, &mut s).unwrap(), &first[..]);
    let empty = Batch::unlabeled(0, 13, vec![], vec![SparseFeature::one_hot(vec![]); 8]);
    assert!(m.predict(&empty, &mut s).unwrap().is_empty());
}

#[test]
fn chunked_parallel_batches_match_the_small_batch() {
    let mut m = model("dlrm_dot");
    let batch = inputs("dlrm_dot").batch;
    let want = m.predict(&batch, &mut Scratch::new()).unwrap().to_vec();
    let big = tile(&batch, 9);
    for chunk in [7, 64, 100, 10_000] {
        m.set_chunk_size(chunk);
        let got = m.predict(&big, &mut Scratch::new()).unwrap().to_vec();
        assert_close(&format!("chunk {chunk}"), &got, &want.repeat(9), 1e-6, 1e-3);
        let logits = m
            .predict_logits(&big, &mut Scratch::new())
            .unwrap()
            .to_vec();
        let p: Vec<f32> = logits.iter().map(|&x| sigmoid(x)).collect();
        assert_eq!(p, got);
    }
}

#[test]
fn two_threads_share_one_model() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Model>();
    let mut m = model("torchrec_dlrm");
    m.set_chunk_size(32);
    let batch = tile(&inputs("torchrec_dlrm").batch, 3);
    let want = m.predict(&batch, &mut Scratch::new()).unwrap().to_vec();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut scratch = Scratch::new();
                    for _ in 0..10 {
                        assert_eq!(m.predict(&batch, &mut scratch).unwrap(), &want[..]);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}

#[derive(Default)]
struct Recorder {
    events: Vec<(String, usize, usize, usize)>,
    last_output: Vec<f32>,
}

impl Observer for Recorder {
    fn observe(&mut self, layer: &str, input: View<'_>, output: View<'_>) {
        assert_eq!(output.data.len(), output.rows * output.cols, "{layer}");
        assert_eq!(input.data.len(), input.rows * input.cols, "{layer}");
        self.events
            .push((layer.to_string(), input.cols, output.cols, output.rows));
        self.last_output = output.data.to_vec();
    }
}

#[test]
fn observers_see_every_layer_in_order_without_changing_outputs() {
    let mut m = model("torchrec_dlrm_dcn");
    let batch = inputs("torchrec_dlrm_dcn").batch;
    let mut s = Scratch::new();
    let want = m.predict_logits(&batch, &mut s).unwrap().to_vec();
    let mut rec = Recorder::default();
    m.predict_observed(&batch, &mut s, &mut rec).unwrap();
    let names: Vec<&str> = rec.events.iter().map(|e| e.0.as_str()).collect();
    let mut expected = vec!["bottom.0", "bottom.1"];
    let tables: Vec<String> = (0..8).map(|t| format!("table.{t}")).collect();
    expected.extend(tables.iter().map(String::as_str));
    expected.extend([
        "cross.0.v",
        "cross.0.w",
        "cross.0",
        "cross.1.v",
        "cross.1.w",
        "cross.1",
    ]);
    expected.extend(["interaction", "top.0", "top.1", "top.2"]);
    assert_eq!(names, expected);
    assert_eq!(rec.events[0], ("bottom.0".into(), 13, 64, 64));
    assert_eq!(rec.events[10], ("cross.0.v".into(), 144, 8, 64));
    assert_eq!(rec.last_output, want);
    // Large batches arrive chunk by chunk.
    m.set_chunk_size(40);
    let mut rec = Recorder::default();
    m.predict_observed(&batch, &mut s, &mut rec).unwrap();
    assert_eq!(
        rec.events
            .iter()
            .filter(|e| e.0 == "bottom.0")
            .map(|e| e.3)
            .collect::<Vec<_>>(),
        vec![40, 24]
    );
}

#[test]
fn bad_batches_are_refused() {
    let m = model("dlrm_dot");
    let good = inputs("dlrm_dot").batch;
    let mut s = Scratch::new();
    let n_tables = good.sparse.len();
    let mut b = good.clone();
    b.n_dense = 12;
    assert!(matches!(
        m.predict(&b, &mut s),
        Err(ModelError::BatchShape {
            what: "dense features per sample",
            expected: 13,
            found: 12,
        })
    ));
    let mut b = good.clone();
    b.dense.pop();
    assert!(matches!(
        m.predict(&b, &mut s),
        Err(ModelError::BatchShape { expected, found, .. }) if found + 1 == expected
    ));
    let mut b = good.clone();
    b.sparse.pop();
    assert!(matches!(
        m.predict(&b, &mut s),
        Err(ModelError::BatchShape { expected, found, .. })
            if expected == n_tables && found == n_tables - 1
    ));
    let mut b = good.clone();
    b.sparse[2].offsets[5] = 10_000;
    assert!(matches!(
        m.predict(&b, &mut s),
        Err(ModelError::OffsetsDecrease {
            table: 2,
            bag: 5,
            offset: 10_000,
            ..
        })
    ));
    let mut b = good.clone();
    b.sparse[2].offsets.pop();
    assert!(matches!(
        m.predict(&b, &mut s),
        Err(ModelError::BagShape { table: 2, expected, found, .. })
            if expected == good.size + 1 && found == good.size
    ));
    let mut b = good.clone();
    let last = b.sparse[1].offsets.len() - 1;
    b.sparse[1].offsets[last] += 1;
    assert!(matches!(
        m.predict(&b, &mut s),
        Err(ModelError::BagBounds { table: 1, ids, last, .. }) if last == ids as i64 + 1
    ));
    let mut b = tile(&good, 5);
    let bag = 200;
    let at = b.sparse[4].offsets[bag] as usize;
    b.sparse[4].ids[at] = 2000;
    let mut m2 = m.clone();
    m2.set_chunk_size(64);
    match m2.predict(&b, &mut s) {
        Err(ModelError::Kernel(KernelError::IdOutOfRange {
            table,
            bag: got,
            id,
            rows,
        })) => {
            assert_eq!((table, got, id, rows), (4, bag, 2000, 2000));
        }
        other => panic!("{other:?}"),
    }
}
