//! The HTTP/JSON half of the client (hyper 1 over a pooled connector, HTTP/1.1 keep-alive).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use quantrec_data::Batch;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    FeedbackAnswer, FeedbackEntry, InferOptions, InferResponse, ModelShape, OutputValues, assemble,
    f32_values, parse_table_rows, wire_tensors,
};
use crate::http::HEADER_LENGTH;
use crate::tensors::DENSE;
use crate::{Result, ServeError};

/// An encoded HTTP inference body: JSON, or a JSON header of `header_len` bytes followed by
/// binary tensor data (sent with `Inference-Header-Content-Length: header_len`).
#[derive(Clone, Debug, PartialEq)]
pub struct HttpBody {
    /// The body.
    pub body: Bytes,
    /// The JSON header's length when binary data follows.
    pub header_len: Option<usize>,
}

/// Encodes an inference request for `b`: plain JSON, or with `binary` every input and output as
/// binary tensor data.
pub fn encode_http(b: &Batch, id: Option<&str>, binary: bool) -> Result<HttpBody> {
    let tensors = wire_tensors(b)?;
    let mut raw = Vec::new();
    let inputs: Vec<Value> = tensors
        .iter()
        .map(|t| {
            let mut o = json!({"name": t.name, "datatype": t.datatype.name(), "shape": t.shape});
            if binary {
                o["parameters"] = json!({"binary_data_size": t.data.len()});
                raw.extend_from_slice(&t.data);
            } else {
                o["data"] = t.json_values();
            }
            o
        })
        .collect();
    let mut head = json!({"inputs": inputs});
    if let Some(id) = id {
        head["id"] = json!(id);
    }
    if binary {
        head["parameters"] = json!({"binary_data_output": true});
    }
    let mut body = serde_json::to_vec(&head).map_err(|e| ServeError::malformed(e.to_string()))?;
    let header_len = binary.then_some(body.len());
    body.extend_from_slice(&raw);
    Ok(HttpBody {
        body: Bytes::from(body),
        header_len,
    })
}

#[derive(Deserialize)]
struct ResponseJson {
    model_name: String,
    model_version: String,
    #[serde(default)]
    id: Option<String>,
    outputs: Vec<OutputJson>,
}

#[derive(Deserialize)]
struct OutputJson {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    data: Option<Vec<f32>>,
}

/// Decodes an inference response body (`header_len`: its `Inference-Header-Content-Length`).
fn decode_response(body: &[u8], header_len: Option<usize>) -> Result<InferResponse> {
    let bad = |reason: String| ServeError::BadResponse { reason };
    let hl = header_len.unwrap_or(body.len());
    if hl > body.len() {
        return Err(bad(format!(
            "Inference-Header-Content-Length {hl} exceeds the body's {} bytes",
            body.len()
        )));
    }
    let head: ResponseJson =
        serde_json::from_slice(&body[..hl]).map_err(|e| bad(format!("response JSON: {e}")))?;
    let mut at = hl;
    let mut outputs = Vec::with_capacity(head.outputs.len());
    for o in head.outputs {
        let size = o
            .parameters
            .as_ref()
            .and_then(|p| p.get("binary_data_size"))
            .and_then(Value::as_u64);
        let values = match (size, o.data) {
            (Some(n), None) => {
                let n = n as usize;
                if body.len() - at < n {
                    return Err(bad(format!(
                        "output {:?} declares {n} bytes, {} are left",
                        o.name,
                        body.len() - at
                    )));
                }
                let v = f32_values(&o.name, &body[at..at + n])?;
                at += n;
                v
            }
            (None, Some(d)) => d,
            _ => return Err(bad(format!("output {:?} has no usable data", o.name))),
        };
        outputs.push(OutputValues {
            name: o.name,
            values,
        });
    }
    assemble(head.model_name, head.model_version, head.id, outputs)
}

/// A KServe v2 HTTP client of one server (cheap to clone: clones share the connection pool).
#[derive(Clone, Debug)]
pub struct HttpClient {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Option<Duration>,
}

impl HttpClient {
    /// A client of the server at `url` (`http://host:port`, an optional path prefix is kept).
    pub fn new(url: &str) -> Result<HttpClient> {
        let invalid = |reason: &str| ServeError::InvalidUrl {
            url: url.into(),
            reason: reason.into(),
        };
        let uri: http::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => return Err(invalid("only http:// is supported")),
            None => return Err(invalid("missing http:// scheme")),
        }
        if uri.authority().is_none() {
            return Err(invalid("missing host"));
        }
        if uri.query().is_some() {
            return Err(invalid("a query string is not allowed"));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(HttpClient {
            base: url.trim_end_matches('/').to_string(),
            client,
            timeout: None,
        })
    }

