//! Regression tests for what fuzzing the readers found or the robustness review asked for: hostile
//! inputs get typed errors, and nothing allocates beyond what the input backs.

use std::io::Cursor;
use std::path::Path;

use quantrec_data::batchfile::read_batch_bytes;
use quantrec_data::text::{MAX_LINE_BYTES, TextSource};
use quantrec_data::{BatchSource, DataError, Schema};
use quantrec_testkit::safetensors_bytes as safetensors;

fn source(text: Vec<u8>, schema: &Schema, rows: &[usize], skip: bool) -> TextSource {
    TextSource::new(Box::new(Cursor::new(text)), "mem", schema, rows, 4, skip).unwrap()
}

fn dense_ids_schema(separator: Option<char>) -> Schema {
    let sep = separator.map_or(String::new(), |c| format!(r#", "separator": "{c}""#));
    serde_json::from_str(&format!(
        r#"{{"delimiter": ",", "columns": [{{"role": "label"}},
            {{"role": "dense", "transform": "none"}}, {{"role": "sparse", "kind": "ids"{sep}}}]}}"#
    ))
    .unwrap()
}

#[test]
fn a_newline_free_stream_is_refused_at_the_line_limit() {
    // 1 MiB + 10 bytes without a line break (a binary file, a runaway multi-hot list).
    let mut text = b"1,0.5,".to_vec();
    text.extend(std::iter::repeat_n(b'1', MAX_LINE_BYTES + 4));
    let schema = dense_ids_schema(None);
    let mut s = source(text, &schema, &[10], false);
    match s.next_batch() {
        Err(DataError::LineTooLong { line, limit, .. }) => {
            assert_eq!((line, limit), (1, MAX_LINE_BYTES))
        }
        other => panic!("{other:?}"),
    }
    assert!(s.next_batch().unwrap().is_none());
}

#[test]
fn overlong_lines_are_skipped_and_counted_and_line_numbers_stay_right() {
    let schema = dense_ids_schema(Some(' '));
    let long = format!("1,0.5,{}", "3 ".repeat(40));
    let text = format!("0,1,1 2\n{long}\n1,2,4\n{long}");
    let s = source(text.clone().into_bytes(), &schema, &[10], true).with_max_line_bytes(32);
    let mut s = s;
    let b = s.next_batch().unwrap().unwrap();
    assert_eq!(b.size, 2);
    assert_eq!(b.sparse[0].ids, vec![1, 2, 4]);
    assert_eq!(s.stats().skipped_lines, 2);
    assert!(s.stats().examples[0].contains("mem:2: line longer than 32"));
    assert!(s.stats().examples[1].contains("mem:4: line longer than 32"));
    // Without skipping, the first overlong line is the error, after the good line before it.
    let mut s = source(text.into_bytes(), &schema, &[10], false).with_max_line_bytes(32);
    assert_eq!(s.next_batch().unwrap().unwrap().size, 1);
    assert!(matches!(
        s.next_batch(),
        Err(DataError::LineTooLong { line: 2, .. })
    ));
    // A line of exactly the limit (break included) is accepted.
    let line = b"1,0.5,3\n".to_vec();
    let mut s = source(line.clone(), &schema, &[10], false).with_max_line_bytes(line.len());
    assert_eq!(s.next_batch().unwrap().unwrap().size, 1);
}

#[test]
fn untransformed_dense_values_beyond_f32_are_refused() {
    // Found while writing the text_reader target: 1e300 is a finite f64 but inf as f32.
    let schema = dense_ids_schema(None);
    for v in ["1e300", "-3.5e38"] {
        let mut s = source(format!("1,{v},3\n").into_bytes(), &schema, &[10], false);
        match s.next_batch() {
            Err(DataError::Field {
                line: 1, column: 2, ..
            }) => {}
            other => panic!("{v}: {other:?}"),
        }
    }
    // With log1p the same value is fine (ln(1 + 1e300) ≈ 690.8).
    let mut s = source(
        b"1\t1e300"
            .iter()
            .chain(&[b'\t'; 25])
            .copied()
            .chain(*b"\n")
            .collect(),
        &serde_json::from_str(&format!(
            r#"{{"columns": [{{"role": "label"}}, {{"role": "dense"}}{}]}}"#,
            r#", {"role": "ignore"}"#.repeat(25)
        ))
        .unwrap(),
        &[],
        false,
    );
    let b = s.next_batch().unwrap().unwrap();
    assert!((b.dense[0] - 690.7755).abs() < 1e-3, "{}", b.dense[0]);
}

