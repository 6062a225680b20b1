//! The benchmark line types: one record type per kind of line, serialized with serde into the
//! JSON lines `../shared/peers/*.py` emit (`impl`, `isa`, `op`, `shape`, `seconds`, `rate`, `unit`,
//! plus per-kind fields), and shown as a table row through `Display`.

use std::fmt::{self, Display, Formatter};

use serde::Serialize;
use serde_json::Value;

/// The `impl` of every quantrec line (the peers write `peer` instead).
pub const IMPL: &str = "quantrec";

/// One measurement: the fields every line has, the kind's shape `S` and extra fields `E`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Line<S, E = NoExtra> {
    /// Always [`IMPL`].
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    /// The ISA level (or kernel) that ran.
    pub isa: String,
    /// The op name, as the peers name it.
    pub op: String,
    /// The problem shape.
    pub shape: S,
    /// Median seconds of one call.
    pub seconds: f64,
    /// Throughput in `unit`.
    pub rate: f64,
    /// Unit of `rate`.
    pub unit: &'static str,
    /// Fields of this kind of line beyond the common ones.
    #[serde(flatten)]
    pub extra: E,
}

impl<S, E> Line<S, E> {
    /// A quantrec line.
    pub fn new(
        isa: &str,
        op: &str,
        shape: S,
        seconds: f64,
        rate: f64,
        unit: &'static str,
        extra: E,
    ) -> Self {
        Line {
            implementation: IMPL,
            isa: isa.to_string(),
            op: op.to_string(),
            shape,
            seconds,
            rate,
            unit,
            extra,
        }
    }
}

/// No fields beyond the common ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct NoExtra {}

/// Shape of a `peak_*` line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeakShape {
    /// Threads (1).
    pub threads: usize,
    /// Buffer bytes (`peak_read_bandwidth` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
}

/// Shape of a `quantize_*` / `dequantize_*` line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableShape {
    /// Table rows.
    pub rows: usize,
    /// Row dimension.
    pub dim: usize,
    /// Threads.
    pub threads: usize,
}

/// Shape of an `embedding_bag_*` line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BagShape {
    /// Table rows.
    pub rows: usize,
    /// Row dimension.
    pub d: usize,
    /// Ids per bag.
    pub pool: usize,
    /// Bags per call.
    pub batch: usize,
    /// `warm` (one id set) or `cold` (rotating id sets).
    pub cache: &'static str,
}

/// Shape of a dense-layer line: `Y[m, n] = X[m, k]·Wᵀ`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GemmShape {
    /// Rows of X.
    pub m: usize,
    /// Inputs.
    pub k: usize,
    /// Outputs.
    pub n: usize,
}

/// Extra fields of a `linear_f32` / `linear_fp16` / `linear_bf16` line.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LinearExtra {
    /// Rate over this core's measured peak, when measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_fraction: Option<f64>,
    /// At m = 1: weight bytes per second over the measured read bandwidth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_fraction: Option<f64>,
}

/// Extra fields of a `linear_int8` / `linear_int8_static` line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Int8Extra {
    /// Threads (1).
    pub threads: usize,
    /// The int8 kernel that ran.
    pub kernel: String,
    /// Rate over the measured VNNI peak, when measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_fraction: Option<f64>,
    /// Rate over the measured AMX-INT8 (`tdpbusd`) peak, where this process may use AMX.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amx_peak_fraction: Option<f64>,
}

/// Shape of an `interaction_dot` line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InteractionShape {
    /// `kaggle` or `mlperf`.
    pub config: &'static str,
    /// Vectors per sample.
    pub f: usize,
    /// Their dimension.
    pub d: usize,
    /// Samples per call.
    pub batch: usize,
}

/// Extra fields of an `interaction_dot` line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InteractionExtra {
    /// Threads (1).
    pub threads: usize,
    /// Arithmetic rate.
    pub gflops: f64,
}

/// Shape of an `interaction_cross` line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CrossShape {
    /// Features per row.
    pub d: usize,
    /// Rows per call.
    pub batch: usize,
}

/// Extra fields of an `interaction_cross` line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CrossExtra {
    /// Threads (1).
    pub threads: usize,
}

/// Shape of a `dlrm_predict` line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelShape {
    /// The model's name.
    pub model: String,
    /// Samples per call.
    pub batch: usize,
    /// Rayon threads.
    pub threads: usize,
    /// Samples per parallel chunk.
    pub chunk: usize,
}

/// Extra fields of a `dlrm_predict` line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelExtra {
    /// Dense layer precisions, runs summarized (`f32×3,int8-dyn`).
    pub layers: String,
    /// Table formats, runs summarized.
    pub tables: String,
    /// Where the batches come from: `synthetic`, or the inputs file's name.
    pub inputs: String,
    /// Samples per CPU-second of the process (`null` where not measurable).
    pub cpu_rate: Option<f64>,
}

