//! The optional per-model `DIR/<name>/config.json` and the batching limits it can override.
//!
//! ```json
//! {
//!   "version_policy": {"latest": 2},
//!   "batching": {"max_batch": 1024, "max_delay_us": 500, "queue": 256}
//! }
//! ```
//!
//! - `version_policy`: which version folders are served. `{"latest": N}` (the default, with
//!   N = 1): the N highest; `{"specific": [1, 3]}`: exactly those; `"all"`: every version found.
//!   Requests that name no version go to the highest served version.
//! - `batching` (every field optional; absent fields take the server's command-line values):
//!   `max_batch` rows merged into one model call, `max_delay_us` how long the first request of a
//!   batch waits for others, `queue` requests waiting before new ones are refused (503 /
//!   RESOURCE_EXHAUSTED), `max_request_rows` rows one request may carry.
//!
//! - `monitor` (every field optional): the continuous accuracy monitor ([`MonitorSection`]):
//!
//!   ```json
//!   "monitor": {
//!     "window_rows": 100000, "max_pending_requests": 100000, "max_pending_rows": 10000000,
//!     "ttl_secs": 3600, "auc_rows": 4000000, "min_alert_rows": 10000,
//!     "budget_ne_percent": 0.05,
//!     "shadow": {"reference": "fp32/model.safetensors", "fraction": 0.1},
//!     "canary": {"version": 2, "fraction": 0.2, "min_labels": 10000,
//!                "max_delta_ne_percent": 0.05, "min_auc_ratio": 0.999}
//!   }
//!   ```
//!
//!   `budget_ne_percent` overrides the ΔNE budget read from the serving artifact's provenance
//!   (what `quantize` recorded); `shadow.reference` is the fp32 reference artifact (relative to
//!   the model folder, or absolute) that scores `fraction` of the requests carrying an id;
//!   `canary` loads `version` beside the version policy's choice and sends it `fraction` of the
//!   traffic until `min_labels` labelled rows decide (`max_delta_ne_percent` defaults to the
//!   budget).
//!
//! - `tables` (every field optional): serve the model's tables from a Redis Cluster
//!   ([`TablesSection`]; `quantrec serve --tables-redis` gives the defaults):
//!
//!   ```json
//!   "tables": {"redis": "redis://127.0.0.1:7101,127.0.0.1:7102", "namespace": "quantrec",
//!              "name": "dlrm", "cache_bytes": 67108864, "deadline_ms": 1000, "verify": false}
//!   ```
//!
//!   `name` is the model's name in the store (default: the model folder's name), `verify`
//!   re-reads every block at load; `{"local": true}` keeps the artifact's own tables even when
//!   the server has `--tables-redis`.
//!
//! Unknown fields are an error, so a misspelt setting is refused at load rather than ignored, and
//! every number is checked when the file is read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::monitor::{CanaryPolicy, MonitorConfig};
use crate::{Result, ServeError};

/// Which versions of a model are served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionPolicy {
    /// The `N` highest version numbers found.
    Latest(u32),
    /// Exactly these versions (those present on disk).
    Specific(Vec<u64>),
    /// Every version found.
    All,
}

impl Default for VersionPolicy {
    fn default() -> Self {
        VersionPolicy::Latest(1)
    }
}

impl VersionPolicy {
    /// The versions to serve out of those found on disk, highest first.
    pub fn select(&self, found: &[u64]) -> Vec<u64> {
        let mut v: Vec<u64> = found.to_vec();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.dedup();
        match self {
            VersionPolicy::Latest(n) => v.into_iter().take(*n as usize).collect(),
            VersionPolicy::Specific(want) => v.into_iter().filter(|x| want.contains(x)).collect(),
            VersionPolicy::All => v,
        }
    }
}

/// Per-model overrides of the server's batching limits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchingConfig {
    /// Rows merged into one model call.
    #[serde(default)]
    pub max_batch: Option<usize>,
    /// How long the first request of a batch waits for others, in microseconds.
    #[serde(default)]
    pub max_delay_us: Option<u64>,
    /// Requests waiting in the queue before new ones are refused.
    #[serde(default)]
    pub queue: Option<usize>,
    /// Rows one request may carry.
    #[serde(default)]
    pub max_request_rows: Option<usize>,
}

