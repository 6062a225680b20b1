//! The monitor on live traffic: which version answers a request (the serving version, the canary
//! for its fraction, or the version the request names), remembering the answer under the
//! request's id, the secondary scores taken after the answer (the fp32 shadow for its fraction,
//! the serving version for a canary's request), the feedback and accuracy endpoints, and acting
//! on what the monitor reports (alerts, a canary verdict).
//!
//! Secondary scores never delay or change the answer: they are queued on the other model's
//! batcher once the answer is computed, and the monitor holds a request's labels until its
//! secondary scores are in ([`super::Secondary`]).

use std::sync::Arc;
use std::time::Duration;

use quantrec_data::Batch;
use serde::Deserialize;
use serde_json::Value;

use super::{Events, FeedbackEntry, Monitor, Role, Secondary, ServedPrediction};
use crate::batcher::Scores;
use crate::repository::Repository;
use crate::version::LoadedVersion;
use crate::{Result, ServeError};

/// A secondary score to take after the answer.
#[derive(Debug, Clone)]
enum Extra {
    Reference(Arc<LoadedVersion>),
    Incumbent(Arc<LoadedVersion>),
}

/// Where one request goes, and what else scores it.
#[derive(Debug)]
pub struct Route {
    /// The model name.
    pub model: String,
    /// The version that answers.
    pub lv: Arc<LoadedVersion>,
    /// Its role.
    pub role: Role,
    extras: Vec<Extra>,
    monitor: Arc<Monitor>,
    repo: Arc<Repository>,
}

/// Routes a request of `model` naming `version` (or none); `has_id` says whether its answer will
/// be remembered for feedback (only then is it shadowed or paired).
pub fn route(
    repo: &Arc<Repository>,
    model: &str,
    version: Option<&str>,
    has_id: bool,
) -> Result<Route> {
    let entry = repo.model(model)?;
    let serving = entry.serving();
    let explicit = version.filter(|v| !v.is_empty());
    let (lv, role) = match (explicit, &serving.canary, serving.canary_version()) {
        (None, Some(c), Some(canary)) if c.router.next() => (canary.clone(), Role::Canary),
        _ => {
            let lv = repo.version(model, explicit)?;
            let role = serving.role_of(lv.version());
            (lv, role)
        }
    };
    let mut extras = Vec::new();
    if has_id {
        if let Some(s) = &serving.shadow
            && s.reference.signature == lv.signature
            && s.router.next()
        {
            extras.push(Extra::Reference(s.reference.clone()));
        }
        if role == Role::Canary
            && let Some(inc) = serving.default_version()
            && inc.signature == lv.signature
        {
            extras.push(Extra::Incumbent(inc.clone()));
        }
    }
    Ok(Route {
        model: model.to_string(),
        lv,
        role,
        extras,
        monitor: entry.monitor(),
        repo: repo.clone(),
    })
}

impl Route {
    /// Scores `batch` on the routed version; with a request `id`, remembers the answer for
    /// feedback and queues the secondary scores (after the answer is computed).
    pub async fn infer(
        self,
        batch: Batch,
        timeout: Option<Duration>,
        id: Option<&str>,
    ) -> Result<Scores> {
        let copy = (!self.extras.is_empty() && id.is_some()).then(|| batch.clone());
        let scores = self.lv.infer(batch, timeout).await?;
        let Some(id) = id else {
            return Ok(scores);
        };
        let served = ServedPrediction {
            version: self.lv.version_text().to_string(),
            role: self.role,
            probabilities: scores.probabilities.clone(),
            reference: None,
            incumbent: None,
        };
        let extras = copy.as_ref().map_or(0, |_| self.extras.len());
        if let Err(r) = self.monitor.record_with(id, served, extras) {
            tracing::debug!(model = %self.model, id, reason = r.as_str(), "answer not remembered for feedback");
            return Ok(scores);
        }
        if let Some(batch) = copy {
            for extra in self.extras {
                let (monitor, repo, model, id, batch) = (
                    self.monitor.clone(),
                    self.repo.clone(),
                    self.model.clone(),
                    id.to_string(),
                    batch.clone(),
                );
                tokio::spawn(async move {
                    let secondary = match extra {
                        Extra::Reference(r) => {
                            Secondary::Reference(score(&r, batch, &model, "fp32 shadow").await)
                        }
                        Extra::Incumbent(s) => {
                            let p = score(&s, batch, &model, "canary pairing").await;
                            Secondary::Incumbent(s.version_text().to_string(), p)
                        }
                    };
                    act(&repo, &model, monitor.complete(&id, secondary));
                });
            }
        }
        Ok(scores)
    }
}

