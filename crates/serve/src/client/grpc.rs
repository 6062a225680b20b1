//! The gRPC half of the client (tonic, one multiplexed HTTP/2 connection).

use std::time::Duration;

use bytes::{BufMut, Bytes};
use quantrec_data::Batch;
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstDecoder;

use super::http::error_chain;
use super::{
    InferOptions, InferResponse, ModelShape, OutputValues, assemble, f32_values, parse_table_rows,
    wire_tensors,
};
use crate::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use crate::proto::model_infer_request::InferInputTensor;
use crate::proto::{
    ModelConfigRequest, ModelInferRequest, ModelInferResponse, ModelReadyRequest,
    ServerReadyRequest,
};
use crate::tensors::DENSE;
use crate::{Result, ServeError};

/// Largest response message accepted.
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The path of `ModelInfer`.
const MODEL_INFER: &str = "/inference.GRPCInferenceService/ModelInfer";

/// A `ModelInferRequest` encoded once as protobuf, to be sent any number of times without
/// cloning or re-encoding it (what `quantrec loadgen` cycles through).
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedInfer {
    message: Bytes,
}

impl EncodedInfer {
    /// Encodes `req`.
    pub fn new(req: &ModelInferRequest) -> EncodedInfer {
        EncodedInfer {
            message: prost::Message::encode_to_vec(req).into(),
        }
    }

    /// The protobuf message.
    pub fn message(&self) -> &Bytes {
        &self.message
    }

    /// The message framed as on an HTTP/2 stream: a zero compression byte, the big-endian
    /// length, the message.
    pub fn framed(&self) -> Bytes {
        let mut framed = Vec::with_capacity(self.message.len() + 5);
        framed.push(0u8);
        framed.extend_from_slice(&(self.message.len() as u32).to_be_bytes());
        framed.extend_from_slice(&self.message);
        framed.into()
    }
}

/// Writes an already encoded message as it is.
#[derive(Debug, Clone, Copy, Default)]
struct RawEncoder {
    size: usize,
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Bytes,
        dst: &mut EncodeBuf<'_>,
    ) -> std::result::Result<(), Self::Error> {
        dst.put_slice(&item);
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        // One reservation for the whole message and its 5-byte frame header (tonic's defaults
        // are 8 KiB and a 32 KiB yield threshold).
        let n = self.size + 5;
        BufferSettings::new(n.max(8 << 10), n.max(32 << 10))
    }
}

/// Pre-encoded `ModelInferRequest` out, `ModelInferResponse` in (its raw outputs are slices of
/// the received message, not copies).
#[derive(Debug, Clone, Copy, Default)]
struct PreEncodedCodec {
    size: usize,
}

impl Codec for PreEncodedCodec {
    type Encode = Bytes;
    type Decode = ModelInferResponse;
    type Encoder = RawEncoder;
    type Decoder = ProstDecoder<ModelInferResponse>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder { size: self.size }
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::default()
    }
}

/// A `inference.GRPCInferenceService` client of one server (cheap to clone: clones share the
/// connection).
#[derive(Clone, Debug)]
pub struct GrpcClient {
    url: String,
    inner: GrpcInferenceServiceClient<Channel>,
    raw: tonic::client::Grpc<Channel>,
    timeout: Option<Duration>,
}

