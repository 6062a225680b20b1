//! Safetensors batch files (`quantrec_data::batchfile`) and inputs files (`quantrec_model::inputs`).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use quantrec_data::batch_ops::{slice, validate};
use quantrec_data::batchfile::read_batch_bytes;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.safetensors");
    for table_rows in [&[][..], &[4, 1000][..]] {
        if let Ok(b) = read_batch_bytes(path, data, table_rows) {
            validate(&b, table_rows).expect("an accepted batch file is valid");
            // Cut it as BatchFileSource does.
            let mut start = 0;
            while start < b.size {
                let end = (start + 3).min(b.size);
                let part = slice(&b, start, end);
                validate(&part, table_rows).expect("slices of a valid batch are valid");
                start = end;
            }
        }
    }
    let _ = quantrec_model::inputs::read_inputs("fuzz", data);
});
