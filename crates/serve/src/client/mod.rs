//! A small async client of the KServe v2 / Open Inference Protocol, for `quantrec loadgen`, the
//! demo's online day and tests.
//!
//! - [`HttpClient`] (hyper 1): inference as JSON or with Triton's binary tensor data extension,
//!   with an optional request `id`; `POST /v2/models/<m>/feedback` (click labels of served rows);
//!   `GET /v2/models/<m>/accuracy`; readiness, metadata and config.
//! - [`GrpcClient`] (tonic): `ModelInfer` with raw contents (also from a request encoded once,
//!   [`EncodedInfer`]), readiness and config.
//!
//! Both send a [`Batch`] as the server's tensors ([`wire_tensors`]): `dense` FP32
//! `[B, n_dense]` and, when every table is one-hot, `sparse` INT64 `[B, n_tables]`; otherwise the
//! jagged `sparse_lengths` INT32 `[n_tables, B]` + `sparse_values` INT64 (table-major), plus
//! `sparse_weights` FP32 when any table carries per-id weights (1.0 for the others). Every
//! failure is a [`ServeError`]: [`ServeError::Connect`], [`ServeError::HttpStatus`],
//! [`ServeError::GrpcStatus`], [`ServeError::ClientTimeout`], [`ServeError::Transport`],
//! [`ServeError::BadResponse`] or [`ServeError::InvalidUrl`].

mod grpc;
mod http;

pub use self::grpc::{EncodedInfer, GrpcClient};
pub use self::http::{HttpBody, HttpClient, encode_http};

use bytes::Bytes;
use quantrec_data::Batch;
use serde::Serialize;

use crate::tensors::{
    DENSE, Datatype, LOGIT, PROBABILITY, SPARSE, SPARSE_LENGTHS, SPARSE_VALUES, SPARSE_WEIGHTS,
};
use crate::{Result, ServeError};

/// One input tensor as it goes on the wire: name, element type, shape and little-endian bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct WireTensor {
    /// The tensor's name (`dense`, `sparse`, `sparse_lengths`, ...).
    pub name: &'static str,
    /// Its element type.
    pub datatype: Datatype,
    /// Its shape.
    pub shape: Vec<i64>,
    /// Its values, little-endian, row-major.
    pub data: Bytes,
}

impl WireTensor {
    fn new<T: Copy>(
        name: &'static str,
        datatype: Datatype,
        shape: Vec<i64>,
        values: impl Iterator<Item = T>,
        to_le: impl Fn(T) -> Vec<u8>,
    ) -> WireTensor {
        WireTensor {
            name,
            datatype,
            shape,
            data: Bytes::from(values.flat_map(to_le).collect::<Vec<u8>>()),
        }
    }