impl GrpcClient {
    /// Connects to the server at `url` (`http://host:port`).
    pub async fn connect(url: &str) -> Result<GrpcClient> {
        if !url.starts_with("http://") {
            return Err(ServeError::InvalidUrl {
                url: url.into(),
                reason: "a gRPC URL is http://host:port".into(),
            });
        }
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| ServeError::InvalidUrl {
                url: url.into(),
                reason: error_chain(&e),
            })?
            .tcp_nodelay(true);
        let channel = endpoint.connect().await.map_err(|e| ServeError::Connect {
            url: url.into(),
            reason: error_chain(&e),
        })?;
        let inner = GrpcInferenceServiceClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(usize::MAX);
        let raw = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(usize::MAX);
        Ok(GrpcClient {
            url: url.into(),
            inner,
            raw,
            timeout: None,
        })
    }

    /// Gives every call at most `t`: sent as the gRPC deadline (the server drops it unexecuted
    /// once expired) and enforced here ([`ServeError::ClientTimeout`]).
    pub fn with_timeout(mut self, t: Duration) -> GrpcClient {
        self.timeout = Some(t);
        self
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Some(t) = self.timeout {
            r.set_timeout(t);
        }
        r
    }

    /// Runs one call under the client's timeout, mapping a status to [`ServeError::GrpcStatus`].
    async fn call<T>(
        &self,
        fut: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T> {
        let status = |s: tonic::Status| ServeError::GrpcStatus {
            code: s.code(),
            message: s.message().to_string(),
        };
        match self.timeout {
            None => fut.await.map(tonic::Response::into_inner).map_err(status),
            Some(t) => match tokio::time::timeout(t, fut).await {
                Err(_) => Err(ServeError::ClientTimeout {
                    url: self.url.clone(),
                    after: t,
                }),
                Ok(r) => r.map(tonic::Response::into_inner).map_err(status),
            },
        }
    }

    /// The `ModelInfer` request of `batch` (inputs as raw contents; both outputs).
    pub fn infer_request(
        model: &str,
        batch: &Batch,
        opts: &InferOptions,
    ) -> Result<ModelInferRequest> {
        let tensors = wire_tensors(batch)?;
        Ok(ModelInferRequest {
            model_name: model.into(),
            model_version: opts.version.clone().unwrap_or_default(),
            id: opts.id.clone().unwrap_or_default(),
            inputs: tensors
                .iter()
                .map(|t| InferInputTensor {
                    name: t.name.into(),
                    datatype: t.datatype.name().into(),
                    shape: t.shape.clone(),
                    ..Default::default()
                })
                .collect(),
            raw_input_contents: tensors.into_iter().map(|t| t.data).collect(),
            ..Default::default()
        })
    }

    /// Scores `batch` with `model` (`opts.binary` is irrelevant: gRPC contents are raw).
    pub async fn infer(
        &self,
        model: &str,
        batch: &Batch,
        opts: &InferOptions,
    ) -> Result<InferResponse> {
        self.infer_raw(Self::infer_request(model, batch, opts)?)
            .await
    }

    /// Sends a prepared `ModelInfer` request.
    pub async fn infer_raw(&self, req: ModelInferRequest) -> Result<InferResponse> {
        let mut c = self.inner.clone();
        let r = self.request(req);
        let resp = self.call(c.model_infer(r)).await?;
        decode_response(resp)
    }

    /// Sends a request encoded once with [`EncodedInfer::new`]: the same call as
    /// [`GrpcClient::infer_raw`] without cloning or encoding the message again.
    pub async fn infer_encoded(&self, req: &EncodedInfer) -> Result<InferResponse> {
        let mut c = self.raw.clone();
        let r = self.request(req.message.clone());
        let codec = PreEncodedCodec {
            size: req.message.len(),
        };
        let path = http::uri::PathAndQuery::from_static(MODEL_INFER);
        let resp = self
            .call(async move {
                c.ready().await.map_err(|e| {
                    tonic::Status::unavailable(format!("connection not ready: {}", error_chain(&e)))
                })?;
                c.unary(r, path, codec).await
            })
            .await?;
        decode_response(resp)
    }

    /// Whether the server is ready.
    pub async fn server_ready(&self) -> Result<bool> {
        let mut c = self.inner.clone();
        let r = self.request(ServerReadyRequest {});
        Ok(self.call(c.server_ready(r)).await?.ready)
    }

    /// Whether a model (version) is ready.
    pub async fn model_ready(&self, model: &str, version: Option<&str>) -> Result<bool> {
        let mut c = self.inner.clone();
        let r = self.request(ModelReadyRequest {
            name: model.into(),
            version: version.unwrap_or_default().into(),
        });
        Ok(self.call(c.model_ready(r)).await?.ready)
    }

    /// What the model takes (from its config).
    pub async fn model_shape(&self, model: &str) -> Result<ModelShape> {
        let mut c = self.inner.clone();
        let r = self.request(ModelConfigRequest {
            name: model.into(),
            version: String::new(),
        });
        let bad = |reason: &str| ServeError::BadResponse {
            reason: format!("model config: {reason}"),
        };
        let cfg = self
            .call(c.model_config(r))
            .await?
            .config
            .ok_or_else(|| bad("empty"))?;
        let n_dense = cfg
            .input
            .iter()
            .find(|i| i.name == DENSE)
            .and_then(|i| i.dims.first())
            .and_then(|&d| usize::try_from(d).ok())
            .ok_or_else(|| bad("no dense input with dims [n_dense]"))?;
        let rows = cfg
            .parameters
            .get("table_rows")
            .ok_or_else(|| bad("no table_rows parameter"))?;
        Ok(ModelShape {
            n_dense,
            table_rows: parse_table_rows(&rows.string_value)?,
            max_batch_size: usize::try_from(cfg.max_batch_size)
                .map_err(|_| bad("negative max_batch_size"))?,
        })
    }
}

/// Decodes a `ModelInfer` answer (raw or typed output contents).
fn decode_response(r: ModelInferResponse) -> Result<InferResponse> {
    let raw = r.raw_output_contents;
    if !raw.is_empty() && raw.len() != r.outputs.len() {
        return Err(ServeError::BadResponse {
            reason: format!(
                "{} outputs but {} raw output contents",
                r.outputs.len(),
                raw.len()
            ),
        });
    }
    let outputs = r
        .outputs
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            let values = match (raw.get(i), o.contents) {
                (Some(b), _) => f32_values(&o.name, b)?,
                (None, Some(c)) => c.fp32_contents,
                (None, None) => {
                    return Err(ServeError::BadResponse {
                        reason: format!("output {:?} has no contents", o.name),
                    });
                }
            };
            Ok(OutputValues {
                name: o.name,
                values,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let id = (!r.id.is_empty()).then_some(r.id);
    assemble(r.model_name, r.model_version, id, outputs)
}