/// The fp32 shadow: a reference model scoring a fraction of the traffic for comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowConfig {
    /// The reference artifact: relative to the model folder, or absolute.
    pub reference: PathBuf,
    /// Fraction of the requests carrying an id that the reference also scores (0 < f ≤ 1).
    #[serde(default = "one")]
    pub fraction: f64,
}

fn one() -> f64 {
    1.0
}

fn default_min_labels() -> u64 {
    10_000
}

/// A canary launch: a version served beside the serving one for a fraction of the traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// The canary's version number (loaded beside those the version policy selects).
    pub version: u64,
    /// Fraction of the requests that name no version that the canary answers (0 < f ≤ 1).
    pub fraction: f64,
    /// Labelled canary rows before the decision.
    #[serde(default = "default_min_labels")]
    pub min_labels: u64,
    /// Largest ΔNE (percent) against the serving version on the same rows that still promotes;
    /// defaults to the model's budget.
    #[serde(default)]
    pub max_delta_ne_percent: Option<f64>,
    /// Also require canary AUC ≥ this ratio of the serving version's.
    #[serde(default)]
    pub min_auc_ratio: Option<f64>,
}

impl CanaryConfig {
    /// The policy, with `budget` standing in for an absent `max_delta_ne_percent`.
    pub fn policy(&self, budget: Option<f64>) -> std::result::Result<CanaryPolicy, String> {
        let max = self.max_delta_ne_percent.or(budget).ok_or_else(|| {
            "canary: no max_delta_ne_percent given and the serving version's provenance records no ΔNE budget".to_string()
        })?;
        let p = CanaryPolicy {
            fraction: self.fraction,
            min_labels: self.min_labels,
            max_delta_ne_percent: max,
            min_auc_ratio: self.min_auc_ratio,
        };
        p.validate().map_err(|e| format!("canary: {e}"))?;
        Ok(p)
    }
}

/// The `monitor` section of config.json: [`MonitorConfig`]'s sizes (absent fields take its
/// defaults), the fp32 shadow and a canary launch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSection {
    /// Labelled rows in each version's sliding window.
    #[serde(default)]
    pub window_rows: Option<usize>,
    /// Requests remembered while they wait for labels.
    #[serde(default)]
    pub max_pending_requests: Option<usize>,
    /// Rows remembered while they wait for labels.
    #[serde(default)]
    pub max_pending_rows: Option<usize>,
    /// Seconds a prediction waits for its label.
    #[serde(default)]
    pub ttl_secs: Option<f64>,
    /// Rows kept for the exact AUC since load.
    #[serde(default)]
    pub auc_rows: Option<usize>,
    /// Labelled shadow rows before the fp32 comparison may alert.
    #[serde(default)]
    pub min_alert_rows: Option<u64>,
    /// The ΔNE budget (percent), overriding the artifact's provenance.
    #[serde(default)]
    pub budget_ne_percent: Option<f64>,
    /// The fp32 shadow.
    #[serde(default)]
    pub shadow: Option<ShadowConfig>,
    /// A canary launch.
    #[serde(default)]
    pub canary: Option<CanaryConfig>,
}

impl MonitorSection {
    /// The monitor's sizes (the budget here is only the override; see [`MonitorSection`]).
    pub fn monitor_config(&self) -> MonitorConfig {
        let d = MonitorConfig::default();
        MonitorConfig {
            window_rows: self.window_rows.unwrap_or(d.window_rows),
            max_pending_requests: self.max_pending_requests.unwrap_or(d.max_pending_requests),
            max_pending_rows: self.max_pending_rows.unwrap_or(d.max_pending_rows),
            ttl_secs: self.ttl_secs.unwrap_or(d.ttl_secs),
            auc_rows: self.auc_rows.unwrap_or(d.auc_rows),
            min_alert_rows: self.min_alert_rows.unwrap_or(d.min_alert_rows),
            budget_ne_percent: self.budget_ne_percent,
        }
    }

