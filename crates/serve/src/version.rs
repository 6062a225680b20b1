//! One loaded model version: the model, its signature, its batcher and statistics, and the load
//! procedure every version goes through before it may serve.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use quantrec_data::Batch;
use quantrec_model::Model;
use quantrec_model::artifact::Artifact;
use tokio::sync::oneshot;

use crate::batcher::{Batcher, ComputePool, Job, Labels, Scores};
use crate::config::Limits;
use crate::metrics::Metrics;
use crate::remote_tables::{AttachedTables, TablesHub, TablesSettings};
use crate::stats::VersionStats;
use crate::tensors::Signature;
use crate::validate::{WarmUp, first_nonfinite_table_value, warm_up};
use crate::{Result, ServeError};

/// What every model version shares: the compute pool, the metrics and the server's options.
#[derive(Debug)]
pub struct Context {
    /// The compute pool.
    pub pool: Arc<ComputePool>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The server's batching limits (a model's config.json may override them).
    pub limits: Limits,
    /// Accept NaN and infinite dense values.
    pub allow_nonfinite: bool,
    /// Remote tables: the `--tables-*` defaults, cluster clients, their metrics.
    pub tables: TablesHub,
}

/// Size and modification time of an artifact: a changed file is a new load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    /// Bytes.
    pub len: u64,
    /// Modification time.
    pub modified: Option<SystemTime>,
}

impl FileId {
    /// The id of `path`.
    pub fn of(path: &Path) -> std::io::Result<FileId> {
        let m = std::fs::metadata(path)?;
        Ok(FileId {
            len: m.len(),
            modified: m.modified().ok(),
        })
    }
}

/// A model version that passed validation and is serving.
#[derive(Debug)]
pub struct LoadedVersion {
    /// Name and version.
    pub labels: Labels,
    /// The artifact.
    pub path: PathBuf,
    /// Its size and modification time when loaded.
    pub file: FileId,
    /// The model.
    pub model: Arc<Model>,
    /// Its inputs.
    pub signature: Signature,
    /// The warm-up's verdict on merging.
    pub warm: WarmUp,
    /// Batching limits in force.
    pub limits: Limits,
    /// Triton-style statistics.
    pub stats: Arc<VersionStats>,
    /// How long loading and validation took.
    pub load_time: Duration,
    /// The ΔNE budget (percent) recorded in the artifact's provenance, when there is one.
    pub budget_ne_percent: Option<f64>,
    /// The tables in a Redis Cluster, when they are served from there.
    pub remote: Option<AttachedTables>,
    batcher: Batcher,
}

/// The ΔNE budget (percent) an artifact's provenance records: `quantize` writes its search's gate
/// into the provenance notes as `"budget": "ΔNE <= 0.02%"`; a numeric `"budget_ne_pct"` is read
/// too. An AUC budget, or none, gives `None`.
pub fn provenance_budget(p: &quantrec_model::artifact::Provenance) -> Option<f64> {
    let notes: serde_json::Value = serde_json::from_str(p.notes.as_deref()?).ok()?;
    if let Some(x) = notes
        .get("budget_ne_pct")
        .and_then(serde_json::Value::as_f64)
    {
        return Some(x);
    }
    let text = notes.get("budget")?.as_str()?;
    let x: f64 = text
        .strip_prefix("ΔNE <= ")?
        .strip_suffix('%')?
        .trim()
        .parse()
        .ok()?;
    x.is_finite().then_some(x)
}

impl LoadedVersion {
    /// Loads `path` as version `version` of `model`: maps the artifact, checks its data digest,
    /// scans its tables for non-finite values, with `tables` attaches its tables in the Redis
    /// Cluster ([`TablesHub::attach`]: refused unless the store holds exactly these tables and
    /// answers), runs the warm-up (forward passes on synthetic in-range inputs on the compute
    /// pool, finite outputs required, row-independence probe) and starts its batcher. Blocks;
    /// call it off the I/O runtime.
    pub fn load(
        ctx: &Context,
        model: &str,
        version: u64,
        path: &Path,
        limits: Limits,
        tables: Option<&TablesSettings>,
    ) -> Result<LoadedVersion> {
        Self::load_as(
            ctx,
            model,
            version,
            &version.to_string(),
            path,
            limits,
            tables,
        )
    }

