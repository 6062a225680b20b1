//! Protocol-independent inference tensors: what the HTTP/JSON, binary and gRPC decoders produce,
//! checked against the model's signature and turned into a [`Batch`].
//!
//! A DLRM model takes:
//! - `dense` FP32 `[B, n_dense]`;
//! - sparse ids either one-hot, `sparse` INT64 `[B, n_tables]` (column t = table t), or jagged like
//!   TorchRec's KeyedJaggedTensor, `sparse_lengths` INT32 `[n_tables, B]` + `sparse_values` INT64
//!   `[sum of lengths]` (table-major: every id of table 0, sample by sample, then table 1, ...),
//!   plus `sparse_weights` FP32 `[sum of lengths]` when a table pools with per-id weights;
//!
//! and produces `probability` FP32 `[B]` and `logit` FP32 `[B]`.

use quantrec_data::{Batch, SparseFeature};
use quantrec_model::ModelConfig;
use quantrec_model::config::PoolingMode;

use crate::{Result, ServeError};

/// Input tensor names.
pub const DENSE: &str = "dense";
/// One-hot sparse ids.
pub const SPARSE: &str = "sparse";
/// Jagged lengths.
pub const SPARSE_LENGTHS: &str = "sparse_lengths";
/// Jagged ids.
pub const SPARSE_VALUES: &str = "sparse_values";
/// Jagged per-id weights.
pub const SPARSE_WEIGHTS: &str = "sparse_weights";
/// Output: click probabilities.
pub const PROBABILITY: &str = "probability";
/// Output: logits.
pub const LOGIT: &str = "logit";

/// Element types of the KServe v2 protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datatype {
    /// `FP32`.
    Fp32,
    /// `INT64`.
    Int64,
    /// `INT32`.
    Int32,
}

impl Datatype {
    /// The protocol name.
    pub fn name(self) -> &'static str {
        match self {
            Datatype::Fp32 => "FP32",
            Datatype::Int64 => "INT64",
            Datatype::Int32 => "INT32",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Datatype::Fp32 | Datatype::Int32 => 4,
            Datatype::Int64 => 8,
        }
    }

    /// Triton's `DataType` enum value (model_config.proto).
    pub fn triton_enum(self) -> i32 {
        match self {
            Datatype::Fp32 => 11,
            Datatype::Int64 => 9,
            Datatype::Int32 => 8,
        }
    }

    /// Triton's config name (`TYPE_FP32`, ...).
    pub fn triton_name(self) -> &'static str {
        match self {
            Datatype::Fp32 => "TYPE_FP32",
            Datatype::Int64 => "TYPE_INT64",
            Datatype::Int32 => "TYPE_INT32",
        }
    }
}

/// The values of an input as the protocol delivered them.
#[derive(Clone, Debug)]
pub enum RawData {
    /// Little-endian bytes (binary extension, gRPC raw contents).
    Bytes(bytes::Bytes),
    /// JSON values (flat or nested arrays, row-major).
    Json(serde_json::Value),
    /// Typed f32 values (gRPC `fp32_contents`).
    F32(Vec<f32>),
    /// Typed i64 values (gRPC `int64_contents`).
    I64(Vec<i64>),
    /// Typed i32 values (gRPC `int_contents`).
    I32(Vec<i32>),
}

/// One input tensor of a request.
#[derive(Clone, Debug)]
pub struct InputTensor {
    /// Its name.
    pub name: String,
    /// The datatype named by the client.
    pub datatype: String,
    /// Its shape.
    pub shape: Vec<i64>,
    /// Its values.
    pub data: RawData,
}

/// What a model takes: the parts of its config the decoders check against.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    /// Dense features per sample.
    pub n_dense: usize,
    /// Rows of each table.
    pub table_rows: Vec<usize>,
    /// Whether each table pools with per-id weights.
    pub weighted: Vec<bool>,
}

impl Signature {
    /// The signature of a model config.
    pub fn of(config: &ModelConfig) -> Signature {
        Signature {
            n_dense: config.dense_features,
            table_rows: config.tables.iter().map(|t| t.rows).collect(),
            weighted: config
                .tables
                .iter()
                .map(|t| t.pooling == PoolingMode::WeightedSum)
                .collect(),
        }
    }

    /// Number of tables.
    pub fn n_tables(&self) -> usize {
        self.table_rows.len()
    }

    /// Whether any table needs `sparse_weights`.
    pub fn needs_weights(&self) -> bool {
        self.weighted.iter().any(|&w| w)
    }

