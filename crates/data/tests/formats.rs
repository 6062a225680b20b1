//! Schema-driven text files and safetensors batch files.

use std::path::PathBuf;

use quantrec_data::hash::fnv1a64;
use quantrec_data::schema::Schema;
use quantrec_data::source::{FileKind, detect, read_all};
use quantrec_data::{Batch, SparseFeature};
use quantrec_data::{DataError, SourceSpec, open_source, read_batch_file, write_batch_file};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("quantrec-data-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

const SCHEMA: &str = r#"{
  "delimiter": ",", "header": true,
  "columns": [
    {"name": "click",  "role": "label"},
    {"name": "age",    "role": "dense", "transform": "none"},
    {"name": "visits", "role": "dense"},
    {"name": "user",   "role": "sparse", "kind": "ids"},
    {"name": "tags",   "role": "sparse", "kind": "hash", "separator": "|"},
    {"name": "ts",     "role": "ignore"},
    {"name": "item",   "role": "sparse", "kind": "ids", "separator": ";"}
  ]}"#;

fn schema_spec(dir: &std::path::Path, batch: usize) -> SourceSpec {
    let schema_path = dir.join("schema.json");
    std::fs::write(&schema_path, SCHEMA).unwrap();
    SourceSpec {
        batch_size: batch,
        table_rows: vec![10, 1000, 5],
        schema: Some(Schema::from_json_file(&schema_path).unwrap()),
        skip_bad_lines: false,
    }
}

