//! The gRPC server (tonic): `inference.GRPCInferenceService` as Triton defines it.
//!
//! ModelInfer takes inputs as `raw_input_contents` (little-endian bytes, one entry per input, the
//! way `tritonclient.grpc` sends them) or as typed `contents`, and always answers with
//! `raw_output_contents`. A request's deadline (`grpc-timeout`) and Triton's `timeout` parameter
//! (microseconds) both bound its time in the queue; the shorter wins. Errors are gRPC statuses:
//! NOT_FOUND (unknown model or version), INVALID_ARGUMENT (bad input, with what and where),
//! RESOURCE_EXHAUSTED (queue full, message too large), DEADLINE_EXCEEDED (expired unexecuted),
//! UNAVAILABLE (shutting down).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::{Request, Response, Status};

use crate::describe;
use crate::http::{load_outcome, record, stats_versions};
use crate::kserve_json::resolve_outputs;
use crate::monitor::live::{self, ParamValue};
use crate::proto::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use crate::proto::infer_parameter::ParameterChoice;
use crate::proto::*;
use crate::server::ServerState;
use crate::stats::Duration2;
use crate::tensors::{InputTensor, RawData, to_batch};
use crate::version::LoadedVersion;
use crate::{Result, ServeError};

/// The service implementation.
#[derive(Debug, Clone)]
pub struct Service {
    state: Arc<ServerState>,
}

/// The tonic service of `state`, with message limits of `max_body_bytes`.
pub fn service(state: Arc<ServerState>) -> GrpcInferenceServiceServer<Service> {
    let limit = state.max_body_bytes;
    GrpcInferenceServiceServer::new(Service { state })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(usize::MAX)
}

/// Parses a `grpc-timeout` header value (`<digits><unit>`, unit one of H M S m u n).
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn code_name(c: tonic::Code) -> String {
    format!("{c:?}")
}

fn input_tensor(
    t: model_infer_request::InferInputTensor,
    raw: Option<bytes::Bytes>,
) -> Result<InputTensor> {
    let data = match (raw, t.contents) {
        // A slice of the received message: no copy before the typed decode in `to_batch`.
        (Some(b), _) => RawData::Bytes(b),
        (None, Some(c)) => match t.datatype.as_str() {
            "FP32" => RawData::F32(c.fp32_contents),
            "INT64" => RawData::I64(c.int64_contents),
            "INT32" => RawData::I32(c.int_contents),
            _ => RawData::F32(Vec::new()),
        },
        (None, None) => {
            return Err(ServeError::Data {
                tensor: t.name,
                reason: "has neither contents nor raw_input_contents".into(),
            });
        }
    };
    Ok(InputTensor {
        name: t.name,
        datatype: t.datatype,
        shape: t.shape,
        data,
    })
}

fn timeout_param(p: &HashMap<String, InferParameter>) -> Result<Option<Duration>> {
    match p.get("timeout").and_then(|x| x.parameter_choice.clone()) {
        None => Ok(None),
        Some(ParameterChoice::Int64Param(n)) if n >= 0 => {
            Ok((n > 0).then(|| Duration::from_micros(n as u64)))
        }
        Some(ParameterChoice::Uint64Param(n)) => Ok((n > 0).then(|| Duration::from_micros(n))),
        Some(other) => Err(ServeError::Parameter {
            name: "timeout".into(),
            reason: format!("must be a non-negative integer of microseconds, found {other:?}"),
        }),
    }
}

impl Service {
    fn version(&self, name: &str, version: &str) -> Result<Arc<LoadedVersion>> {
        self.state.repo.version(name, Some(version))
    }

