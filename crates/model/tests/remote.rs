//! Remote tables through the `RowSource` seam: bit-identical predictions (one-hot, multi-hot with
//! empty bags, mean and weighted pooling, f32 and quantized tables) and clean errors.

mod common;

use std::sync::{Arc, Mutex};

use common::{import, inputs, kjt, kjt_view, multi_hot};
use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::KernelError;
use quantrec_kernels::formats::TableFormat;
use quantrec_model::config::PoolingMode;
use quantrec_model::remote::{RowRequest, RowSource, TableShape};
use quantrec_model::{LayerPrecision, Model, ModelError, Plan, Scratch};

/// A source that copies rows out of a model's own tables, counting the rows it was asked for.
#[derive(Debug)]
struct CopySource {
    shapes: Vec<TableShape>,
    bytes: Vec<Vec<u8>>,
    rows_asked: Mutex<Vec<usize>>,
    fail: bool,
}

impl CopySource {
    fn of(model: &Model) -> CopySource {
        CopySource {
            shapes: model
                .tables()
                .iter()
                .map(|t| TableShape {
                    format: t.format,
                    rows: t.rows,
                    dim: t.dim,
                })
                .collect(),
            bytes: model
                .tables()
                .iter()
                .map(|t| t.bytes.as_slice().to_vec())
                .collect(),
            rows_asked: Mutex::new(vec![0; model.tables().len()]),
            fail: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("store unreachable")]
struct Unreachable;

impl RowSource for CopySource {
    fn table_shapes(&self) -> Vec<TableShape> {
        self.shapes.clone()
    }

    fn fetch_rows(
        &self,
        requests: &[RowRequest<'_>],
        out: &mut [Vec<u8>],
    ) -> quantrec_model::Result<()> {
        if self.fail {
            return Err(ModelError::RemoteRows {
                table: 0,
                source: Box::new(Unreachable),
            });
        }
        let mut asked = self.rows_asked.lock().unwrap();
        for (r, o) in requests.iter().zip(out) {
            assert!(
                r.rows.windows(2).all(|w| w[0] < w[1]),
                "rows sorted, unique"
            );
            let rb = self.shapes[r.table].row_bytes();
            asked[r.table] += r.rows.len();
            for &id in r.rows {
                let id = id as usize;
                o.extend_from_slice(&self.bytes[r.table][id * rb..(id + 1) * rb]);
            }
        }
        Ok(())
    }
}

fn build(name: &str, table: TableFormat, pooling: &[PoolingMode]) -> Model {
    let imp = import(name);
    let mut config = imp.config.clone();
    for (t, p) in config.tables.iter_mut().zip(pooling.iter().cycle()) {
        t.pooling = *p;
    }
    let plan = Plan::uniform(&config, LayerPrecision::F32, table);
    Model::from_parts(&config, &imp.weights, &plan).unwrap()
}

fn assert_bit_identical(local: &Model, batch: &Batch) -> Arc<CopySource> {
    let mut remote = local.clone();
    let source = Arc::new(CopySource::of(local));
    remote.set_row_source(source.clone()).unwrap();
    let mut s = Scratch::new();
    let want: Vec<u32> = local
        .predict_logits(batch, &mut s)
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect();
    let got: Vec<u32> = remote
        .predict_logits(batch, &mut s)
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect();
    assert_eq!(got, want, "remote logits differ from in-memory ones");
    source
}

#[test]
fn one_hot_fixture_inputs_are_bit_identical_for_every_table_format() {
    let batch = inputs("dlrm_dot").batch;
    for format in [
        TableFormat::F32,
        TableFormat::Fused8,
        TableFormat::Fused4,
        TableFormat::Fused2,
    ] {
        let m = build("dlrm_dot", format, &[PoolingMode::Sum]);
        let source = assert_bit_identical(&m, &batch);
        let asked = source.rows_asked.lock().unwrap();
        for (t, f) in batch.sparse.iter().enumerate() {
            let mut ids = f.ids.clone();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(
                asked[t],
                ids.len(),
                "table {t}: only the unique rows are fetched"
            );
        }
    }
}

#[test]
fn multi_hot_batches_with_empty_bags_mean_and_weighted_pooling_are_bit_identical() {
    let poolings = [
        PoolingMode::Sum,
        PoolingMode::Mean,
        PoolingMode::WeightedSum,
    ];
    for format in [TableFormat::F32, TableFormat::Fused4] {
        let mut m = build("dlrm_dot", format, &poolings);
        // Several chunks, so chunked execution over the compact tables is covered too.
        m.set_chunk_size(16);
        for seed in 0..3 {
            assert_bit_identical(&m, &multi_hot(&m, 70, seed));
        }
        // A batch in which some table has no id at all (a table of zero local rows).
        let mut b = multi_hot(&m, 5, 9);
        b.sparse[1] = SparseFeature::from_lengths(&[0; 5], Vec::new());
        b.sparse[1].weights = Some(Vec::new());
        assert_bit_identical(&m, &b);
    }
}

#[test]
fn kjt_views_through_a_source_are_bit_identical_and_name_the_same_bag() {
    let poolings = [PoolingMode::Sum, PoolingMode::WeightedSum];
    let mut m = build("dlrm_dot", TableFormat::Fused4, &poolings);
    m.set_chunk_size(16);
    let mut remote = m.clone();
    remote.set_row_source(Arc::new(CopySource::of(&m))).unwrap();
    let mut batch = multi_hot(&m, 70, 5);
    let k = kjt(&batch);
    let want = m
        .predict_logits(&batch, &mut Scratch::new())
        .unwrap()
        .to_vec();
    let mut s = Scratch::new();
    let got = remote
        .predict_logits_view(&kjt_view(&batch, &k), &mut s)
        .unwrap();
    assert_eq!(
        got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        want.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    // An id out of range in a window that starts past 0: the bag is the batch's own.
    let rows = m.config().tables[4].rows;
    let ids = &mut batch.sparse[4].ids;
    let at = ids.len() / 2;
    ids[at] = rows as i64;
    let k = kjt(&batch);
    let want = format!("{:?}", m.predict(&batch, &mut Scratch::new()).unwrap_err());
    let got = format!(
        "{:?}",
        remote
            .predict_view(&kjt_view(&batch, &k), &mut Scratch::new())
            .unwrap_err()
    );
    assert_eq!(got, want);
}

#[test]
fn source_errors_ids_out_of_range_and_mismatched_stores_are_typed_errors() {
    let m = build("dlrm_dot", TableFormat::Fused8, &[PoolingMode::Sum]);
    let batch = inputs("dlrm_dot").batch;

    let mut failing = m.clone();
    let mut source = CopySource::of(&m);
    source.fail = true;
    failing.set_row_source(Arc::new(source)).unwrap();
    match failing.predict(&batch, &mut Scratch::new()) {
        Err(ModelError::RemoteRows { table: 0, source }) => {
            assert_eq!(source.to_string(), "store unreachable")
        }
        other => panic!("expected RemoteRows, got {other:?}"),
    }

    let mut remote = m.clone();
    remote.set_row_source(Arc::new(CopySource::of(&m))).unwrap();
    let mut bad = batch.clone();
    let rows = m.config().tables[2].rows;
    bad.sparse[2].ids[3] = rows as i64;
    // The same error as the in-memory model's (same table, bag, id and row count).
    let want_bag = match m.predict(&bad, &mut Scratch::new()) {
        Err(ModelError::Kernel(KernelError::IdOutOfRange { bag, .. })) => bag,
        other => panic!("in memory: expected IdOutOfRange, got {other:?}"),
    };
    match remote.predict(&bad, &mut Scratch::new()) {
        Err(ModelError::Kernel(KernelError::IdOutOfRange {
            table: 2,
            bag,
            id,
            rows: r,
        })) => assert_eq!((bag, id, r), (want_bag, rows as i64, rows)),
        other => panic!("expected IdOutOfRange, got {other:?}"),
    }

    let other = build("dlrm_dot", TableFormat::Fused4, &[PoolingMode::Sum]);
    let mut mismatched = m.clone();
    match mismatched.set_row_source(Arc::new(CopySource::of(&other))) {
        Err(ModelError::RemoteTableMismatch { table: 0, .. }) => {}
        other => panic!("expected RemoteTableMismatch, got {other:?}"),
    }
    assert!(mismatched.row_source().is_none());
}