#[test]
fn a_batch_file_claiming_2_pow_60_featureless_samples_is_refused() {
    let bytes = safetensors(
        r#"{"dense":{"dtype":"F32","shape":[1152921504606846976,0],"data_offsets":[0,0]}}"#,
        &[],
    );
    match read_batch_bytes(Path::new("x.safetensors"), &bytes, &[]) {
        Err(DataError::BatchFile { tensor, .. }) => assert_eq!(tensor, "dense"),
        other => panic!("{other:?}"),
    }
    // The same count with labels still has no features.
    let bytes = safetensors(
        r#"{"dense":{"dtype":"F32","shape":[2,0],"data_offsets":[0,0]},"labels":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        &[0; 8],
    );
    assert!(matches!(
        read_batch_bytes(Path::new("x.safetensors"), &bytes, &[]),
        Err(DataError::BatchFile { .. })
    ));
    // An empty batch file (0 samples) is still fine.
    let bytes = safetensors(
        r#"{"dense":{"dtype":"F32","shape":[0,0],"data_offsets":[0,0]}}"#,
        &[],
    );
    assert_eq!(
        read_batch_bytes(Path::new("x.safetensors"), &bytes, &[])
            .unwrap()
            .size,
        0
    );
}

#[test]
fn huge_or_lying_safetensors_headers_are_typed_errors() {
    let path = Path::new("x.safetensors");
    // A header length of 2^60 (and of 99 MB, more than the file holds).
    for n in [1u64 << 60, 99_000_000] {
        let mut bytes = n.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        assert!(matches!(
            read_batch_bytes(path, &bytes, &[]),
            Err(DataError::SafeTensors { .. })
        ));
    }
    // A shape whose element count overflows, and data offsets beyond the file.
    for header in [
        r#"{"dense":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}"#,
        r#"{"dense":{"dtype":"F32","shape":[1,1],"data_offsets":[0,1099511627776]}}"#,
    ] {
        assert!(matches!(
            read_batch_bytes(path, &safetensors(header, &[]), &[]),
            Err(DataError::SafeTensors { .. })
        ));
    }
}

#[test]
fn samples_before_an_error_are_yielded_and_counted_once() {
    // Found by the text_reader target (fuzz/regressions/text_reader/rows_then_error): rows read
    // before an error in the same batch were dropped but counted in `stats().rows`.
    let schema = dense_ids_schema(None);
    let mut s = source(
        b"1,0.5,3\n0,1,2\n1,x,3\n0,1,1\n".to_vec(),
        &schema,
        &[10],
        false,
    );
    let b = s.next_batch().unwrap().unwrap();
    assert_eq!((b.size, b.sparse[0].ids.clone()), (2, vec![3, 2]));
    assert_eq!(s.stats().rows, 2);
    assert!(matches!(
        s.next_batch(),
        Err(DataError::Field { line: 3, .. })
    ));
    assert!(s.next_batch().unwrap().is_none());
    assert_eq!(s.stats().rows, 2);
    // A truncated gzip stream: the decoded rows come out, then the I/O error.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, b"1,0.5,3\n0,1,2\n1,2,3\n").unwrap();
    let mut bytes = gz.finish().unwrap();
    bytes.truncate(bytes.len() - 6);
    let reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(Cursor::new(bytes)));
    let mut s = TextSource::new(Box::new(reader), "mem.gz", &schema, &[10], 4, false).unwrap();
    let mut rows = 0;
    let mut failed = false;
    for _ in 0..4 {
        match s.next_batch() {
            Ok(Some(b)) => rows += b.size as u64,
            Ok(None) => break,
            Err(DataError::Io { .. }) => failed = true,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(failed, "a truncated gzip stream is an I/O error");
    assert_eq!(rows, s.stats().rows);
}