    /// Gives every call at most `t` (past it: [`ServeError::ClientTimeout`]).
    pub fn with_timeout(mut self, t: Duration) -> HttpClient {
        self.timeout = Some(t);
        self
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Sends one request; answers the status, the `Inference-Header-Content-Length` header and
    /// the body, or the error of a non-2xx status.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        header_len: Option<usize>,
    ) -> Result<(StatusCode, Option<usize>, Bytes)> {
        let url = format!("{}{path}", self.base);
        let mut req = Request::builder().method(method).uri(&url);
        if !body.is_empty() {
            let ct = if header_len.is_some() {
                "application/octet-stream"
            } else {
                "application/json"
            };
            req = req.header(header::CONTENT_TYPE, ct);
        }
        if let Some(n) = header_len {
            req = req.header(HEADER_LENGTH, n);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| ServeError::InvalidUrl {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let call = async {
            let resp = self.client.request(req).await.map_err(|e| {
                if e.is_connect() {
                    ServeError::Connect {
                        url: url.clone(),
                        reason: error_chain(&e),
                    }
                } else {
                    ServeError::Transport {
                        url: url.clone(),
                        reason: error_chain(&e),
                    }
                }
            })?;
            let status = resp.status();
            let hl = match resp.headers().get(HEADER_LENGTH) {
                None => None,
                Some(v) => Some(
                    v.to_str()
                        .ok()
                        .and_then(|s| s.trim().parse::<usize>().ok())
                        .ok_or_else(|| ServeError::BadResponse {
                            reason: "Inference-Header-Content-Length is not a byte count".into(),
                        })?,
                ),
            };
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ServeError::Transport {
                    url: url.clone(),
                    reason: error_chain(&e),
                })?
                .to_bytes();
            Ok::<_, ServeError>((status, hl, bytes))
        };
        let (status, hl, bytes) =
            match self.timeout {
                None => call.await?,
                Some(t) => tokio::time::timeout(t, call).await.map_err(|_| {
                    ServeError::ClientTimeout {
                        url: url.clone(),
                        after: t,
                    }
                })??,
            };
        if !status.is_success() {
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(String::from))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(ServeError::HttpStatus {
                url,
                status: status.as_u16(),
                message,
            });
        }
        Ok((status, hl, bytes))
    }

    /// A GET answered with JSON.
    async fn get_json(&self, path: &str) -> Result<Value> {
        let (_, _, b) = self.send(Method::GET, path, Bytes::new(), None).await?;
        serde_json::from_slice(&b).map_err(|e| ServeError::BadResponse {
            reason: format!("GET {path}: {e}"),
        })
    }