    /// Checks every number; returns what is wrong.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.monitor_config().validate()?;
        if let Some(s) = &self.shadow {
            if s.reference.as_os_str().is_empty() {
                return Err("shadow.reference is empty".into());
            }
            if !(s.fraction > 0.0 && s.fraction <= 1.0) {
                return Err(format!(
                    "shadow.fraction must be in (0, 1], found {}",
                    s.fraction
                ));
            }
        }
        if let Some(c) = &self.canary {
            // A placeholder budget: only the given numbers are checked here.
            c.policy(Some(c.max_delta_ne_percent.unwrap_or(0.0)))?;
        }
        Ok(())
    }

    /// The shadow reference's path for the model folder `dir`.
    pub fn reference_path(&self, dir: &Path) -> Option<PathBuf> {
        self.shadow.as_ref().map(|s| {
            if s.reference.is_absolute() {
                s.reference.clone()
            } else {
                dir.join(&s.reference)
            }
        })
    }
}

/// The `tables` section of config.json: where the model's tables are served from (absent
/// fields take the server's `--tables-*` values).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TablesSection {
    /// Seed nodes of the Redis Cluster, comma separated.
    #[serde(default)]
    pub redis: Option<String>,
    /// Key namespace of the store.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The model's name in the store (default: the model folder's name).
    #[serde(default)]
    pub name: Option<String>,
    /// Bytes of the local hot-row cache.
    #[serde(default)]
    pub cache_bytes: Option<usize>,
    /// Deadline of one model call's row fetch, in milliseconds.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// Re-read every block and check its checksum at load.
    #[serde(default)]
    pub verify: Option<bool>,
    /// Serve the artifact's own tables, whatever the server's defaults.
    #[serde(default)]
    pub local: bool,
}

impl TablesSection {
    /// Checks the given values; returns what is wrong.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.local && self.redis.is_some() {
            return Err("local and redis contradict each other".into());
        }
        if let Some(r) = &self.redis {
            quantrec_tables::ClusterOptions::from_urls(r).map_err(|e| e.to_string())?;
        }
        if let Some(ns) = &self.namespace {
            quantrec_tables::layout::Keys::new(ns).map_err(|e| e.to_string())?;
        }
        if self.name.as_deref().is_some_and(str::is_empty) {
            return Err("name is empty".into());
        }
        if self.deadline_ms == Some(0) {
            return Err("deadline_ms must be at least 1".into());
        }
        Ok(())
    }
}

/// The contents of `DIR/<name>/config.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRepoConfig {
    /// Which versions are served.
    #[serde(default)]
    pub version_policy: VersionPolicy,
    /// Batching limits.
    #[serde(default)]
    pub batching: BatchingConfig,
    /// The accuracy monitor, fp32 shadow and canary launch.
    #[serde(default)]
    pub monitor: MonitorSection,
    /// Tables in a Redis Cluster.
    #[serde(default)]
    pub tables: TablesSection,
}

