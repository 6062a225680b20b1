//! The streaming text reader (Criteo TSV, or a schema given as JSON), optionally gzip.
//!
//! Input: one flags byte, then either the text (Criteo preset) or `schema JSON \0 text`.
//! Flags: bit 0 schema given, bits 1-2 table rows, bits 3-5 batch size - 1, bit 6 skip bad lines,
//! bit 7 gzip-compressed text.
#![no_main]

use std::io::{BufReader, Cursor};

use flate2::read::MultiGzDecoder;
use libfuzzer_sys::fuzz_target;
use quantrec_data::batch_ops::validate;
use quantrec_data::text::TextSource;
use quantrec_data::{BatchSource, Schema};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (schema, text) = if flags & 1 == 0 {
        (Schema::criteo(), rest)
    } else {
        let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let Ok(s) = serde_json::from_slice::<Schema>(&rest[..split]) else {
            return;
        };
        (s, rest.get(split + 1..).unwrap_or(&[]))
    };
    let rows = [1usize, 3, 1000, 1 << 40][usize::from((flags >> 1) & 3)];
    let table_rows = vec![rows; schema.n_sparse()];
    let batch_size = 1 + usize::from((flags >> 3) & 7);
    let skip = flags & 0x40 != 0;
    let cursor = Cursor::new(text.to_vec());
    let reader: Box<dyn std::io::BufRead + Send> = if flags & 0x80 != 0 {
        Box::new(BufReader::new(MultiGzDecoder::new(cursor)))
    } else {
        Box::new(cursor)
    };
    let Ok(mut src) = TextSource::new(reader, "fuzz.tsv", &schema, &table_rows, batch_size, skip)
    else {
        return;
    };
    let mut rows_seen = 0u64;
    loop {
        match src.next_batch() {
            Ok(Some(b)) => {
                assert!(b.size >= 1 && b.size <= batch_size, "batch of {}", b.size);
                validate(&b, &table_rows).expect("the reader yields valid batches");
                assert_eq!(b.n_dense, src.n_dense());
                assert!(
                    b.dense.iter().all(|x| x.is_finite()),
                    "non-finite dense value"
                );
                assert_eq!(b.labels.is_some(), schema.has_label());
                rows_seen += b.size as u64;
            }
            Ok(None) => break,
            Err(_) => {
                // An error ends the stream.
                assert!(matches!(src.next_batch(), Ok(None)));
                break;
            }
        }
    }
    assert_eq!(rows_seen, src.stats().rows);
});