    /// The values as JSON numbers (for the plain JSON encoding).
    pub fn json_values(&self) -> serde_json::Value {
        let d = &self.data;
        let n = self.datatype.size();
        let vals: Vec<serde_json::Value> = d
            .chunks_exact(n)
            .map(|c| match self.datatype {
                Datatype::Fp32 => serde_json::json!(f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                Datatype::Int32 => serde_json::json!(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                Datatype::Int64 => serde_json::json!(i64::from_le_bytes([
                    c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
                ])),
            })
            .collect();
        serde_json::Value::Array(vals)
    }
}

/// Checks a batch's internal consistency (what a client can know without the model).
fn check_batch(b: &Batch) -> Result<()> {
    let bad = |tensor: &str, reason: String| {
        Err(ServeError::Data {
            tensor: tensor.into(),
            reason,
        })
    };
    if b.size == 0 {
        return bad(DENSE, "a request needs at least one row".into());
    }
    if b.dense.len() != b.size * b.n_dense {
        return bad(
            DENSE,
            format!(
                "{} values for {} rows of {} features",
                b.dense.len(),
                b.size,
                b.n_dense
            ),
        );
    }
    for (t, f) in b.sparse.iter().enumerate() {
        let consistent = f.num_bags() == b.size
            && f.offsets.first() == Some(&0)
            && f.offsets.windows(2).all(|w| w[0] <= w[1])
            && f.offsets.last().is_some_and(|&l| l as usize == f.ids.len())
            && f.weights.as_ref().is_none_or(|w| w.len() == f.ids.len());
        if !consistent {
            return bad(
                SPARSE_VALUES,
                format!(
                    "table {t}: {} offsets, {} ids and {:?} weights do not describe {} bags",
                    f.offsets.len(),
                    f.ids.len(),
                    f.weights.as_ref().map(Vec::len),
                    b.size
                ),
            );
        }
    }
    Ok(())
}

/// The input tensors of `b` (see the module docs for the layout chosen).
pub fn wire_tensors(b: &Batch) -> Result<Vec<WireTensor>> {
    check_batch(b)?;
    let rows = b.size as i64;
    let nt = b.sparse.len();
    let mut out = vec![WireTensor::new(
        DENSE,
        Datatype::Fp32,
        vec![rows, b.n_dense as i64],
        b.dense.iter().copied(),
        |x: f32| x.to_le_bytes().to_vec(),
    )];
    let one_hot = b
        .sparse
        .iter()
        .all(|f| f.weights.is_none() && f.offsets.windows(2).all(|w| w[1] - w[0] == 1));
    if one_hot {
        out.push(WireTensor::new(
            SPARSE,
            Datatype::Int64,
            vec![rows, nt as i64],
            (0..b.size).flat_map(|r| b.sparse.iter().map(move |f| f.ids[r])),
            |x: i64| x.to_le_bytes().to_vec(),
        ));
        return Ok(out);
    }
    let total: usize = b.sparse.iter().map(|f| f.ids.len()).sum();
    out.push(WireTensor::new(
        SPARSE_LENGTHS,
        Datatype::Int32,
        vec![nt as i64, rows],
        b.sparse
            .iter()
            .flat_map(|f| f.offsets.windows(2).map(|w| (w[1] - w[0]) as i32)),
        |x: i32| x.to_le_bytes().to_vec(),
    ));
    out.push(WireTensor::new(
        SPARSE_VALUES,
        Datatype::Int64,
        vec![total as i64],
        b.sparse.iter().flat_map(|f| f.ids.iter().copied()),
        |x: i64| x.to_le_bytes().to_vec(),
    ));
    if b.sparse.iter().any(|f| f.weights.is_some()) {
        out.push(WireTensor::new(
            SPARSE_WEIGHTS,
            Datatype::Fp32,
            vec![total as i64],
            b.sparse.iter().flat_map(|f| match &f.weights {
                Some(w) => w.clone(),
                None => vec![1.0; f.ids.len()],
            }),
            |x: f32| x.to_le_bytes().to_vec(),
        ));
    }
    Ok(out)
}

/// Options of one inference call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InferOptions {
    /// The request id (echoed by the server; the key feedback refers to).
    pub id: Option<String>,
    /// A specific model version (default: the server's choice).
    pub version: Option<String>,
    /// HTTP only: send inputs and receive outputs as binary tensor data instead of JSON.
    pub binary: bool,
}

/// The answer of an inference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InferResponse {
    /// The model that answered.
    pub model_name: String,
    /// Its version.
    pub model_version: String,
    /// The request id, when one was sent.
    pub id: Option<String>,
    /// Click probabilities, one per row.
    pub probabilities: Vec<f32>,
    /// Logits, one per row.
    pub logits: Vec<f32>,
}

/// One output tensor of a response, before it is assigned to probabilities or logits.
struct OutputValues {
    name: String,
    values: Vec<f32>,
}

/// Assembles a response from its decoded outputs (both must be present, of equal length).
fn assemble(
    model_name: String,
    model_version: String,
    id: Option<String>,
    outputs: Vec<OutputValues>,
) -> Result<InferResponse> {
    let mut probabilities = None;
    let mut logits = None;
    for o in outputs {
        match o.name.as_str() {
            PROBABILITY => probabilities = Some(o.values),
            LOGIT => logits = Some(o.values),
            other => {
                return Err(ServeError::BadResponse {
                    reason: format!("unexpected output {other:?}"),
                });
            }
        }
    }
    let missing = |n: &str| ServeError::BadResponse {
        reason: format!("the response has no {n:?} output"),
    };
    let probabilities = probabilities.ok_or_else(|| missing(PROBABILITY))?;
    let logits = logits.ok_or_else(|| missing(LOGIT))?;
    if probabilities.len() != logits.len() {
        return Err(ServeError::BadResponse {
            reason: format!(
                "{} probabilities but {} logits",
                probabilities.len(),
                logits.len()
            ),
        });
    }
    Ok(InferResponse {
        model_name,
        model_version,
        id,
        probabilities,
        logits,
    })
}

