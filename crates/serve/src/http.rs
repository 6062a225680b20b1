//! The HTTP server (axum): KServe v2 / Open Inference Protocol endpoints shaped like Triton's, the
//! native ranking endpoint, and `/metrics`.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/v2` | server metadata |
//! | GET | `/v2/health/live`, `/v2/health/ready` | 200, or 503 when not ready |
//! | GET | `/v2/models/<m>[/versions/<v>]` | model metadata |
//! | GET | `.../ready` | 200 when that version serves |
//! | GET | `.../config` | Triton's model config |
//! | GET | `/v2/models/stats`, `/v2/models/<m>[/versions/<v>]/stats` | Triton's statistics |
//! | POST | `.../infer` | inference (JSON, or JSON + binary tensor data) |
//! | POST | `/v2/repository/index` | every model version with its state |
//! | POST | `/v2/repository/models/<m>/load`, `.../unload` | hot (re)load or unload |
//! | POST | `/v1/models/<m>/rank` | native ranking ([`crate::rank`]) |
//! | POST | `/v2/models/<m>/feedback` | click labels of served requests ([`crate::monitor::live`]) |
//! | GET | `/v2/models/<m>/accuracy` | the accuracy monitor's report |
//! | GET | `/metrics` | Prometheus text |
//!
//! Errors are `{"error": "..."}` with 400 (what and where), 404 (unknown model or version), 413
//! (body over the limit), 503 (queue full), 504 (timed out in the queue).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::describe;
use crate::kserve_json;
use crate::monitor::live::{self, ParamValue};
use crate::server::ServerState;
use crate::tensors::to_batch;
use crate::version::LoadedVersion;
use crate::{Result, ServeError};

type St = State<Arc<ServerState>>;

/// The header that gives the JSON part's length in a binary-data body.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// The router of every HTTP endpoint.
pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(|| async { StatusCode::OK }))
        .route("/v2/health/ready", get(server_ready))
        .route("/v2/models/stats", get(all_stats))
        .route("/v2/models/{m}", get(meta))
        .route("/v2/models/{m}/versions/{v}", get(meta_v))
        .route("/v2/models/{m}/ready", get(ready))
        .route("/v2/models/{m}/versions/{v}/ready", get(ready_v))
        .route("/v2/models/{m}/config", get(config))
        .route("/v2/models/{m}/versions/{v}/config", get(config_v))
        .route("/v2/models/{m}/stats", get(stats))
        .route("/v2/models/{m}/versions/{v}/stats", get(stats_v))
        .route("/v2/models/{m}/infer", post(infer))
        .route("/v2/models/{m}/versions/{v}/infer", post(infer_v))
        .route("/v2/repository/index", post(index))
        .route("/v2/repository/models/{m}/load", post(load))
        .route("/v2/repository/models/{m}/unload", post(unload))
        .route("/v1/models/{m}/rank", post(rank))
        .route("/v2/models/{m}/feedback", post(feedback))
        .route("/v2/models/{m}/accuracy", get(accuracy))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// The JSON error answer of `e`.
pub fn error_response(e: &ServeError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(json!({"error": e.to_string()}))).into_response()
}

fn respond(r: Result<Value>) -> Response {
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error_response(&e),
    }
}