#[test]
fn schema_reader_ids_hash_multi_hot() {
    let dir = temp_dir("schema");
    let data = dir.join("log.csv");
    std::fs::write(
        &data,
        "click,age,visits,user,tags,ts,item\n\
         1,0.25,3,7,a|bb|c,2024,0;4\n\
         0,-1.5,,0,,2025,\n\
         1,2,-4,9,bb,x,3\r\n",
    )
    .unwrap();
    let spec = schema_spec(&dir, 2);
    let mut src = open_source(&data, &spec).unwrap();
    assert_eq!((src.n_dense(), src.n_tables()), (2, 3));
    let first = src.next_batch().unwrap().unwrap();
    assert_eq!(first.size, 2);
    let all = {
        let rest = read_all(src.as_mut()).unwrap();
        let mut all = first;
        quantrec_data::batch_ops::append(&mut all, &rest).unwrap();
        all
    };
    assert_eq!(all.size, 3);
    assert_eq!(all.labels, Some(vec![1.0, 0.0, 1.0]));
    // age is used as is; visits is log1p'd, missing and negative = 0.
    assert_eq!(
        all.dense,
        vec![0.25, (4f64).ln() as f32, -1.5, 0.0, 2.0, 0.0]
    );
    assert_eq!(all.sparse[0].ids, vec![7, 0, 9]);
    assert_eq!(all.sparse[0].offsets, vec![0, 1, 2, 3]);
    let h = |s: &str| (fnv1a64(s.as_bytes()) % 1000) as i64;
    assert_eq!(all.sparse[1].ids, vec![h("a"), h("bb"), h("c"), h("bb")]);
    assert_eq!(all.sparse[1].offsets, vec![0, 3, 3, 4]);
    assert_eq!(all.sparse[2].ids, vec![0, 4, 3]);
    assert_eq!(all.sparse[2].offsets, vec![0, 2, 2, 3]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn ids_out_of_range_name_line_column_and_id() {
    let dir = temp_dir("ids-range");
    let spec = schema_spec(&dir, 4);
    for (line, expect_col, expect_id) in [
        ("1,0,0,10,a,0,1", 4, 10),
        ("1,0,0,1,a,0,2;5", 7, 5),
        ("1,0,0,-1,a,0,1", 4, -1),
    ] {
        let data = dir.join("ids.csv");
        std::fs::write(&data, format!("h\n1,0,0,3,a,0,1\n{line}\n")).unwrap();
        match read_all(open_source(&data, &spec).unwrap().as_mut()) {
            Err(DataError::IdOutOfRange {
                line,
                column,
                id,
                rows,
                ..
            }) => {
                assert_eq!((line, column, id), (3, expect_col, expect_id));
                assert_eq!(rows, if expect_col == 4 { 10 } else { 5 });
            }
            other => panic!("{other:?}"),
        }
    }
    // A non-numeric id is a field error, not hashed.
    let data = dir.join("ids.csv");
    std::fs::write(&data, "h\n1,0,0,abc,a,0,1\n").unwrap();
    let err = read_all(open_source(&data, &spec).unwrap().as_mut()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Field {
                line: 2,
                column: 4,
                ..
            }
        ),
        "{err:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn schema_must_match_the_tables() {
    let dir = temp_dir("schema-tables");
    let data = dir.join("x.csv");
    std::fs::write(&data, "h\n").unwrap();
    let mut spec = schema_spec(&dir, 4);
    spec.table_rows = vec![10, 1000];
    assert!(matches!(
        open_source(&data, &spec).map(|_| ()),
        Err(DataError::SchemaTableCount {
            sparse_columns: 3,
            tables: 2
        })
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

fn multi_hot_batch() -> Batch {
    Batch {
        size: 3,
        n_dense: 2,
        dense: vec![0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
        sparse: vec![
            SparseFeature::one_hot(vec![4, 0, 9]),
            SparseFeature {
                offsets: vec![0, 2, 2, 5],
                ids: vec![1, 2, 3, 4, 5],
                weights: Some(vec![0.5, 1.0, 2.0, 0.25, 1.5]),
            },
        ],
        labels: Some(vec![1.0, 0.0, 0.0]),
    }
}

#[test]
fn batch_file_round_trip_and_slicing() {
    let dir = temp_dir("batchfile");
    let path = dir.join("b.bin");
    let batch = multi_hot_batch();
    write_batch_file(&path, &batch).unwrap();
    // Detected by content, whatever the name.
    assert_eq!(detect(&path).unwrap(), FileKind::BatchFile);
    assert_eq!(read_batch_file(&path, &[10, 6]).unwrap(), batch);
    let mut src = open_source(&path, &SourceSpec::new(vec![10, 6], 2)).unwrap();
    let a = src.next_batch().unwrap().unwrap();
    let b = src.next_batch().unwrap().unwrap();
    assert!(src.next_batch().unwrap().is_none());
    assert_eq!((a.size, b.size), (2, 1));
    assert_eq!(b.sparse[1].offsets, vec![0, 3]);
    assert_eq!(b.sparse[1].weights, Some(vec![2.0, 0.25, 1.5]));
    // Ids are checked against the table sizes.
    let err = read_batch_file(&path, &[10, 5]).unwrap_err();
    assert!(
        matches!(&err, DataError::BatchFile { tensor, .. } if tensor == "indices_1"),
        "{err:?}"
    );
    assert!(err.to_string().contains("id 5 at position 4"), "{err}");
    // An inconsistent batch is refused by the writer.
    let mut bad = multi_hot_batch();
    bad.sparse[0].offsets[3] = 2;
    assert!(matches!(
        write_batch_file(&dir.join("bad.bin"), &bad),
        Err(DataError::InvalidBatch { .. })
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn reads_the_fixture_inputs_layout() {
    let path = quantrec_testkit::fixture(env!("CARGO_MANIFEST_DIR"), "dlrm_dot.inputs.safetensors");
    let rows = [97, 1000, 500, 31, 2000, 12, 300, 77];
    let batch = read_batch_file(&path, &rows).unwrap();
    assert_eq!((batch.size, batch.n_dense, batch.sparse.len()), (64, 13, 8));
    // `expected` holds model outputs, not labels.
    assert_eq!(batch.labels, None);
    let raw = quantrec_testkit::read(&path);
    let st = safetensors::SafeTensors::deserialize(&raw).unwrap();
    for (t, f) in batch.sparse.iter().enumerate() {
        let starts: Vec<i64> = st
            .tensor(&format!("offsets_{t}"))
            .unwrap()
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(&f.offsets[..64], &starts[..]);
        assert_eq!(*f.offsets.last().unwrap() as usize, f.ids.len());
    }
    assert_eq!(batch.sparse[0].ids.len(), 92);
    // Too few rows for table 4's ids: refused with the tensor's name.
    let mut small = rows;
    small[4] = 3;
    assert!(matches!(
        read_batch_file(&path, &small),
        Err(DataError::BatchFile { .. })
    ));
}