    /// A GET whose status is the answer (200: true, 503 / 400 / 404: false).
    async fn get_ok(&self, path: &str) -> Result<bool> {
        match self.send(Method::GET, path, Bytes::new(), None).await {
            Ok(_) => Ok(true),
            Err(ServeError::HttpStatus {
                status: 400 | 404 | 503,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn model_path(model: &str, version: Option<&str>) -> String {
        match version {
            None => format!("/v2/models/{model}"),
            Some(v) => format!("/v2/models/{model}/versions/{v}"),
        }
    }

    /// Scores `batch` with `model`.
    pub async fn infer(
        &self,
        model: &str,
        batch: &Batch,
        opts: &InferOptions,
    ) -> Result<InferResponse> {
        let body = encode_http(batch, opts.id.as_deref(), opts.binary)?;
        self.infer_body(model, opts.version.as_deref(), &body).await
    }

    /// Sends an already encoded inference body (see [`encode_http`]).
    pub async fn infer_body(
        &self,
        model: &str,
        version: Option<&str>,
        body: &HttpBody,
    ) -> Result<InferResponse> {
        let path = format!("{}/infer", Self::model_path(model, version));
        let (_, hl, b) = self
            .send(Method::POST, &path, body.body.clone(), body.header_len)
            .await?;
        decode_response(&b, hl)
    }

    /// Sends click labels of served requests: `POST /v2/models/<m>/feedback`.
    pub async fn feedback(&self, model: &str, entries: &[FeedbackEntry]) -> Result<FeedbackAnswer> {
        let body = serde_json::to_vec(&json!({ "feedback": entries }))
            .map_err(|e| ServeError::malformed(e.to_string()))?;
        let path = format!("/v2/models/{model}/feedback");
        let (_, _, b) = self
            .send(Method::POST, &path, Bytes::from(body), None)
            .await?;
        let v: Value = serde_json::from_slice(&b).map_err(|e| ServeError::BadResponse {
            reason: format!("feedback answer: {e}"),
        })?;
        let count = |k: &str| {
            v.get(k)
                .and_then(Value::as_u64)
                .ok_or_else(|| ServeError::BadResponse {
                    reason: format!("feedback answer {v} has no count {k:?}"),
                })
        };
        Ok(FeedbackAnswer {
            accepted: count("accepted")?,
            rejected: count("rejected")?,
        })
    }

    /// The continuous accuracy monitor's figures: `GET /v2/models/<m>/accuracy`.
    pub async fn accuracy(&self, model: &str) -> Result<Value> {
        self.get_json(&format!("/v2/models/{model}/accuracy")).await
    }

    /// Whether the server is live (`/v2/health/live`).
    pub async fn server_live(&self) -> Result<bool> {
        self.get_ok("/v2/health/live").await
    }

    /// Whether the server is ready (`/v2/health/ready`).
    pub async fn server_ready(&self) -> Result<bool> {
        self.get_ok("/v2/health/ready").await
    }

    /// Whether a model (version) is ready to serve.
    pub async fn model_ready(&self, model: &str, version: Option<&str>) -> Result<bool> {
        self.get_ok(&format!("{}/ready", Self::model_path(model, version)))
            .await
    }

    /// The model's KServe v2 metadata.
    pub async fn metadata(&self, model: &str) -> Result<Value> {
        self.get_json(&Self::model_path(model, None)).await
    }

    /// The model's Triton config.
    pub async fn config(&self, model: &str) -> Result<Value> {
        self.get_json(&format!("{}/config", Self::model_path(model, None)))
            .await
    }

    /// What the model takes (from its config).
    pub async fn model_shape(&self, model: &str) -> Result<ModelShape> {
        shape_of_config_json(&self.config(model).await?)
    }
}

/// Reads [`ModelShape`] from a Triton config in JSON.
fn shape_of_config_json(c: &Value) -> Result<ModelShape> {
    let bad = |reason: &str| ServeError::BadResponse {
        reason: format!("model config: {reason}"),
    };
    let n_dense = c["input"]
        .as_array()
        .and_then(|l| l.iter().find(|i| i["name"] == DENSE))
        .and_then(|i| i["dims"].get(0))
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("no dense input with dims [n_dense]"))? as usize;
    let rows = c["parameters"]["table_rows"]["string_value"]
        .as_str()
        .ok_or_else(|| bad("no table_rows parameter (a server older than the load generator?)"))?;
    let max_batch_size = c["max_batch_size"]
        .as_u64()
        .ok_or_else(|| bad("no max_batch_size"))? as usize;
    Ok(ModelShape {
        n_dense,
        table_rows: parse_table_rows(rows)?,
        max_batch_size,
    })
}

/// An error's message with its sources (hyper's top-level messages are terse).
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_responses_decode_in_output_order() {
        let head = br#"{"model_name":"m","model_version":"3","id":"r","outputs":[{"name":"logit","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}},{"name":"probability","datatype":"FP32","shape":[2],"data":[0.25,0.5]}]}"#;
        let mut body = head.to_vec();
        body.extend(1.5f32.to_le_bytes());
        body.extend((-2f32).to_le_bytes());
        let r = decode_response(&body, Some(head.len())).unwrap();
        assert_eq!(r.logits, vec![1.5, -2.0]);
        assert_eq!(r.probabilities, vec![0.25, 0.5]);
        assert_eq!(r.id.as_deref(), Some("r"));
        assert_eq!(r.model_version, "3");
        assert!(matches!(
            decode_response(&body[..body.len() - 1], Some(head.len())),
            Err(ServeError::BadResponse { .. })
        ));
    }

    #[test]
    fn urls_are_checked() {
        assert!(HttpClient::new("http://127.0.0.1:8000/").is_ok());
        for bad in [
            "127.0.0.1:8000",
            "https://x:1",
            "http://",
            "http://h:1/?q=1",
        ] {
            assert!(
                matches!(HttpClient::new(bad), Err(ServeError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn config_gives_the_model_shape() {
        let c = json!({"max_batch_size": 64, "input": [{"name": "dense", "dims": [13]}],
                       "parameters": {"table_rows": {"string_value": "4,5"}}});
        let s = shape_of_config_json(&c).unwrap();
        assert_eq!(
            (s.n_dense, s.table_rows, s.max_batch_size),
            (13, vec![4, 5], 64)
        );
    }
}