/// Reads a body of at most `limit` bytes (413 past it).
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes> {
    if let Some(enc) = headers.get(header::CONTENT_ENCODING)
        && enc.as_bytes() != b"identity"
    {
        return Err(ServeError::malformed(format!(
            "Content-Encoding {:?} is not supported; send the body uncompressed",
            String::from_utf8_lossy(enc.as_bytes())
        )));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared
        && n > limit
    {
        return Err(ServeError::TooLarge { bytes: n, limit });
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ServeError::TooLarge {
            bytes: declared.unwrap_or(limit + 1),
            limit,
        })
}

async fn server_metadata() -> Response {
    axum::Json(json!({
        "name": describe::SERVER_NAME,
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": describe::EXTENSIONS,
    }))
    .into_response()
}

async fn server_ready(State(st): St) -> StatusCode {
    if st.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

fn metadata(st: &ServerState, m: &str, v: Option<&str>) -> Result<Value> {
    let lv = st.repo.version(m, v)?;
    let serving = st.repo.model(m)?.serving();
    Ok(describe::metadata_json(
        m,
        describe::version_list(&serving),
        &lv,
    ))
}

async fn meta(State(st): St, Path(m): Path<String>) -> Response {
    respond(metadata(&st, &m, None))
}

async fn meta_v(State(st): St, Path((m, v)): Path<(String, String)>) -> Response {
    respond(metadata(&st, &m, Some(&v)))
}

fn ready_of(st: &ServerState, m: &str, v: Option<&str>) -> Response {
    match st.repo.version(m, v) {
        Ok(lv) if st.accepting() && lv.tables_reachable() => StatusCode::OK.into_response(),
        Ok(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Err(e) => error_response(&e),
    }
}

async fn ready(State(st): St, Path(m): Path<String>) -> Response {
    ready_of(&st, &m, None)
}

async fn ready_v(State(st): St, Path((m, v)): Path<(String, String)>) -> Response {
    ready_of(&st, &m, Some(&v))
}

fn config_of(st: &ServerState, m: &str, v: Option<&str>) -> Result<Value> {
    let lv = st.repo.version(m, v)?;
    let serving = st.repo.model(m)?.serving();
    Ok(describe::config_json(&lv, &serving, st.threads()))
}

async fn config(State(st): St, Path(m): Path<String>) -> Response {
    respond(config_of(&st, &m, None))
}

async fn config_v(State(st): St, Path((m, v)): Path<(String, String)>) -> Response {
    respond(config_of(&st, &m, Some(&v)))
}

/// The versions statistics are reported for.
pub fn stats_versions(
    st: &ServerState,
    m: Option<&str>,
    v: Option<&str>,
) -> Result<Vec<Arc<LoadedVersion>>> {
    match (m, v) {
        (None, _) => Ok(st
            .repo
            .loaded()
            .iter()
            .flat_map(|e| e.serving().versions.values().cloned().collect::<Vec<_>>())
            .collect()),
        (Some(m), Some(v)) => Ok(vec![st.repo.version(m, Some(v))?]),
        (Some(m), None) => Ok(st
            .repo
            .model(m)?
            .serving()
            .versions
            .values()
            .cloned()
            .collect()),
    }
}

fn stats_json(st: &ServerState, m: Option<&str>, v: Option<&str>) -> Result<Value> {
    let list = stats_versions(st, m, v)?;
    Ok(json!({"model_stats": list
        .iter()
        .map(|lv| lv.stats.snapshot().to_json(lv.name(), lv.version()))
        .collect::<Vec<_>>()}))
}

async fn all_stats(State(st): St) -> Response {
    respond(stats_json(&st, None, None))
}

async fn stats(State(st): St, Path(m): Path<String>) -> Response {
    respond(stats_json(&st, Some(&m), None))
}

async fn stats_v(State(st): St, Path((m, v)): Path<(String, String)>) -> Response {
    respond(stats_json(&st, Some(&m), Some(&v)))
}

/// Records an answered request in the metrics and the version's statistics.
pub fn record(
    st: &ServerState,
    model: &str,
    lv: Option<&LoadedVersion>,
    protocol: &str,
    code: &str,
    ok: bool,
    t0: Instant,
) {
    let t = t0.elapsed();
    let version = lv.map(|v| v.labels.version_text.as_str()).unwrap_or("");
    st.metrics().request(model, version, protocol, code, ok, t);
    if let Some(lv) = lv {
        lv.stats.request(ok, t);
    }
}

async fn run_infer(
    st: &ServerState,
    m: &str,
    v: Option<&str>,
    headers: &HeaderMap,
    body: Body,
    lv_out: &mut Option<Arc<LoadedVersion>>,
) -> Result<Response> {
    *lv_out = Some(st.repo.version(m, v)?);
    let bytes = read_body(headers, body, st.max_body_bytes).await?;
    let header_len = match headers.get(HEADER_LENGTH) {
        None => None,
        Some(h) => Some(
            h.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    ServeError::malformed("Inference-Header-Content-Length is not a byte count")
                })?,
        ),
    };
    let req = kserve_json::decode(m, bytes, header_len)?;
    let route = live::route(&st.repo, m, v, req.id.is_some())?;
    let lv = route.lv.clone();
    *lv_out = Some(lv.clone());
    let batch = to_batch(
        m,
        &lv.signature,
        req.inputs,
        st.repo.context().allow_nonfinite,
    )?;
    let scores = route.infer(batch, req.timeout, req.id.as_deref()).await?;
    let enc = kserve_json::encode(m, lv.version(), req.id.as_deref(), &req.outputs, &scores);
    let mut resp = Response::new(Body::from(enc.body));
    let h = resp.headers_mut();
    match enc.header_len {
        Some(n) => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            h.insert(HEADER_LENGTH, HeaderValue::from(n));
        }
        None => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
    }
    Ok(resp)
}

async fn infer_any(
    st: Arc<ServerState>,
    m: String,
    v: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let t0 = Instant::now();
    let mut lv = None;
    let r = run_infer(&st, &m, v.as_deref(), &headers, body, &mut lv).await;
    let (resp, ok) = match r {
        Ok(resp) => (resp, true),
        Err(e) => {
            tracing::debug!(model = %m, error = %e, "inference refused");
            (error_response(&e), false)
        }
    };
    record(
        &st,
        &m,
        lv.as_deref(),
        "http",
        resp.status().as_str(),
        ok,
        t0,
    );
    resp
}

async fn infer(State(st): St, Path(m): Path<String>, headers: HeaderMap, body: Body) -> Response {
    infer_any(st, m, None, headers, body).await
}