impl ModelRepoConfig {
    /// Reads `dir/config.json`; the default config when the file is absent.
    pub fn read(dir: &Path) -> Result<ModelRepoConfig> {
        let path = dir.join("config.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ModelRepoConfig::default());
            }
            Err(e) => {
                return Err(ServeError::Repository {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        let config: ModelRepoConfig =
            serde_json::from_str(&text).map_err(|e| ServeError::Repository {
                path: path.clone(),
                reason: format!("invalid config.json: {e}"),
            })?;
        config
            .monitor
            .validate()
            .map_err(|e| ServeError::Repository {
                path,
                reason: format!("invalid config.json: monitor: {e}"),
            })?;
        config
            .tables
            .validate()
            .map_err(|e| ServeError::Repository {
                path: dir.join("config.json"),
                reason: format!("invalid config.json: tables: {e}"),
            })?;
        Ok(config)
    }
}

/// The batching limits in force for one model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Rows merged into one model call (at least 1).
    pub max_batch: usize,
    /// How long the first request of a batch waits for others.
    pub max_delay: Duration,
    /// Requests waiting before new ones are refused (at least 1).
    pub queue: usize,
    /// Rows one request may carry.
    pub max_request_rows: usize,
}

impl Limits {
    /// These limits with `config`'s overrides applied.
    pub fn with_overrides(self, config: &BatchingConfig) -> Limits {
        Limits {
            max_batch: config.max_batch.unwrap_or(self.max_batch).max(1),
            max_delay: config
                .max_delay_us
                .map_or(self.max_delay, Duration::from_micros),
            queue: config.queue.unwrap_or(self.queue).max(1),
            max_request_rows: config
                .max_request_rows
                .unwrap_or(self.max_request_rows)
                .max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_select_versions() {
        let found = [3, 1, 10, 2];
        assert_eq!(VersionPolicy::default().select(&found), vec![10]);
        assert_eq!(VersionPolicy::Latest(2).select(&found), vec![10, 3]);
        assert_eq!(
            VersionPolicy::Specific(vec![1, 2, 7]).select(&found),
            vec![2, 1]
        );
        assert_eq!(VersionPolicy::All.select(&found), vec![10, 3, 2, 1]);
    }

    #[test]
    fn config_parses_and_refuses_unknown_fields() {
        let c: ModelRepoConfig = serde_json::from_str(
            r#"{"version_policy": {"specific": [2]}, "batching": {"max_batch": 64}}"#,
        )
        .unwrap();
        assert_eq!(c.version_policy, VersionPolicy::Specific(vec![2]));
        assert_eq!(c.batching.max_batch, Some(64));
        let all: ModelRepoConfig = serde_json::from_str(r#"{"version_policy": "all"}"#).unwrap();
        assert_eq!(all.version_policy, VersionPolicy::All);
        assert!(
            serde_json::from_str::<ModelRepoConfig>(r#"{"batching": {"max_bach": 1}}"#).is_err()
        );
    }

    fn read_text(tag: &str, text: &str) -> Result<ModelRepoConfig> {
        let dir =
            std::env::temp_dir().join(format!("quantrec-config-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), text).unwrap();
        let r = ModelRepoConfig::read(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    #[test]
    fn monitor_section_parses_and_is_validated_at_read() {
        let c = read_text(
            "ok",
            r#"{"monitor": {"window_rows": 500, "ttl_secs": 60, "budget_ne_percent": 0.1,
                "shadow": {"reference": "ref.safetensors", "fraction": 0.5},
                "canary": {"version": 2, "fraction": 0.2, "min_labels": 100}}}"#,
        )
        .unwrap();
        let m = c.monitor.monitor_config();
        assert_eq!((m.window_rows, m.ttl_secs), (500, 60.0));
        assert_eq!(m.budget_ne_percent, Some(0.1));
        assert_eq!(
            c.monitor.reference_path(Path::new("/models/m")),
            Some(PathBuf::from("/models/m/ref.safetensors"))
        );
        let canary = c.monitor.canary.as_ref().unwrap();
        assert_eq!(canary.policy(Some(0.1)).unwrap().max_delta_ne_percent, 0.1);
        assert!(canary.policy(None).is_err(), "no budget anywhere");
        for (tag, bad, what) in [
            ("w", r#"{"monitor": {"window_rows": 0}}"#, "window_rows"),
            ("t", r#"{"monitor": {"ttl_secs": -1}}"#, "ttl_secs"),
            (
                "s",
                r#"{"monitor": {"shadow": {"reference": "r", "fraction": 1.5}}}"#,
                "shadow.fraction",
            ),
            (
                "c",
                r#"{"monitor": {"canary": {"version": 2, "fraction": 0}}}"#,
                "fraction",
            ),
            (
                "m",
                r#"{"monitor": {"canary": {"version": 2, "fraction": 0.5, "min_labels": 0}}}"#,
                "min_labels",
            ),
            ("u", r#"{"monitor": {"windw_rows": 5}}"#, "unknown field"),
            ("td", r#"{"tables": {"deadline_ms": 0}}"#, "deadline_ms"),
            (
                "tl",
                r#"{"tables": {"local": true, "redis": "127.0.0.1:7101"}}"#,
                "contradict",
            ),
            ("tn", r#"{"tables": {"namespace": "a b"}}"#, "namespace"),
            ("tr", r#"{"tables": {"redis": " , "}}"#, "redis urls"),
            ("tu", r#"{"tables": {"cache_rows": 5}}"#, "unknown field"),
        ] {
            let e = read_text(tag, bad).unwrap_err().to_string();
            assert!(e.contains(what), "{bad}: {e}");
        }
    }
}
