//! The native ranking endpoint, `POST /v1/models/<name>/rank`: one user context, many candidates.
//!
//! ```json
//! {
//!   "request_id": "r-17",
//!   "context": {"dense": [0.5, 1.2, 0.0], "sparse": {"0": 12, "1": [3, 9]}},
//!   "candidates": [
//!     {"dense": [0.1, 2.0, ...], "sparse": {"2": 7, "3": 1}},
//!     ...
//!   ],
//!   "timeout_us": 5000
//! }
//! ```
//!
//! Each candidate's row is the context's dense values followed by its own (together exactly the
//! model's `n_dense`), and every table's ids come from the context or from the candidate (each
//! table from exactly one of them; a single id or a list of ids pooled together). The answer lists
//! one score per candidate, in order: `{"request_id": "r-17", "model_name": ..., "model_version":
//! ..., "scores": [...], "logits": [...]}`. `context` may be omitted when candidates carry
//! everything.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::ServerState;
use crate::tensors::{DENSE, InputTensor, RawData, SPARSE_LENGTHS, SPARSE_VALUES, to_batch};
use crate::version::LoadedVersion;
use crate::{Result, ServeError};

/// Ids of one table: a single id or a list.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum Ids {
    One(i64),
    Many(Vec<i64>),
}

impl Ids {
    fn as_slice(&self) -> &[i64] {
        match self {
            Ids::One(x) => std::slice::from_ref(x),
            Ids::Many(v) => v,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Features {
    #[serde(default)]
    dense: Vec<f32>,
    #[serde(default)]
    sparse: BTreeMap<String, Ids>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RankRequest {
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    context: Features,
    candidates: Vec<Features>,
    #[serde(default)]
    timeout_us: Option<u64>,
}

/// Parses table keys ("0", "1", ...) into indices below `n_tables`.
fn tables_of(f: &Features, n_tables: usize, whose: &str) -> Result<BTreeMap<usize, Vec<i64>>> {
    f.sparse
        .iter()
        .map(|(k, ids)| {
            let t: usize = k.parse().ok().filter(|&t| t < n_tables).ok_or_else(|| {
                ServeError::malformed(format!(
                    "{whose}: sparse key {k:?} is not a table index in 0..{n_tables}"
                ))
            })?;
            Ok((t, ids.as_slice().to_vec()))
        })
        .collect()
}

/// Builds the model's input tensors of a ranking request.
fn inputs(v: &LoadedVersion, req: &RankRequest) -> Result<Vec<InputTensor>> {
    let sig = &v.signature;
    let (nd, nt) = (sig.n_dense, sig.n_tables());
    let b = req.candidates.len();
    if b == 0 {
        return Err(ServeError::malformed("candidates: the list is empty"));
    }
    let ctx_tables = tables_of(&req.context, nt, "context")?;
    let mut dense = Vec::with_capacity(b * nd);
    // Per table, per candidate: the ids.
    let mut per_table: Vec<Vec<Vec<i64>>> = vec![Vec::with_capacity(b); nt];
    for (i, c) in req.candidates.iter().enumerate() {
        let whose = format!("candidates[{i}]");
        if req.context.dense.len() + c.dense.len() != nd {
            return Err(ServeError::malformed(format!(
                "{whose}: {} context + {} candidate dense values, the model takes {nd}",
                req.context.dense.len(),
                c.dense.len()
            )));
        }
        dense.extend_from_slice(&req.context.dense);
        dense.extend_from_slice(&c.dense);
        let own = tables_of(c, nt, &whose)?;
        for (t, ids) in per_table.iter_mut().enumerate() {
            match (ctx_tables.get(&t), own.get(&t)) {
                (Some(x), None) | (None, Some(x)) => ids.push(x.clone()),
                (Some(_), Some(_)) => {
                    return Err(ServeError::malformed(format!(
                        "{whose}: table {t} is given by both the context and the candidate"
                    )));
                }
                (None, None) => {
                    return Err(ServeError::malformed(format!(
                        "{whose}: table {t} is given by neither the context nor the candidate"
                    )));
                }
            }
        }
    }
    let mut lengths = Vec::with_capacity(nt * b);
    let mut values = Vec::new();
    for t in &per_table {
        for ids in t {
            lengths.push(i32::try_from(ids.len()).map_err(|_| {
                ServeError::malformed("a candidate has more than 2^31 ids for one table")
            })?);
            values.extend_from_slice(ids);
        }
    }
    let n_values = values.len() as i64;
    Ok(vec![
        InputTensor {
            name: DENSE.into(),
            datatype: "FP32".into(),
            shape: vec![b as i64, nd as i64],
            data: RawData::F32(dense),
        },
        InputTensor {
            name: SPARSE_LENGTHS.into(),
            datatype: "INT32".into(),
            shape: vec![nt as i64, b as i64],
            data: RawData::I32(lengths),
        },
        InputTensor {
            name: SPARSE_VALUES.into(),
            datatype: "INT64".into(),
            shape: vec![n_values],
            data: RawData::I64(values),
        },
    ])
}

/// Scores a ranking request of `model` (on the version the monitor's routing picks, which it
/// stores in `lv_out`); a `request_id` makes the answer available for feedback.
pub async fn rank(
    st: &ServerState,
    model: &str,
    body: &[u8],
    lv_out: &mut Option<Arc<LoadedVersion>>,
) -> Result<Value> {
    let req: RankRequest = serde_json::from_slice(body)
        .map_err(|e| ServeError::malformed(format!("ranking request JSON: {e}")))?;
    let route = crate::monitor::live::route(&st.repo, model, None, req.request_id.is_some())?;
    let v = route.lv.clone();
    *lv_out = Some(v.clone());
    if v.signature.needs_weights() {
        return Err(ServeError::malformed(
            "this model pools tables with per-id weights, which the ranking endpoint does not carry: use /v2/models/<name>/infer",
        ));
    }
    let tensors = inputs(&v, &req)?;
    let batch = to_batch(
        v.name(),
        &v.signature,
        tensors,
        st.repo.context().allow_nonfinite,
    )?;
    let timeout = req.timeout_us.filter(|&t| t > 0).map(Duration::from_micros);
    let scores = route
        .infer(batch, timeout, req.request_id.as_deref())
        .await?;
    Ok(json!({
        "request_id": req.request_id,
        "model_name": v.name(),
        "model_version": v.version().to_string(),
        "scores": scores.probabilities,
        "logits": scores.logits,
    }))
}
