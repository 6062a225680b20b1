//! Model versions whose embedding tables live in a Redis Cluster ([`quantrec_tables`]).
//!
//! `quantrec serve --tables-redis URLS` ([`TablesDefaults`]) and a model's config.json `tables`
//! section ([`crate::config::TablesSection`]) resolve to the [`TablesSettings`] of each version.
//! At load, [`TablesHub::attach`] connects (one client per cluster and deadline, shared by every
//! version using it), checks that the manifest of the model's name points at exactly the
//! artifact's tables (the same content digest `quantrec tables push` computes), optionally
//! re-reads every block, and attaches the store as the model's row source behind a hot-row
//! cache: the forward pass then never reads the artifact's tables. Each attached version's
//! `quantrec_tables_*` metrics are reported on the server's registry with `model` and `version`
//! labels while it is loaded, and its cluster's reachability (a background `PING` of every
//! primary, every [`HEALTH_INTERVAL`]) is what readiness answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use quantrec_model::Model;
use quantrec_tables::{
    Cluster, ClusterOptions, Health, Policy, Registration, RemoteTables, Store, TablesCollector,
    TablesError,
};

use crate::config::TablesSection;

/// How often the reachability of a cluster is checked in the background.
pub const HEALTH_INTERVAL: Duration = Duration::from_millis(500);

/// The server-wide defaults (`quantrec serve --tables-*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TablesDefaults {
    /// Seed nodes of the cluster; `None`: tables in memory unless a model's config names one.
    pub redis: Option<String>,
    /// Key namespace of the store.
    pub namespace: String,
    /// Bytes of each version's hot-row cache.
    pub cache_bytes: usize,
    /// Deadline of one model call's row fetch.
    pub deadline: Duration,
    /// Re-read every block at load.
    pub verify: bool,
}

impl Default for TablesDefaults {
    fn default() -> Self {
        TablesDefaults {
            redis: None,
            namespace: "quantrec".into(),
            cache_bytes: 0,
            deadline: Duration::from_millis(1000),
            verify: false,
        }
    }
}

/// Where one model version's tables come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TablesSettings {
    /// Seed nodes of the cluster.
    pub redis: String,
    /// Key namespace.
    pub namespace: String,
    /// The model's name in the store.
    pub name: String,
    /// Bytes of the hot-row cache.
    pub cache_bytes: usize,
    /// Deadline of one model call's row fetch.
    pub deadline: Duration,
    /// Re-read every block at load.
    pub verify: bool,
}

impl TablesSettings {
    /// The settings of model `model` under `section` and the server's `defaults`; `None` for
    /// tables served from the artifact.
    pub fn resolve(
        defaults: &TablesDefaults,
        section: &TablesSection,
        model: &str,
    ) -> Option<TablesSettings> {
        if section.local {
            return None;
        }
        let redis = section.redis.clone().or_else(|| defaults.redis.clone())?;
        Some(TablesSettings {
            redis,
            namespace: section
                .namespace
                .clone()
                .unwrap_or_else(|| defaults.namespace.clone()),
            name: section.name.clone().unwrap_or_else(|| model.to_string()),
            cache_bytes: section.cache_bytes.unwrap_or(defaults.cache_bytes),
            deadline: section
                .deadline_ms
                .map_or(defaults.deadline, Duration::from_millis),
            verify: section.verify.unwrap_or(defaults.verify),
        })
    }
}

/// A cluster client and its reachability, shared by the versions that use it.
#[derive(Debug)]
struct SharedCluster {
    cluster: Arc<Cluster>,
    health: Health,
}

/// The remote tables of one loaded version.
#[derive(Debug)]
pub struct AttachedTables {
    /// What they were attached with.
    pub settings: TablesSettings,
    /// The tables (cache, metrics).
    pub tables: Arc<RemoteTables>,
    cluster: Arc<SharedCluster>,
    _metrics: Registration,
}

impl AttachedTables {
    /// Whether the cluster answered its last background ping (never blocks).
    pub fn reachable(&self) -> bool {
        self.cluster.health.reachable()
    }

    /// Why the cluster is not reachable, when it is not.
    pub fn unreachable_reason(&self) -> Option<String> {
        let s = self.cluster.health.state();
        (!s.reachable).then(|| s.error.unwrap_or_else(|| "no answer".into()))
    }
}

/// Cluster clients by seed nodes and deadline, and the server's tables metrics.
#[derive(Debug)]
pub struct TablesHub {
    /// The server-wide defaults.
    pub defaults: TablesDefaults,
    clusters: Mutex<HashMap<(String, Duration), Weak<SharedCluster>>>,
    collector: TablesCollector,
}

impl TablesHub {
    /// A hub whose metrics go to `registry` (labels `model`, `version`).
    pub fn new(
        defaults: TablesDefaults,
        registry: &prometheus::Registry,
    ) -> Result<TablesHub, TablesError> {
        let collector = TablesCollector::new(&["model", "version"])?;
        registry.register(Box::new(collector.clone()))?;
        Ok(TablesHub {
            defaults,
            clusters: Mutex::new(HashMap::new()),
            collector,
        })
    }

