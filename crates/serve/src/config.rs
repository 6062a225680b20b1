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
//! Unknown fields are an error, so a misspelt setting is refused at load rather than ignored.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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

/// The contents of `DIR/<name>/config.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRepoConfig {
    /// Which versions are served.
    #[serde(default)]
    pub version_policy: VersionPolicy,
    /// Batching limits.
    #[serde(default)]
    pub batching: BatchingConfig,
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
        serde_json::from_str(&text).map_err(|e| ServeError::Repository {
            path,
            reason: format!("invalid config.json: {e}"),
        })
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
}
