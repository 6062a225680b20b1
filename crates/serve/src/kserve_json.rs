//! The KServe v2 HTTP/JSON inference request and response, with Triton's binary tensor data
//! extension: a JSON header of `Inference-Header-Content-Length` bytes followed by the raw
//! little-endian data of every input whose `parameters` give a `binary_data_size`, in input order.
//! Outputs are returned as binary data when their `binary_data` parameter is true, or when the
//! request's `binary_data_output` parameter is true and the output does not say otherwise; the
//! response then carries `Inference-Header-Content-Length` too.

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::batcher::Scores;
use crate::tensors::{InputTensor, LOGIT, OUTPUTS, PROBABILITY, RawData};
use crate::{Result, ServeError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestJson {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    inputs: Vec<InputJson>,
    #[serde(default)]
    outputs: Option<Vec<OutputJson>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputJson {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputJson {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

/// One requested output and whether it is returned as binary data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputRequest {
    /// `probability` or `logit`.
    pub name: &'static str,
    /// Return as binary data.
    pub binary: bool,
}

/// A decoded inference request.
#[derive(Clone, Debug)]
pub struct InferRequest {
    /// The client's request id (echoed in the response).
    pub id: Option<String>,
    /// The input tensors.
    pub inputs: Vec<InputTensor>,
    /// The outputs to return, in order.
    pub outputs: Vec<OutputRequest>,
    /// Triton's `timeout` parameter (microseconds).
    pub timeout: Option<Duration>,
}

/// Reads an optional boolean parameter.
fn bool_param(p: Option<&Map<String, Value>>, key: &str) -> Result<Option<bool>> {
    match p.and_then(|p| p.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(ServeError::Parameter {
            name: key.into(),
            reason: format!("must be a boolean, found {v}"),
        }),
    }
}

/// Reads an optional non-negative integer parameter.
fn uint_param(p: Option<&Map<String, Value>>, key: &str) -> Result<Option<u64>> {
    match p.and_then(|p| p.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| ServeError::Parameter {
            name: key.into(),
            reason: format!("must be a non-negative integer, found {v}"),
        }),
    }
}

/// Resolves requested output names (all outputs when none are named).
pub fn resolve_outputs(
    model: &str,
    named: Option<Vec<(String, Option<bool>)>>,
    default_binary: bool,
) -> Result<Vec<OutputRequest>> {
    match named {
        None => Ok(OUTPUTS
            .iter()
            .map(|&name| OutputRequest {
                name,
                binary: default_binary,
            })
            .collect()),
        Some(list) => list
            .into_iter()
            .map(|(n, b)| {
                let name = OUTPUTS.iter().copied().find(|o| *o == n).ok_or_else(|| {
                    ServeError::UnknownOutput {
                        model: model.into(),
                        output: n.clone(),
                    }
                })?;
                Ok(OutputRequest {
                    name,
                    binary: b.unwrap_or(default_binary),
                })
            })
            .collect(),
    }
}

/// Decodes a request body. `header_len` is the `Inference-Header-Content-Length` header (absent:
/// the whole body is JSON).
pub fn decode(model: &str, body: Bytes, header_len: Option<usize>) -> Result<InferRequest> {
    let hl = header_len.unwrap_or(body.len());
    if hl > body.len() {
        return Err(ServeError::malformed(format!(
            "Inference-Header-Content-Length is {hl} but the body has only {} bytes",
            body.len()
        )));
    }
    let req: RequestJson = serde_json::from_slice(&body[..hl])
        .map_err(|e| ServeError::malformed(format!("request JSON: {e}")))?;
    let mut at = hl;
    let mut inputs = Vec::with_capacity(req.inputs.len());
    for i in req.inputs {
        let size = uint_param(i.parameters.as_ref(), "binary_data_size")?;
        let data = match (size, i.data) {
            (Some(n), None) => {
                let n = n as usize;
                if body.len() - at < n {
                    return Err(ServeError::Data {
                        tensor: i.name,
                        reason: format!(
                            "binary_data_size is {n} but only {} bytes of binary data are left",
                            body.len() - at
                        ),
                    });
                }
                let b = body.slice(at..at + n);
                at += n;
                RawData::Bytes(b)
            }
            (None, Some(d)) => RawData::Json(d),
            (Some(_), Some(_)) => {
                return Err(ServeError::Data {
                    tensor: i.name,
                    reason: "has both binary_data_size and JSON data".into(),
                });
            }
            (None, None) => {
                return Err(ServeError::Data {
                    tensor: i.name,
                    reason: "has neither JSON data nor binary_data_size".into(),
                });
            }
        };
        inputs.push(InputTensor {
            name: i.name,
            datatype: i.datatype,
            shape: i.shape,
            data,
        });
    }
    if at != body.len() {
        return Err(ServeError::malformed(format!(
            "{} bytes of binary data after the inputs' declared sizes",
            body.len() - at
        )));
    }
    let params = req.parameters.as_ref();
    let default_binary = bool_param(params, "binary_data_output")?.unwrap_or(false);
    let named = match req.outputs {
        None => None,
        Some(list) => Some(
            list.into_iter()
                .map(|o| {
                    let b = bool_param(o.parameters.as_ref(), "binary_data")?;
                    Ok((o.name, b))
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    let outputs = resolve_outputs(model, named, default_binary)?;
    let timeout = uint_param(params, "timeout")?
        .filter(|&t| t > 0)
        .map(Duration::from_micros);
    Ok(InferRequest {
        id: req.id,
        inputs,
        outputs,
        timeout,
    })
}

/// An encoded response: the body and, when it carries binary data, the JSON header's length.
#[derive(Clone, Debug)]
pub struct Encoded {
    /// The body.
    pub body: Vec<u8>,
    /// `Inference-Header-Content-Length` when binary data follows the JSON.
    pub header_len: Option<usize>,
}

/// Encodes the response of a request.
pub fn encode(
    model: &str,
    version: u64,
    id: Option<&str>,
    outputs: &[OutputRequest],
    scores: &Scores,
) -> Encoded {
    let rows = scores.logits.len();
    let mut binary = Vec::new();
    let outs: Vec<Value> = outputs
        .iter()
        .map(|o| {
            let values = match o.name {
                PROBABILITY => &scores.probabilities,
                LOGIT => &scores.logits,
                _ => unreachable!("outputs are resolved against OUTPUTS"),
            };
            let mut t = serde_json::json!({"name": o.name, "datatype": "FP32", "shape": [rows]});
            if o.binary {
                let start = binary.len();
                crate::tensors::put_f32_le(&mut binary, values);
                t["parameters"] = serde_json::json!({"binary_data_size": binary.len() - start});
            } else {
                t["data"] = serde_json::json!(values);
            }
            t
        })
        .collect();
    let mut head = serde_json::json!({
        "model_name": model,
        "model_version": version.to_string(),
        "outputs": outs,
    });
    if let Some(id) = id {
        head["id"] = Value::String(id.into());
    }
    let mut body = serde_json::to_vec(&head).expect("JSON values serialize");
    let header_len = outputs.iter().any(|o| o.binary).then_some(body.len());
    body.extend_from_slice(&binary);
    Encoded { body, header_len }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_inputs_are_sliced_in_order() {
        let head = br#"{"inputs":[{"name":"a","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}},{"name":"b","shape":[1],"datatype":"INT64","parameters":{"binary_data_size":8}}],"parameters":{"binary_data_output":true,"timeout":1500}}"#;
        let mut body = head.to_vec();
        body.extend(1f32.to_le_bytes());
        body.extend(2f32.to_le_bytes());
        body.extend(7i64.to_le_bytes());
        let r = decode("m", Bytes::from(body), Some(head.len())).unwrap();
        assert_eq!(r.inputs.len(), 2);
        match &r.inputs[1].data {
            RawData::Bytes(b) => assert_eq!(&b[..], &7i64.to_le_bytes()),
            other => panic!("{other:?}"),
        }
        assert!(r.outputs.iter().all(|o| o.binary));
        assert_eq!(r.timeout, Some(Duration::from_micros(1500)));
    }

    #[test]
    fn framing_errors_are_refused() {
        let head = br#"{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}"#;
        let mut body = head.to_vec();
        body.extend([0u8; 3]);
        assert!(decode("m", Bytes::from(body.clone()), Some(head.len())).is_err());
        body.extend([0u8; 2]);
        assert!(decode("m", Bytes::from(body), Some(head.len())).is_err());
        assert!(decode("m", Bytes::from_static(b"{"), None).is_err());
        assert!(decode("m", Bytes::from_static(b"{}"), Some(9)).is_err());
    }
}