    fn cluster(&self, s: &TablesSettings) -> Result<Arc<SharedCluster>, TablesError> {
        let key = (s.redis.clone(), s.deadline);
        let mut clusters = self
            .clusters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        clusters.retain(|_, w| w.strong_count() > 0);
        if let Some(c) = clusters.get(&key).and_then(Weak::upgrade) {
            return Ok(c);
        }
        let mut o = ClusterOptions::from_urls(&s.redis)?;
        o.deadline = s.deadline;
        let cluster = Arc::new(Cluster::new(o)?);
        let health = Health::watch(&cluster, HEALTH_INTERVAL)?;
        let shared = Arc::new(SharedCluster { cluster, health });
        clusters.insert(key, Arc::downgrade(&shared));
        Ok(shared)
    }

    /// The cheap part of [`TablesHub::attach`], before the artifact is read: the cluster answers
    /// and holds a manifest for the model's name (a version refused for lack of either is
    /// retried by every poll, so this keeps those retries from re-reading the artifact).
    pub fn precheck(&self, settings: &TablesSettings) -> Result<(), TablesError> {
        let cluster = self.cluster(settings)?;
        Store::new(cluster.cluster.clone(), &settings.namespace)?
            .manifest(&settings.name)
            .map(|_| ())
    }

    /// Serves `model`'s tables from the store named by `settings` (see the module docs);
    /// `labels` are the metrics' `model` and `version` values. Blocks (network); call it off
    /// the I/O runtime.
    pub fn attach(
        &self,
        model: &mut Model,
        settings: &TablesSettings,
        labels: [&str; 2],
    ) -> Result<AttachedTables, TablesError> {
        let cluster = self.cluster(settings)?;
        let store = Store::new(cluster.cluster.clone(), &settings.namespace)?;
        let tables = Arc::new(RemoteTables::open_for(
            store.clone(),
            &settings.name,
            model,
            settings.cache_bytes,
            Policy::WTinyLfu,
        )?);
        if settings.verify {
            let r = store.verify(&settings.name)?;
            if r.version != tables.version() {
                return Err(TablesError::VersionMismatch {
                    model: settings.name.clone(),
                    namespace: settings.namespace.clone(),
                    stored: r.version,
                    local: tables.version().to_string(),
                });
            }
        }
        model.set_row_source(tables.clone())?;
        let registration = self.collector.add(&labels, tables.metrics())?;
        Ok(AttachedTables {
            settings: settings.clone(),
            tables,
            cluster,
            _metrics: registration,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_resolve_from_config_over_defaults() {
        let d = TablesDefaults {
            redis: Some("127.0.0.1:7101".into()),
            cache_bytes: 100,
            ..TablesDefaults::default()
        };
        let s = TablesSettings::resolve(&d, &TablesSection::default(), "m").unwrap();
        assert_eq!(
            (s.redis.as_str(), s.name.as_str(), s.namespace.as_str()),
            ("127.0.0.1:7101", "m", "quantrec")
        );
        assert_eq!((s.cache_bytes, s.deadline), (100, Duration::from_secs(1)));
        let section = TablesSection {
            name: Some("other".into()),
            cache_bytes: Some(5),
            deadline_ms: Some(20),
            verify: Some(true),
            ..TablesSection::default()
        };
        let s = TablesSettings::resolve(&d, &section, "m").unwrap();
        assert_eq!((s.name.as_str(), s.cache_bytes), ("other", 5));
        assert_eq!((s.deadline, s.verify), (Duration::from_millis(20), true));
        let local = TablesSection {
            local: true,
            ..TablesSection::default()
        };
        assert_eq!(TablesSettings::resolve(&d, &local, "m"), None);
        let none = TablesDefaults::default();
        assert_eq!(
            TablesSettings::resolve(&none, &TablesSection::default(), "m"),
            None
        );
        let own = TablesSection {
            redis: Some("127.0.0.1:7201".into()),
            ..TablesSection::default()
        };
        assert_eq!(
            TablesSettings::resolve(&none, &own, "m").map(|s| s.redis),
            Some("127.0.0.1:7201".into())
        );
    }

    #[test]
    fn an_unreachable_cluster_is_an_unavailable_error() {
        let registry = prometheus::Registry::new();
        let hub = TablesHub::new(TablesDefaults::default(), &registry).unwrap();
        let s = TablesSettings {
            redis: "127.0.0.1:1".into(),
            namespace: "ns".into(),
            name: "m".into(),
            cache_bytes: 0,
            deadline: Duration::from_millis(200),
            verify: false,
        };
        let e = hub.cluster(&s).unwrap_err();
        assert!(e.is_unavailable(), "{e}");
    }
}