    /// `(name, datatype, shape with -1 for variable dimensions, optional)` of every input.
    pub fn inputs(&self) -> Vec<(&'static str, Datatype, Vec<i64>, bool)> {
        let t = self.n_tables() as i64;
        let mut v = vec![
            (DENSE, Datatype::Fp32, vec![-1, self.n_dense as i64], false),
            (SPARSE, Datatype::Int64, vec![-1, t], true),
            (SPARSE_LENGTHS, Datatype::Int32, vec![t, -1], true),
            (SPARSE_VALUES, Datatype::Int64, vec![-1], true),
        ];
        if self.needs_weights() {
            v.push((SPARSE_WEIGHTS, Datatype::Fp32, vec![-1], true));
        }
        v
    }
}

/// The names of the outputs, in the order they are returned by default.
pub const OUTPUTS: [&str; 2] = [PROBABILITY, LOGIT];

/// Appends the little-endian bytes of `v` to `out` (one reservation, no per-value allocation).
pub fn put_f32_le(out: &mut Vec<u8>, v: &[f32]) {
    out.reserve(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// Decodes a tensor's values as `dt`, checking the element count against `count`.
fn values<T: Element>(t: &InputTensor, count: usize) -> Result<Vec<T>> {
    let bad = |reason: String| ServeError::Data {
        tensor: t.name.clone(),
        reason,
    };
    let v: Vec<T> = match &t.data {
        RawData::Bytes(b) => {
            let want = count * T::SIZE;
            if b.len() != want {
                return Err(bad(format!(
                    "{} bytes of binary data, the shape {:?} of {} needs {want}",
                    b.len(),
                    t.shape,
                    T::DT.name()
                )));
            }
            b.chunks_exact(T::SIZE).map(T::from_le).collect()
        }
        RawData::Json(j) => {
            let mut out = Vec::with_capacity(count);
            flatten(j, &mut out, &t.name)?;
            out
        }
        other => T::from_typed(other).ok_or_else(|| {
            bad(format!(
                "the typed contents do not match its datatype {}",
                T::DT.name()
            ))
        })?,
    };
    if v.len() != count {
        return Err(bad(format!(
            "{} values for shape {:?} ({count} expected)",
            v.len(),
            t.shape
        )));
    }
    Ok(v)
}

/// Appends the numbers of a (possibly nested) JSON array in row-major order.
fn flatten<T: Element>(j: &serde_json::Value, out: &mut Vec<T>, name: &str) -> Result<()> {
    match j {
        serde_json::Value::Array(a) => {
            for x in a {
                flatten(x, out, name)?;
            }
            Ok(())
        }
        x => {
            let i = out.len();
            out.push(T::from_json(x).ok_or_else(|| ServeError::Data {
                tensor: name.to_string(),
                reason: format!("element {i} is {x}, not a {} value", T::DT.name()),
            })?);
            Ok(())
        }
    }
}

/// An element type the decoders read.
trait Element: Sized + Copy {
    const DT: Datatype;
    const SIZE: usize;
    fn from_le(b: &[u8]) -> Self;
    fn from_json(v: &serde_json::Value) -> Option<Self>;
    fn from_typed(d: &RawData) -> Option<Vec<Self>>;
}

impl Element for f32 {
    const DT: Datatype = Datatype::Fp32;
    const SIZE: usize = 4;
    fn from_le(b: &[u8]) -> f32 {
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    fn from_json(v: &serde_json::Value) -> Option<f32> {
        // JSON has no NaN or infinity; Triton's clients spell them as strings.
        match v {
            serde_json::Value::Number(n) => n.as_f64().map(|x| x as f32),
            serde_json::Value::String(s) => match s.as_str() {
                "NaN" | "nan" => Some(f32::NAN),
                "Infinity" | "inf" => Some(f32::INFINITY),
                "-Infinity" | "-inf" => Some(f32::NEG_INFINITY),
                _ => None,
            },
            _ => None,
        }
    }
    fn from_typed(d: &RawData) -> Option<Vec<f32>> {
        match d {
            RawData::F32(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl Element for i64 {
    const DT: Datatype = Datatype::Int64;
    const SIZE: usize = 8;
    fn from_le(b: &[u8]) -> i64 {
        i64::from_le_bytes(b.try_into().expect("8-byte chunk"))
    }
    fn from_json(v: &serde_json::Value) -> Option<i64> {
        v.as_i64()
    }
    fn from_typed(d: &RawData) -> Option<Vec<i64>> {
        match d {
            RawData::I64(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl Element for i32 {
    const DT: Datatype = Datatype::Int32;
    const SIZE: usize = 4;
    fn from_le(b: &[u8]) -> i32 {
        i32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    fn from_json(v: &serde_json::Value) -> Option<i32> {
        v.as_i64().and_then(|x| i32::try_from(x).ok())
    }
    fn from_typed(d: &RawData) -> Option<Vec<i32>> {
        match d {
            RawData::I32(v) => Some(v.clone()),
            _ => None,
        }
    }
}

fn check_dtype(t: &InputTensor, dt: Datatype) -> Result<()> {
    if t.datatype != dt.name() {
        return Err(ServeError::Dtype {
            tensor: t.name.clone(),
            expected: dt.name().into(),
            found: t.datatype.clone(),
        });
    }
    Ok(())
}

fn shape_err(t: &InputTensor, expected: String) -> ServeError {
    ServeError::Shape {
        tensor: t.name.clone(),
        expected,
        found: t.shape.clone(),
    }
}

/// The tables of a one-hot `sparse` INT64 `[size, nt]` tensor, column t = table t. Binary data is
/// read column by column straight from the received bytes (no intermediate row-major copy).
fn one_hot_tables(t: &InputTensor, size: usize, nt: usize) -> Result<Vec<SparseFeature>> {
    if let RawData::Bytes(b) = &t.data
        && b.len() == size * nt * 8
    {
        return Ok((0..nt)
            .map(|c| {
                let ids = b
                    .chunks_exact(nt * 8)
                    .map(|row| <i64 as Element>::from_le(&row[c * 8..c * 8 + 8]))
                    .collect();
                SparseFeature::one_hot(ids)
            })
            .collect());
    }
    // Other encodings, and wrong sizes (which `values` reports).
    let v: Vec<i64> = values(t, size * nt)?;
    Ok((0..nt)
        .map(|c| SparseFeature::one_hot((0..size).map(|b| v[b * nt + c]).collect()))
        .collect())
}

/// Checks ids against their table's rows: one pass over the ids, the bag (sample) of an id out
/// of range is looked up only to report it.
fn check_ids(sig: &Signature, tensor: &str, t: usize, f: &SparseFeature) -> Result<()> {
    let rows = sig.table_rows[t];
    let start = f.offsets.first().map_or(0, |&o| o as usize);
    let end = f.offsets.last().map_or(0, |&o| o as usize);
    if let Some(i) = f.ids[start..end]
        .iter()
        .position(|&id| id < 0 || id as u64 >= rows as u64)
    {
        let at = (start + i) as i64;
        // The bag b with offsets[b] <= at < offsets[b + 1] (empty bags are skipped over).
        let sample = f.offsets.partition_point(|&o| o <= at) - 1;
        return Err(ServeError::IdOutOfRange {
            tensor: tensor.into(),
            table: t,
            sample,
            id: f.ids[start + i],
            rows,
        });
    }
    Ok(())
}

/// Checks that dense values are finite.
pub fn check_finite(tensor: &str, dense: &[f32], n_dense: usize) -> Result<()> {
    if let Some(i) = dense.iter().position(|x| !x.is_finite()) {
        return Err(ServeError::NonFinite {
            tensor: tensor.into(),
            sample: i / n_dense.max(1),
            feature: i % n_dense.max(1),
            value: dense[i],
        });
    }
    Ok(())
}

/// Turns a request's tensors into a validated batch: names, datatypes, shapes, counts, ids in
/// range and (unless `allow_nonfinite`) finite dense values. A batch that passes runs without
/// error, so one request can never fail a merged batch.
pub fn to_batch(
    model: &str,
    sig: &Signature,
    inputs: Vec<InputTensor>,
    allow_nonfinite: bool,
) -> Result<Batch> {
    let mut dense = None;
    let mut one_hot = None;
    let mut lengths = None;
    let mut ids = None;
    let mut weights = None;
    for t in inputs {
        let slot = match t.name.as_str() {
            DENSE => &mut dense,
            SPARSE => &mut one_hot,
            SPARSE_LENGTHS => &mut lengths,
            SPARSE_VALUES => &mut ids,
            SPARSE_WEIGHTS if sig.needs_weights() => &mut weights,
            _ => {
                return Err(ServeError::UnknownTensor {
                    model: model.into(),
                    tensor: t.name,
                    expected: sig
                        .inputs()
                        .iter()
                        .map(|i| i.0)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        };
        if slot.is_some() {
            return Err(ServeError::malformed(format!(
                "input {:?} is given twice",
                t.name
            )));
        }
        *slot = Some(t);
    }
    let dense = dense.ok_or_else(|| ServeError::MissingTensor {
        tensor: DENSE.into(),
        reason: format!("FP32 [batch, {}] dense features", sig.n_dense),
    })?;
    check_dtype(&dense, Datatype::Fp32)?;
    let nd = sig.n_dense;
    let size = match dense.shape[..] {
        [b, d] if b >= 1 && d == nd as i64 => b as usize,
        _ => return Err(shape_err(&dense, format!("[batch >= 1, {nd}]"))),
    };
    let count = size
        .checked_mul(nd)
        .ok_or_else(|| shape_err(&dense, format!("[batch >= 1, {nd}]")))?;
    let dense_v: Vec<f32> = values(&dense, count)?;
    if !allow_nonfinite {
        check_finite(DENSE, &dense_v, nd)?;
    }
    let nt = sig.n_tables();
    let sparse = match (one_hot, lengths, ids) {
        (Some(oh), None, None) => {
            check_dtype(&oh, Datatype::Int64)?;
            if oh.shape != [size as i64, nt as i64] {
                return Err(shape_err(&oh, format!("[{size}, {nt}] (batch, tables)")));
            }
            if sig.needs_weights() {
                return Err(ServeError::MissingTensor {
                    tensor: SPARSE_WEIGHTS.into(),
                    reason: "the model pools some tables with per-id weights: send sparse_lengths, sparse_values and sparse_weights".into(),
                });
            }
            one_hot_tables(&oh, size, nt)?
        }
        (None, Some(len), Some(vals)) => {
            check_dtype(&len, Datatype::Int32)?;
            check_dtype(&vals, Datatype::Int64)?;
            if len.shape != [nt as i64, size as i64] {
                return Err(shape_err(&len, format!("[{nt}, {size}] (tables, batch)")));
            }
            let l: Vec<i32> = values(&len, nt * size)?;
            if let Some(i) = l.iter().position(|&x| x < 0) {
                return Err(ServeError::Data {
                    tensor: SPARSE_LENGTHS.into(),
                    reason: format!(
                        "table {} sample {} has the negative length {}",
                        i / size,
                        i % size,
                        l[i]
                    ),
                });
            }
            let total: usize = l.iter().map(|&x| x as usize).sum();
            match vals.shape[..] {
                [n] if n == total as i64 => {}
                _ => {
                    return Err(shape_err(
                        &vals,
                        format!("[{total}] (the sum of sparse_lengths)"),
                    ));
                }
            }
            let v: Vec<i64> = values(&vals, total)?;
            let w: Option<Vec<f32>> = match weights {
                Some(w) => {
                    check_dtype(&w, Datatype::Fp32)?;
                    if w.shape != [total as i64] {
                        return Err(shape_err(&w, format!("[{total}] (one per sparse value)")));
                    }
                    let w: Vec<f32> = values(&w, total)?;
                    check_finite(SPARSE_WEIGHTS, &w, 1)?;
                    Some(w)
                }
                None if sig.needs_weights() => {
                    return Err(ServeError::MissingTensor {
                        tensor: SPARSE_WEIGHTS.into(),
                        reason: "the model pools some tables with per-id weights".into(),
                    });
                }
                None => None,
            };
            let mut start = 0;
            (0..nt)
                .map(|t| {
                    let lens: Vec<usize> = l[t * size..(t + 1) * size]
                        .iter()
                        .map(|&x| x as usize)
                        .collect();
                    let n: usize = lens.iter().sum();
                    let mut f = SparseFeature::from_lengths(&lens, v[start..start + n].to_vec());
                    f.weights = w.as_ref().map(|w| w[start..start + n].to_vec());
                    start += n;
                    f
                })
                .collect()
        }
        (None, None, None) if nt == 0 => Vec::new(),
        _ => {
            return Err(ServeError::MissingTensor {
                tensor: SPARSE.into(),
                reason: format!(
                    "give either {SPARSE} INT64 [{size}, {nt}] or both {SPARSE_LENGTHS} INT32 [{nt}, {size}] and {SPARSE_VALUES} INT64"
                ),
            });
        }
    };
    let tensor = if sparse.iter().all(|f: &SparseFeature| f.ids.len() == size) {
        SPARSE
    } else {
        SPARSE_VALUES
    };
    for (t, f) in sparse.iter().enumerate() {
        check_ids(sig, tensor, t, f)?;
    }
    Ok(Batch::unlabeled(size, nd, dense_v, sparse))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig() -> Signature {
        Signature {
            n_dense: 2,
            table_rows: vec![10, 5],
            weighted: vec![false, false],
        }
    }

    fn t(name: &str, dt: &str, shape: Vec<i64>, data: serde_json::Value) -> InputTensor {
        InputTensor {
            name: name.into(),
            datatype: dt.into(),
            shape,
            data: RawData::Json(data),
        }
    }

    #[test]
    fn one_hot_and_jagged_give_the_same_batch() {
        let dense = || {
            t(
                "dense",
                "FP32",
                vec![2, 2],
                serde_json::json!([[1, 2], [3, 4]]),
            )
        };
        let a = to_batch(
            "m",
            &sig(),
            vec![
                dense(),
                t(
                    "sparse",
                    "INT64",
                    vec![2, 2],
                    serde_json::json!([1, 2, 3, 4]),
                ),
            ],
            false,
        )
        .unwrap();
        let b = to_batch(
            "m",
            &sig(),
            vec![
                dense(),
                t(
                    "sparse_lengths",
                    "INT32",
                    vec![2, 2],
                    serde_json::json!([1, 1, 1, 1]),
                ),
                t(
                    "sparse_values",
                    "INT64",
                    vec![4],
                    serde_json::json!([1, 3, 2, 4]),
                ),
            ],
            false,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.dense, vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn refusals_name_the_tensor() {
        let dense = t("dense", "FP32", vec![1, 2], serde_json::json!([1, "NaN"]));
        let sp = t("sparse", "INT64", vec![1, 2], serde_json::json!([1, 7]));
        let e = to_batch("m", &sig(), vec![dense.clone(), sp.clone()], false).unwrap_err();
        assert!(
            matches!(
                e,
                ServeError::NonFinite {
                    sample: 0,
                    feature: 1,
                    ..
                }
            ),
            "{e}"
        );
        let ok = to_batch("m", &sig(), vec![dense, sp], true).unwrap_err();
        assert!(
            matches!(
                ok,
                ServeError::IdOutOfRange {
                    table: 1,
                    id: 7,
                    rows: 5,
                    ..
                }
            ),
            "{ok}"
        );
        let e = to_batch(
            "m",
            &sig(),
            vec![t("dense", "FP64", vec![1, 2], serde_json::json!([1, 2]))],
            false,
        )
        .unwrap_err();
        assert!(matches!(e, ServeError::Dtype { .. }), "{e}");
    }

    #[test]
    fn an_id_out_of_range_names_its_sample_past_empty_bags() {
        let dense = t(
            "dense",
            "FP32",
            vec![3, 2],
            serde_json::json!([1, 2, 3, 4, 5, 6]),
        );
        // Table 1's bags: sample 0 empty, sample 1 = [9] (out of its 5 rows), sample 2 = [3, 4].
        let lengths = t(
            "sparse_lengths",
            "INT32",
            vec![2, 3],
            serde_json::json!([1, 0, 1, 0, 1, 2]),
        );
        let values = t(
            "sparse_values",
            "INT64",
            vec![5],
            serde_json::json!([1, 2, 9, 3, 4]),
        );
        let e = to_batch("m", &sig(), vec![dense, lengths, values], false).unwrap_err();
        assert!(
            matches!(
                e,
                ServeError::IdOutOfRange {
                    table: 1,
                    sample: 1,
                    id: 9,
                    rows: 5,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn binary_one_hot_ids_are_read_column_by_column() {
        let ids: [i64; 4] = [1, 3, 2, 4];
        let bytes: Vec<u8> = ids.iter().flat_map(|x| x.to_le_bytes()).collect();
        let dense = t("dense", "FP32", vec![2, 2], serde_json::json!([1, 2, 3, 4]));
        let sparse = InputTensor {
            name: "sparse".into(),
            datatype: "INT64".into(),
            shape: vec![2, 2],
            data: RawData::Bytes(bytes.into()),
        };
        let b = to_batch("m", &sig(), vec![dense, sparse], false).unwrap();
        assert_eq!(b.sparse[0].ids, vec![1, 2]);
        assert_eq!(b.sparse[1].ids, vec![3, 4]);
        assert_eq!(b.sparse[1].offsets, vec![0, 1, 2]);
    }
}