    /// [`LoadedVersion::load`] under a version label of its own (`version_text` in metrics and
    /// reports, e.g. `reference` for a shadow model).
    pub fn load_as(
        ctx: &Context,
        model: &str,
        version: u64,
        version_text: &str,
        path: &Path,
        limits: Limits,
        tables: Option<&TablesSettings>,
    ) -> Result<LoadedVersion> {
        let t0 = Instant::now();
        let refuse = |reason: String| ServeError::LoadFailed {
            model: model.into(),
            version,
            path: path.to_path_buf(),
            reason,
        };
        let tables_error = |e: quantrec_tables::TablesError| ServeError::Tables {
            model: model.into(),
            version,
            reason: e.to_string(),
            unavailable: e.is_unavailable(),
        };
        if let Some(s) = tables {
            ctx.tables.precheck(s).map_err(tables_error)?;
        }
        let file = FileId::of(path).map_err(|e| refuse(e.to_string()))?;
        let artifact = Artifact::load(path).map_err(|e| refuse(e.to_string()))?;
        artifact.verify().map_err(|e| refuse(e.to_string()))?;
        let budget_ne_percent = provenance_budget(&artifact.meta.provenance);
        let mut m = artifact.model;
        if let Some((t, r)) = first_nonfinite_table_value(&m) {
            return Err(refuse(format!(
                "table {t} row {r} holds a non-finite value"
            )));
        }
        let remote = match tables {
            Some(s) => Some(
                ctx.tables
                    .attach(&mut m, s, [model, version_text])
                    .map_err(tables_error)?,
            ),
            None => None,
        };
        let warm = ctx
            .pool
            .install(|| warm_up(&m))
            .map_err(|why| match &remote {
                // The warm-up's model calls fetch rows: a store that stopped answering since the
                // attach is a transient refusal, not a fault of the artifact.
                Some(r) => match r.tables.ping() {
                    Err(e) => tables_error(e),
                    Ok(()) => refuse(why),
                },
                None => refuse(why),
            })?;
        if let Some(r) = &remote {
            tracing::info!(
                model,
                version,
                store = %r.settings.redis,
                namespace = %r.settings.namespace,
                name = %r.settings.name,
                tables_version = r.tables.version(),
                cache_bytes = r.settings.cache_bytes,
                "tables served from the Redis Cluster"
            );
        }
        if let Some(why) = &warm.reason {
            tracing::warn!(model, version, reason = %why, "requests will not be merged for this version");
        }
        let labels = Labels {
            model: model.into(),
            version,
            version_text: version_text.to_string(),
        };
        let model_arc = Arc::new(m);
        let stats = Arc::new(VersionStats::default());
        let batcher = Batcher::start(
            model_arc.clone(),
            ctx.pool.clone(),
            limits,
            warm.mergeable,
            labels.clone(),
            ctx.metrics.clone(),
            stats.clone(),
        )
        .map_err(|e| refuse(format!("cannot start the batcher thread: {e}")))?;
        Ok(LoadedVersion {
            signature: Signature::of(model_arc.config()),
            labels,
            path: path.to_path_buf(),
            file,
            model: model_arc,
            warm,
            limits,
            stats,
            load_time: t0.elapsed(),
            budget_ne_percent,
            remote,
            batcher,
        })
    }

    /// The remote tables' settings, when the tables are served from a Redis Cluster.
    pub fn tables_settings(&self) -> Option<&TablesSettings> {
        self.remote.as_ref().map(|r| &r.settings)
    }

    /// Whether the version can answer: its remote tables' cluster answered its last background
    /// ping (always true with the artifact's own tables). Never blocks.
    pub fn tables_reachable(&self) -> bool {
        self.remote.as_ref().is_none_or(AttachedTables::reachable)
    }

    /// Model name.
    pub fn name(&self) -> &str {
        &self.labels.model
    }

    /// Version number.
    pub fn version(&self) -> u64 {
        self.labels.version
    }

    /// Queues a validated batch and waits for its scores. `timeout` bounds the time until its
    /// model call starts (expired requests are not computed).
    pub async fn infer(&self, batch: Batch, timeout: Option<Duration>) -> Result<Scores> {
        if batch.size > self.limits.max_request_rows {
            return Err(ServeError::TooManyRows {
                model: self.labels.model.clone(),
                rows: batch.size,
                max: self.limits.max_request_rows,
            });
        }
        let now = Instant::now();
        let (tx, rx) = oneshot::channel();
        self.batcher.submit(Job {
            batch,
            enqueued: now,
            deadline: timeout.map(|t| (now + t, t.as_micros() as u64)),
            reply: tx,
        })?;
        rx.await.unwrap_or_else(|_| {
            Err(ServeError::Unavailable {
                model: self.labels.model.clone(),
                version: self.labels.version,
            })
        })
    }

    /// The version's label (its number, or e.g. `reference`).
    pub fn version_text(&self) -> &str {
        &self.labels.version_text
    }

    /// Requests waiting in this version's queue.
    pub fn queue_depth(&self) -> usize {
        self.batcher.depth()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quantrec_model::artifact::Provenance;

    fn with_notes(notes: &str) -> Provenance {
        Provenance {
            notes: Some(notes.into()),
            ..Provenance::default()
        }
    }

    #[test]
    fn budget_is_read_from_the_provenance_notes() {
        assert_eq!(
            provenance_budget(&with_notes(r#"{"budget": "ΔNE <= 0.02%"}"#)),
            Some(0.02)
        );
        assert_eq!(
            provenance_budget(&with_notes(r#"{"budget_ne_pct": 0.5, "budget": null}"#)),
            Some(0.5)
        );
        assert_eq!(
            provenance_budget(&with_notes(r#"{"budget": "AUC drop <= 0.0005"}"#)),
            None
        );
        assert_eq!(provenance_budget(&with_notes("not json")), None);
        assert_eq!(provenance_budget(&Provenance::default()), None);
    }
}