/// A secondary score (`None` when it failed, logged).
async fn score(lv: &LoadedVersion, batch: Batch, model: &str, what: &str) -> Option<Vec<f32>> {
    match lv.infer(batch, None).await {
        Ok(s) => Some(s.probabilities),
        Err(e) => {
            tracing::warn!(model, version = lv.version_text(), error = %e, "{what} failed: the request stays unpaired");
            None
        }
    }
}

/// Acts on what the monitor reported: logs and counts alerts; hands a canary verdict to the
/// repository (off the I/O threads), which promotes or rolls back.
pub fn act(repo: &Arc<Repository>, model: &str, events: Events) {
    for (version, why) in &events.new_alerts {
        tracing::warn!(model, version = %version, alert = %why, "accuracy alert");
        repo.context().metrics.alert(model, version);
    }
    if let Some((version, verdict)) = events.verdict {
        let (repo, model) = (repo.clone(), model.to_string());
        let conclude = move || {
            if let Err(e) = repo.conclude_canary(&model, &version, &verdict) {
                tracing::error!(model = %model, version = %version, error = %e, "acting on the canary verdict failed");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn_blocking(conclude);
            }
            Err(_) => conclude(),
        }
    }
}

/// The body of `POST /v2/models/<name>/feedback`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    feedback: Vec<FeedbackEntry>,
}

/// `POST /v2/models/<name>/feedback`: takes the labels, logs every rejection with why, counts
/// them, acts on the monitor's events; answers `{"accepted": N, "rejected": M}`.
pub fn feedback(repo: &Arc<Repository>, model: &str, body: &[u8]) -> Result<Value> {
    let entry = repo.model(model)?;
    let body: FeedbackBody = serde_json::from_slice(body)
        .map_err(|e| ServeError::malformed(format!("feedback JSON: {e}")))?;
    let out = entry.monitor().feedback(&body.feedback);
    for (id, why) in &out.rejections {
        tracing::info!(model, id = %id, reason = why.as_str(), "feedback entry rejected");
    }
    let reasons: Vec<&str> = out.rejections.iter().map(|(_, r)| r.as_str()).collect();
    repo.context()
        .metrics
        .feedback(model, out.accepted, &reasons);
    let answer = serde_json::json!({"accepted": out.accepted, "rejected": out.rejected});
    act(repo, model, out.events);
    Ok(answer)
}

/// `GET /v2/models/<name>/accuracy`: the monitor's report with the model's name.
pub fn accuracy(repo: &Repository, model: &str) -> Result<Value> {
    let report = repo.model(model)?.monitor().report();
    let mut v = serde_json::to_value(&report).map_err(|e| ServeError::Io {
        what: "encoding the accuracy report".into(),
        source: std::io::Error::other(e),
    })?;
    v["model_name"] = Value::String(model.to_string());
    Ok(v)
}

/// Refreshes the monitor's gauges of every loaded model (before `/metrics` is rendered).
pub fn refresh_metrics(repo: &Repository) {
    let reports: Vec<(String, super::AccuracyReport)> = repo
        .loaded()
        .iter()
        .map(|e| (e.name.clone(), e.monitor().report()))
        .collect();
    repo.context()
        .metrics
        .monitor_figures(reports.iter().map(|(n, r)| (n.as_str(), r)));
}

/// A repository load parameter's value (KServe JSON or gRPC `ModelRepositoryParameter`).
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    /// A string (numbers may come as strings, as KServe clients often send them).
    Text(String),
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
}

impl ParamValue {
    /// The value of a JSON parameter.
    pub fn from_json(v: &Value) -> ParamValue {
        match v {
            Value::String(s) => ParamValue::Text(s.clone()),
            Value::Number(n) => ParamValue::Number(n.as_f64().unwrap_or(f64::NAN)),
            Value::Bool(b) => ParamValue::Bool(*b),
            other => ParamValue::Text(other.to_string()),
        }
    }