/// Any benchmark line.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum BenchRecord {
    /// `peak_*`.
    Peak(Line<PeakShape>),
    /// `quantize_*`, `dequantize_*`.
    Table(Line<TableShape>),
    /// `embedding_bag_*`.
    EmbeddingBag(Line<BagShape>),
    /// `linear_f32`, `linear_fp16`, `linear_bf16`.
    Linear(Line<GemmShape, LinearExtra>),
    /// `linear_int8`, `linear_int8_static`.
    LinearInt8(Line<GemmShape, Int8Extra>),
    /// `interaction_dot`.
    Interaction(Line<InteractionShape, InteractionExtra>),
    /// `interaction_cross`.
    Cross(Line<CrossShape, CrossExtra>),
    /// `dlrm_predict`.
    Model(Line<ModelShape, ModelExtra>),
}

/// The common fields of a record, with shape and extra fields as JSON.
struct Parts<'a> {
    isa: &'a str,
    op: &'a str,
    shape: Value,
    seconds: f64,
    rate: f64,
    unit: &'a str,
    extra: Value,
}

fn parts<S: Serialize, E: Serialize>(l: &Line<S, E>) -> Parts<'_> {
    Parts {
        isa: &l.isa,
        op: &l.op,
        shape: serde_json::to_value(&l.shape).unwrap_or(Value::Null),
        seconds: l.seconds,
        rate: l.rate,
        unit: l.unit,
        extra: serde_json::to_value(&l.extra).unwrap_or(Value::Null),
    }
}

impl BenchRecord {
    /// The header of the table rows [`Display`] writes.
    pub fn table_header() -> String {
        format!(
            "{:<32} {:<8} {:<48} {:>12} {:>12} unit",
            "op", "isa", "shape", "median s", "rate"
        )
    }

    /// The op name.
    pub fn op(&self) -> &str {
        self.parts().op
    }

    /// The JSON line (keys in sorted order, one object, no newline).
    pub fn json_line(&self) -> serde_json::Result<String> {
        Ok(serde_json::to_value(self)?.to_string())
    }

    fn parts(&self) -> Parts<'_> {
        match self {
            BenchRecord::Peak(l) => parts(l),
            BenchRecord::Table(l) => parts(l),
            BenchRecord::EmbeddingBag(l) => parts(l),
            BenchRecord::Linear(l) => parts(l),
            BenchRecord::LinearInt8(l) => parts(l),
            BenchRecord::Interaction(l) => parts(l),
            BenchRecord::Cross(l) => parts(l),
            BenchRecord::Model(l) => parts(l),
        }
    }
}

fn short(v: &Value) -> String {
    match v {
        Value::Number(n) => n
            .as_f64()
            .map_or_else(|| n.to_string(), |f| format!("{f:.3}")),
        other => other.to_string(),
    }
}

fn shape_text(shape: &Value) -> String {
    match shape {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"')))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// The table row: op, isa, shape, median seconds, rate, unit, then ` key=value` per extra field.
impl Display for BenchRecord {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let p = self.parts();
        let shape_s = shape_text(&p.shape);
        let extra_s = match &p.extra {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| format!(" {k}={}", short(v)))
                .collect::<String>(),
            _ => String::new(),
        };
        let (op, isa, seconds, rate, unit) = (p.op, p.isa, p.seconds, p.rate, p.unit);
        write!(
            f,
            "{op:<32} {isa:<8} {shape_s:<48} {seconds:>12.3e} {rate:>12.3} {unit}{extra_s}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_serialize_with_the_peer_field_names() {
        let r = BenchRecord::Linear(Line::new(
            "avx2",
            "linear_f32",
            GemmShape { m: 1, k: 2, n: 3 },
            0.5,
            4.0,
            "GOP/s",
            LinearExtra {
                peak_fraction: Some(0.25),
                bandwidth_fraction: None,
            },
        ));
        assert_eq!(
            r.json_line().unwrap(),
            r#"{"impl":"quantrec","isa":"avx2","op":"linear_f32","peak_fraction":0.25,"rate":4.0,"seconds":0.5,"shape":{"k":2,"m":1,"n":3},"unit":"GOP/s"}"#
        );
        assert!(r.to_string().ends_with("GOP/s peak_fraction=0.250"), "{r}");
        assert!(r.to_string().contains("k=2,m=1,n=3"));
    }

    #[test]
    fn lines_without_extras_and_null_cpu_rates() {
        let peak = BenchRecord::Peak(Line::new(
            "avx2",
            "peak_f32_fma",
            PeakShape {
                threads: 1,
                bytes: None,
            },
            1.0,
            2.0,
            "GOP/s",
            NoExtra {},
        ));
        assert_eq!(
            peak.json_line().unwrap(),
            r#"{"impl":"quantrec","isa":"avx2","op":"peak_f32_fma","rate":2.0,"seconds":1.0,"shape":{"threads":1},"unit":"GOP/s"}"#
        );
        assert!(peak.to_string().ends_with("GOP/s"));
        let model = BenchRecord::Model(Line::new(
            "avx2",
            "dlrm_predict",
            ModelShape {
                model: "m".into(),
                batch: 1,
                threads: 1,
                chunk: 64,
            },
            1.0,
            1.0,
            "samples/s",
            ModelExtra {
                layers: "f32×3".into(),
                inputs: "synthetic".into(),
                tables: "f32×26".into(),
                cpu_rate: None,
            },
        ));
        let v: Value = serde_json::from_str(&model.json_line().unwrap()).unwrap();
        assert!(v["cpu_rate"].is_null() && v.get("cpu_rate").is_some());
        assert_eq!(model.op(), "dlrm_predict");
    }
}