/// Little-endian f32 values of a raw output (its length must be a multiple of 4).
fn f32_values(name: &str, raw: &[u8]) -> Result<Vec<f32>> {
    if !raw.len().is_multiple_of(4) {
        return Err(ServeError::BadResponse {
            reason: format!("output {name:?} has {} bytes, not FP32 values", raw.len()),
        });
    }
    Ok(raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// One label list of an already served request, for [`HttpClient::feedback`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FeedbackEntry {
    /// The id the request was sent with.
    pub id: String,
    /// One click label (0 or 1) per row of that request.
    pub labels: Vec<f32>,
}

/// The server's answer to feedback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeedbackAnswer {
    /// Entries matched to a remembered prediction.
    pub accepted: u64,
    /// Entries refused (unknown, expired, already labelled or wrong length).
    pub rejected: u64,
}

/// What a model takes, read from the server's config: enough to make valid inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelShape {
    /// Dense features per row.
    pub n_dense: usize,
    /// Rows of each table.
    pub table_rows: Vec<usize>,
    /// Rows one request may carry (the config's `max_batch_size`).
    pub max_batch_size: usize,
}

/// Parses the `table_rows` parameter of a model config (comma-separated row counts).
fn parse_table_rows(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(|t| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| ServeError::BadResponse {
                    reason: format!(
                        "config parameter table_rows {s:?} is not a list of row counts"
                    ),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quantrec_data::SparseFeature;

    fn batch(one_hot: bool) -> Batch {
        let sparse = if one_hot {
            vec![
                SparseFeature::one_hot(vec![1, 2]),
                SparseFeature::one_hot(vec![3, 4]),
            ]
        } else {
            vec![
                SparseFeature::from_lengths(&[2, 0], vec![5, 6]),
                SparseFeature::one_hot(vec![7, 8]),
            ]
        };
        Batch::unlabeled(2, 1, vec![0.5, -1.5], sparse)
    }

    #[test]
    fn one_hot_batches_use_the_sparse_tensor_row_major() {
        let t = wire_tensors(&batch(true)).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].name, SPARSE);
        assert_eq!(t[1].shape, vec![2, 2]);
        assert_eq!(t[1].json_values(), serde_json::json!([1, 3, 2, 4]));
        assert_eq!(t[0].json_values(), serde_json::json!([0.5, -1.5]));
    }

    #[test]
    fn multi_hot_batches_are_jagged_and_table_major() {
        let t = wire_tensors(&batch(false)).unwrap();
        let names: Vec<_> = t.iter().map(|t| t.name).collect();
        assert_eq!(names, [DENSE, SPARSE_LENGTHS, SPARSE_VALUES]);
        assert_eq!(t[1].shape, vec![2, 2]);
        assert_eq!(t[1].json_values(), serde_json::json!([2, 0, 1, 1]));
        assert_eq!(t[2].json_values(), serde_json::json!([5, 6, 7, 8]));
    }

    #[test]
    fn inconsistent_batches_are_refused() {
        let mut b = batch(true);
        b.dense.pop();
        assert!(matches!(wire_tensors(&b), Err(ServeError::Data { .. })));
        let mut b = batch(true);
        b.sparse[1].ids.pop();
        b.sparse[1].offsets.pop();
        assert!(matches!(wire_tensors(&b), Err(ServeError::Data { .. })));
    }

    #[test]
    fn table_rows_parameter_parses() {
        assert_eq!(parse_table_rows("3, 10,7").unwrap(), vec![3, 10, 7]);
        assert!(parse_table_rows("3,x").is_err());
    }
}