    async fn infer(
        &self,
        deadline: Option<Duration>,
        req: ModelInferRequest,
        lv_out: &mut Option<Arc<LoadedVersion>>,
    ) -> Result<ModelInferResponse> {
        *lv_out = Some(self.version(&req.model_name, &req.model_version)?);
        let has_id = !req.id.is_empty();
        let route = live::route(
            &self.state.repo,
            &req.model_name,
            Some(&req.model_version),
            has_id,
        )?;
        let lv = route.lv.clone();
        *lv_out = Some(lv.clone());
        let m = req.model_name.as_str();
        let raw = req.raw_input_contents;
        if !raw.is_empty() && raw.len() != req.inputs.len() {
            return Err(ServeError::malformed(format!(
                "{} raw_input_contents for {} inputs",
                raw.len(),
                req.inputs.len()
            )));
        }
        let mut raw = raw.into_iter();
        let inputs = req
            .inputs
            .into_iter()
            .map(|t| input_tensor(t, raw.next()))
            .collect::<Result<Vec<_>>>()?;
        let named = (!req.outputs.is_empty())
            .then(|| req.outputs.into_iter().map(|o| (o.name, None)).collect());
        let outputs = resolve_outputs(m, named, true)?;
        let timeout = match (timeout_param(&req.parameters)?, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let batch = to_batch(
            m,
            &lv.signature,
            inputs,
            self.state.repo.context().allow_nonfinite,
        )?;
        let rows = batch.size as i64;
        let id = has_id.then_some(req.id.as_str());
        let scores = route.infer(batch, timeout, id).await?;
        let mut out = ModelInferResponse {
            model_name: m.into(),
            model_version: lv.version().to_string(),
            id: req.id,
            ..Default::default()
        };
        for o in outputs {
            let v = if o.name == crate::tensors::PROBABILITY {
                &scores.probabilities
            } else {
                &scores.logits
            };
            out.outputs.push(model_infer_response::InferOutputTensor {
                name: o.name.into(),
                datatype: "FP32".into(),
                shape: vec![rows],
                parameters: HashMap::new(),
                contents: None,
            });
            out.raw_output_contents.push(le_bytes(v));
        }
        Ok(out)
    }
}

/// The little-endian bytes of `v`, in one allocation of the exact size.
fn le_bytes(v: &[f32]) -> bytes::Bytes {
    let mut b = Vec::new();
    crate::tensors::put_f32_le(&mut b, v);
    b.into()
}

fn stat(d: Duration2) -> Option<StatisticDuration> {
    Some(StatisticDuration {
        count: d.count,
        ns: d.ns,
    })
}

type R<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl GrpcInferenceService for Service {
    async fn server_live(&self, _: Request<ServerLiveRequest>) -> R<ServerLiveResponse> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(&self, _: Request<ServerReadyRequest>) -> R<ServerReadyResponse> {
        Ok(Response::new(ServerReadyResponse {
            ready: self.state.is_ready(),
        }))
    }

    async fn model_ready(&self, r: Request<ModelReadyRequest>) -> R<ModelReadyResponse> {
        let r = r.into_inner();
        let ready = self
            .version(&r.name, &r.version)
            .is_ok_and(|lv| lv.tables_reachable())
            && self.state.accepting();
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> R<ServerMetadataResponse> {
        Ok(Response::new(ServerMetadataResponse {
            name: describe::SERVER_NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: describe::EXTENSIONS.iter().map(|s| s.to_string()).collect(),
        }))
    }

    async fn model_metadata(&self, r: Request<ModelMetadataRequest>) -> R<ModelMetadataResponse> {
        let r = r.into_inner();
        let lv = self.version(&r.name, &r.version)?;
        let serving = self.state.repo.model(&r.name)?.serving();
        Ok(Response::new(describe::metadata_proto(
            &r.name,
            describe::version_list(&serving),
            &lv,
        )))
    }

    async fn model_infer(&self, r: Request<ModelInferRequest>) -> R<ModelInferResponse> {
        let t0 = Instant::now();
        let deadline = r
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        let req = r.into_inner();
        let model = req.model_name.clone();
        let mut lv = None;
        let res = self.infer(deadline, req, &mut lv).await;
        let code = match &res {
            Ok(_) => tonic::Code::Ok,
            Err(e) => e.grpc_code(),
        };
        record(
            &self.state,
            &model,
            lv.as_deref(),
            "grpc",
            &code_name(code),
            res.is_ok(),
            t0,
        );
        Ok(Response::new(res?))
    }

    async fn model_config(&self, r: Request<ModelConfigRequest>) -> R<ModelConfigResponse> {
        let r = r.into_inner();
        let lv = self.version(&r.name, &r.version)?;
        let serving = self.state.repo.model(&r.name)?.serving();
        Ok(Response::new(ModelConfigResponse {
            config: Some(describe::config_proto(&lv, &serving, self.state.threads())),
        }))
    }

    async fn model_statistics(
        &self,
        r: Request<ModelStatisticsRequest>,
    ) -> R<ModelStatisticsResponse> {
        let r = r.into_inner();
        let name = (!r.name.is_empty()).then_some(r.name.as_str());
        let version = (!r.version.is_empty()).then_some(r.version.as_str());
        let list = stats_versions(&self.state, name, version)?;
        let model_stats = list
            .iter()
            .map(|lv| {
                let s = lv.stats.snapshot();
                ModelStatistics {
                    name: lv.name().into(),
                    version: lv.version().to_string(),
                    last_inference: s.last_inference,
                    inference_count: s.inference_count,
                    execution_count: s.execution_count,
                    inference_stats: Some(InferStatistics {
                        success: stat(s.success),
                        fail: stat(s.fail),
                        queue: stat(s.queue),
                        compute_input: stat(Duration2::default()),
                        compute_infer: stat(s.compute_infer),
                        compute_output: stat(Duration2::default()),
                        cache_hit: stat(Duration2::default()),
                        cache_miss: stat(Duration2::default()),
                    }),
                    batch_stats: s
                        .batch_stats
                        .iter()
                        .map(|&(size, count, ns)| InferBatchStatistics {
                            batch_size: size,
                            compute_input: stat(Duration2::default()),
                            compute_infer: stat(Duration2 { count, ns }),
                            compute_output: stat(Duration2::default()),
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(Response::new(ModelStatisticsResponse { model_stats }))
    }

    async fn repository_index(
        &self,
        r: Request<RepositoryIndexRequest>,
    ) -> R<RepositoryIndexResponse> {
        let ready = r.into_inner().ready;
        let repo = self.state.repo.clone();
        let list = tokio::task::spawn_blocking(move || repo.index(ready))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(RepositoryIndexResponse {
            models: list
                .into_iter()
                .map(|e| repository_index_response::ModelIndex {
                    name: e.name,
                    version: e.version,
                    state: e.state,
                    reason: e.reason,
                })
                .collect(),
        }))
    }

    async fn repository_model_load(
        &self,
        r: Request<RepositoryModelLoadRequest>,
    ) -> R<RepositoryModelLoadResponse> {
        let r = r.into_inner();
        let canary = live::canary_parameters(r.parameters.iter().map(|(k, p)| {
            use model_repository_parameter::ParameterChoice as P;
            let v = match &p.parameter_choice {
                Some(P::BoolParam(b)) => ParamValue::Bool(*b),
                Some(P::Int64Param(n)) => ParamValue::Number(*n as f64),
                Some(P::StringParam(s)) => ParamValue::Text(s.clone()),
                Some(P::BytesParam(b)) => ParamValue::Text(String::from_utf8_lossy(b).into()),
                None => ParamValue::Text(String::new()),
            };
            (k.clone(), v)
        }))?;
        let repo = self.state.repo.clone();
        let name = r.model_name.clone();
        let report = tokio::task::spawn_blocking(move || repo.load_with_canary(&name, canary))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        load_outcome(&r.model_name, &report)?;
        Ok(Response::new(RepositoryModelLoadResponse {}))
    }

    async fn repository_model_unload(
        &self,
        r: Request<RepositoryModelUnloadRequest>,
    ) -> R<RepositoryModelUnloadResponse> {
        let r = r.into_inner();
        let repo = self.state.repo.clone();
        tokio::task::spawn_blocking(move || repo.unload(&r.model_name))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(RepositoryModelUnloadResponse {}))
    }
}