    fn number(&self, name: &str) -> Result<f64> {
        let x = match self {
            ParamValue::Number(x) => Some(*x),
            ParamValue::Text(s) => s.trim().parse().ok(),
            ParamValue::Bool(_) => None,
        };
        x.filter(|x| x.is_finite())
            .ok_or_else(|| ServeError::Parameter {
                name: name.into(),
                reason: format!("must be a number, found {self:?}"),
            })
    }

    fn whole(&self, name: &str) -> Result<u64> {
        let x = self.number(name)?;
        if x < 0.0 || x.fract() != 0.0 || x > u64::MAX as f64 {
            return Err(ServeError::Parameter {
                name: name.into(),
                reason: format!("must be a non-negative integer, found {x}"),
            });
        }
        Ok(x as u64)
    }
}

/// The canary a load request asks for through its parameters: `canary_version` and
/// `canary_fraction` (required together), optional `canary_min_labels`,
/// `canary_max_delta_ne_percent` (default: the model's budget) and `canary_min_auc_ratio`. Any
/// other parameter is refused (quantrec reads its configuration from the repository on disk).
pub fn canary_parameters(
    params: impl IntoIterator<Item = (String, ParamValue)>,
) -> Result<Option<crate::config::CanaryConfig>> {
    let (mut version, mut fraction, mut min_labels, mut max_delta, mut min_auc) =
        (None, None, None, None, None);
    for (k, v) in params {
        match k.as_str() {
            "canary_version" => version = Some(v.whole(&k)?),
            "canary_fraction" => fraction = Some(v.number(&k)?),
            "canary_min_labels" => min_labels = Some(v.whole(&k)?),
            "canary_max_delta_ne_percent" => max_delta = Some(v.number(&k)?),
            "canary_min_auc_ratio" => min_auc = Some(v.number(&k)?),
            _ => crate::http::check_load_parameters(std::iter::once(k.as_str()))?,
        }
    }
    let any =
        fraction.is_some() || min_labels.is_some() || max_delta.is_some() || min_auc.is_some();
    let Some(version) = version else {
        return match any {
            true => Err(ServeError::Parameter {
                name: "canary_version".into(),
                reason: "canary parameters need the canary's version".into(),
            }),
            false => Ok(None),
        };
    };
    let fraction = fraction.ok_or_else(|| ServeError::Parameter {
        name: "canary_fraction".into(),
        reason: "a canary needs the fraction of traffic it answers".into(),
    })?;
    let c = crate::config::CanaryConfig {
        version,
        fraction,
        min_labels: min_labels.unwrap_or(10_000),
        max_delta_ne_percent: max_delta,
        min_auc_ratio: min_auc,
    };
    c.policy(Some(max_delta.unwrap_or(0.0)))
        .map_err(|reason| ServeError::Parameter {
            name: "canary".into(),
            reason,
        })?;
    Ok(Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: ParamValue) -> (String, ParamValue) {
        (k.to_string(), v)
    }

    #[test]
    fn canary_parameters_parse_and_refuse() {
        let c = canary_parameters([
            p("canary_version", ParamValue::Text("2".into())),
            p("canary_fraction", ParamValue::Number(0.25)),
            p("canary_min_labels", ParamValue::Text("500".into())),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((c.version, c.fraction, c.min_labels), (2, 0.25, 500));
        assert_eq!(c.max_delta_ne_percent, None);
        assert_eq!(canary_parameters([]).unwrap(), None);
        for bad in [
            vec![p("canary_fraction", ParamValue::Number(0.5))],
            vec![p("canary_version", ParamValue::Number(2.0))],
            vec![
                p("canary_version", ParamValue::Number(2.5)),
                p("canary_fraction", ParamValue::Number(0.5)),
            ],
            vec![
                p("canary_version", ParamValue::Number(2.0)),
                p("canary_fraction", ParamValue::Number(1.5)),
            ],
            vec![
                p("canary_version", ParamValue::Bool(true)),
                p("canary_fraction", ParamValue::Number(0.5)),
            ],
            vec![p("config", ParamValue::Text("{}".into()))],
        ] {
            assert!(canary_parameters(bad.clone()).is_err(), "{bad:?}");
        }
    }
}