async fn infer_v(
    State(st): St,
    Path((m, v)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    infer_any(st, m, Some(v), headers, body).await
}

async fn rank(State(st): St, Path(m): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let t0 = Instant::now();
    let mut lv = None;
    let r = async {
        lv = Some(st.repo.version(&m, None)?);
        let bytes = read_body(&headers, body, st.max_body_bytes).await?;
        crate::rank::rank(&st, &m, &bytes, &mut lv).await
    }
    .await;
    let ok = r.is_ok();
    let resp = respond(r);
    record(
        &st,
        &m,
        lv.as_deref(),
        "rank",
        resp.status().as_str(),
        ok,
        t0,
    );
    resp
}

/// Parses an optional JSON body (empty is `{}`).
fn optional_json(bytes: &[u8]) -> Result<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(bytes).map_err(|e| ServeError::malformed(format!("request JSON: {e}")))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(ServeError::Io {
            what: "repository task".into(),
            source: std::io::Error::other(e),
        })
    })
}

async fn index(State(st): St, headers: HeaderMap, body: Body) -> Response {
    respond(
        async {
            let b = read_body(&headers, body, st.max_body_bytes).await?;
            let ready = optional_json(&b)?
                .get("ready")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let repo = st.repo.clone();
            let list = blocking(move || repo.index(ready)).await?;
            Ok(Value::Array(
                list.into_iter()
                    .map(|e| {
                        let mut o = json!({"name": e.name, "state": e.state});
                        if !e.version.is_empty() {
                            o["version"] = json!(e.version);
                        }
                        if !e.reason.is_empty() {
                            o["reason"] = json!(e.reason);
                        }
                        o
                    })
                    .collect(),
            ))
        }
        .await,
    )
}

/// Refuses repository parameters quantrec cannot honour (Triton's config or file overrides).
pub fn check_load_parameters<'a>(mut keys: impl Iterator<Item = &'a str>) -> Result<()> {
    match keys.next() {
        None => Ok(()),
        Some(k) => Err(ServeError::Parameter {
            name: k.into(),
            reason: "load parameters (config or file overrides) are not supported: change the repository on disk".into(),
        }),
    }
}

async fn load(State(st): St, Path(m): Path<String>, headers: HeaderMap, body: Body) -> Response {
    respond(
        async {
            let b = read_body(&headers, body, st.max_body_bytes).await?;
            let j = optional_json(&b)?;
            let canary = match j.get("parameters") {
                None | Some(Value::Null) => None,
                Some(Value::Object(p)) => live::canary_parameters(
                    p.iter().map(|(k, v)| (k.clone(), ParamValue::from_json(v))),
                )?,
                Some(other) => {
                    return Err(ServeError::malformed(format!(
                        "load request: parameters must be an object, found {other}"
                    )));
                }
            };
            let repo = st.repo.clone();
            let name = m.clone();
            let report = blocking(move || repo.load_with_canary(&name, canary)).await?;
            load_outcome(&m, &report)?;
            Ok(json!({}))
        }
        .await,
    )
}

/// A load that refused a version, a canary or the fp32 shadow is an error (what is serving keeps
/// serving).
pub fn load_outcome(model: &str, r: &crate::repository::LoadReport) -> Result<()> {
    if let Some((v, why)) = r.refused.first() {
        return Err(ServeError::VersionRefused {
            model: model.into(),
            version: *v,
            reason: why.clone(),
        });
    }
    if let Some((v, why)) = &r.canary_refused {
        return Err(ServeError::CanaryRefused {
            model: model.into(),
            version: *v,
            reason: why.clone(),
        });
    }
    if let Some((path, why)) = &r.shadow_refused {
        return Err(ServeError::ShadowRefused {
            model: model.into(),
            path: path.clone(),
            reason: why.clone(),
        });
    }
    Ok(())
}

async fn feedback(
    State(st): St,
    Path(m): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            st.repo.model(&m)?;
            let b = read_body(&headers, body, st.max_body_bytes).await?;
            live::feedback(&st.repo, &m, &b)
        }
        .await,
    )
}

async fn accuracy(State(st): St, Path(m): Path<String>) -> Response {
    let repo = st.repo.clone();
    respond(blocking(move || live::accuracy(&repo, &m)).await)
}

async fn unload(State(st): St, Path(m): Path<String>, headers: HeaderMap, body: Body) -> Response {
    respond(
        async {
            let b = read_body(&headers, body, st.max_body_bytes).await?;
            optional_json(&b)?;
            let repo = st.repo.clone();
            blocking(move || repo.unload(&m)).await?;
            Ok(json!({}))
        }
        .await,
    )
}

async fn metrics(State(st): St) -> Response {
    let repo = st.repo.clone();
    let _ = tokio::task::spawn_blocking(move || live::refresh_metrics(&repo)).await;
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        st.metrics().render(),
    )
        .into_response()
}
