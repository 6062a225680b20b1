//! KServe v2 request decoding (`quantrec_serve::kserve_json`, `tensors::to_batch`) and the gRPC
//! request message: any bytes give a request or a typed error, never a panic, and an accepted
//! request always yields a batch the model can run.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use quantrec_data::batch_ops::validate;
use quantrec_serve::kserve_json::decode;
use quantrec_serve::proto::ModelInferRequest;
use quantrec_serve::tensors::{Signature, to_batch};

fuzz_target!(|data: &[u8]| {
    let Some((&split, body)) = data.split_first() else {
        return;
    };
    // The first byte chooses between a JSON-only body and a binary-data body whose JSON header
    // is `split` bytes long.
    let header_len = (split != 0).then_some(split as usize);
    let sig = Signature {
        n_dense: 3,
        table_rows: vec![4, 1000],
        weighted: vec![false, true],
    };
    if let Ok(req) = decode("fuzz", bytes::Bytes::copy_from_slice(body), header_len)
        && let Ok(batch) = to_batch("fuzz", &sig, req.inputs, false)
    {
        validate(&batch, &sig.table_rows).expect("an accepted request is a valid batch");
        assert!(batch.dense.iter().all(|x| x.is_finite()));
    }
    let _ = ModelInferRequest::decode(body);
});
