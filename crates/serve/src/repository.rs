//! The model repository: Triton's layout `DIR/<name>/<version>/model.safetensors` with an optional
//! `DIR/<name>/config.json` ([`crate::config`]), loaded versions, and hot reload.
//!
//! A (re)load reads the model's config, selects versions by its policy, keeps versions whose file
//! is unchanged, and loads and warms up new or changed ones beside those serving. Only then is the
//! model's set of versions swapped, atomically: a request holds the version it started on until it
//! is answered, so requests in flight finish there. A version that fails to load or validate is
//! refused with a log line and a `failed_load` event, and whatever served before keeps serving
//! (including an older file of the same version number). A refused file is not retried until it
//! changes.
//!
//! Each model holds its versions in a [`Serving`] set; requests that name no version go to its
//! default (the highest). This is where a canary or a shadow version joins the serving one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwap;

use crate::config::ModelRepoConfig;
use crate::version::{Context, FileId, LoadedVersion};
use crate::{Result, ServeError};

/// The artifact file name inside a version folder.
pub const ARTIFACT: &str = "model.safetensors";

/// The versions of one model that are serving.
#[derive(Debug, Default)]
pub struct Serving {
    /// Loaded versions by number.
    pub versions: BTreeMap<u64, Arc<LoadedVersion>>,
    /// The config in force.
    pub config: ModelRepoConfig,
}

impl Serving {
    /// The version requests without a version go to (the highest).
    pub fn default_version(&self) -> Option<&Arc<LoadedVersion>> {
        self.versions.values().next_back()
    }
}

/// A version that was refused, and the file that was refused.
#[derive(Clone, Debug)]
struct Refused {
    file: Option<FileId>,
    reason: String,
}

/// One model of the repository.
#[derive(Debug)]
pub struct ModelEntry {
    /// Its name (the folder name).
    pub name: String,
    serving: ArcSwap<Serving>,
    refused: Mutex<BTreeMap<u64, Refused>>,
}

impl ModelEntry {
    /// The versions serving now.
    pub fn serving(&self) -> Arc<Serving> {
        self.serving.load_full()
    }
}

/// What one (re)load of a model did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Versions newly loaded.
    pub loaded: Vec<u64>,
    /// Versions no longer served.
    pub retired: Vec<u64>,
    /// Versions refused, with why.
    pub refused: Vec<(u64, String)>,
}

/// A row of the repository index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Model name.
    pub name: String,
    /// Version ("" for a model with no version found).
    pub version: String,
    /// `READY` or `UNAVAILABLE`.
    pub state: String,
    /// Why it is not ready.
    pub reason: String,
}

/// The model repository.
#[derive(Debug)]
pub struct Repository {
    root: PathBuf,
    ctx: Arc<Context>,
    models: RwLock<BTreeMap<String, Arc<ModelEntry>>>,
    /// Models unloaded through the API, which polling leaves alone until they are loaded again.
    unloaded: Mutex<BTreeSet<String>>,
    /// Serializes loads, unloads and polls.
    writer: Mutex<()>,
}

/// Version folders (numeric names holding the artifact) under a model folder.
fn version_folders(dir: &Path) -> Result<BTreeMap<u64, PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| ServeError::Repository {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut out = BTreeMap::new();
    for e in rd.flatten() {
        let Some(v) = e.file_name().to_str().and_then(|s| s.parse::<u64>().ok()) else {
            continue;
        };
        let p = e.path().join(ARTIFACT);
        if p.is_file() {
            out.insert(v, p);
        }
    }
    Ok(out)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl Repository {
    /// A repository at `root` (nothing loaded yet; see [`Repository::load_all`]).
    pub fn new(root: PathBuf, ctx: Arc<Context>) -> Result<Repository> {
        if !root.is_dir() {
            return Err(ServeError::Repository {
                path: root,
                reason: "not a directory".into(),
            });
        }
        Ok(Repository {
            root,
            ctx,
            models: RwLock::new(BTreeMap::new()),
            unloaded: Mutex::new(BTreeSet::new()),
            writer: Mutex::new(()),
        })
    }

    /// The shared context.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Names of the model folders on disk.
    pub fn names_on_disk(&self) -> Result<Vec<String>> {
        let rd = std::fs::read_dir(&self.root).map_err(|e| ServeError::Repository {
            path: self.root.clone(),
            reason: e.to_string(),
        })?;
        let mut v: Vec<String> = rd
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| valid_name(n))
            .collect();
        v.sort();
        Ok(v)
    }

    /// Loads every model on disk. Refusals are logged and reported, never fatal.
    pub fn load_all(&self) -> Result<Vec<(String, Result<LoadReport>)>> {
        Ok(self
            .names_on_disk()?
            .into_iter()
            .map(|n| {
                let r = self.load(&n);
                (n, r)
            })
            .collect())
    }

    /// (Re)loads one model from disk (see the module docs). An error means nothing of the model
    /// could be served after the load, or the folder is unusable; refused versions beside
    /// serving ones are in the report.
    pub fn load(&self, name: &str) -> Result<LoadReport> {
        let _w = self.writer.lock().expect("repository lock");
        self.unloaded.lock().expect("repository lock").remove(name);
        self.load_locked(name)
    }

    fn load_locked(&self, name: &str) -> Result<LoadReport> {
        let dir = self.root.join(name);
        if !valid_name(name) || !dir.is_dir() {
            return Err(ServeError::UnknownModel { model: name.into() });
        }
        let config = ModelRepoConfig::read(&dir)?;
        let limits = self.ctx.limits.with_overrides(&config.batching);
        let on_disk = version_folders(&dir)?;
        let wanted = config
            .version_policy
            .select(&on_disk.keys().copied().collect::<Vec<_>>());
        let entry = self.entry(name);
        let old = entry.serving();
        let mut report = LoadReport::default();
        let mut versions = BTreeMap::new();
        let mut refused = entry.refused.lock().expect("repository lock").clone();
        for v in wanted {
            let path = &on_disk[&v];
            let file = FileId::of(path).ok();
            if let Some(cur) = old.versions.get(&v)
                && Some(cur.file) == file
                && cur.limits == limits
            {
                versions.insert(v, cur.clone());
                continue;
            }
            if let Some(r) = refused.get(&v)
                && r.file.is_some()
                && r.file == file
            {
                // Refused before and unchanged: keep what serves, do not retry.
                if let Some(cur) = old.versions.get(&v) {
                    versions.insert(v, cur.clone());
                }
                report.refused.push((v, r.reason.clone()));
                continue;
            }
            match LoadedVersion::load(&self.ctx, name, v, path, limits) {
                Ok(lv) => {
                    tracing::info!(
                        model = name,
                        version = v,
                        path = %path.display(),
                        load_ms = lv.load_time.as_millis() as u64,
                        mergeable = lv.warm.mergeable,
                        "version loaded"
                    );
                    self.ctx.metrics.event(name, &v.to_string(), "load");
                    refused.remove(&v);
                    report.loaded.push(v);
                    versions.insert(v, Arc::new(lv));
                }
                Err(e) => {
                    tracing::error!(model = name, version = v, error = %e, "version refused; what served before keeps serving");
                    self.ctx.metrics.event(name, &v.to_string(), "failed_load");
                    refused.insert(
                        v,
                        Refused {
                            file,
                            reason: e.to_string(),
                        },
                    );
                    report.refused.push((v, e.to_string()));
                    if let Some(cur) = old.versions.get(&v) {
                        versions.insert(v, cur.clone());
                    }
                }
            }
        }
        // A policy that selects only refused versions keeps the old ones rather than go dark.
        if versions.is_empty() && !old.versions.is_empty() && !report.refused.is_empty() {
            versions = old.versions.clone();
        }
        for v in old.versions.keys().filter(|v| !versions.contains_key(v)) {
            report.retired.push(*v);
            self.ctx.metrics.event(name, &v.to_string(), "unload");
            tracing::info!(model = name, version = v, "version retired");
        }
        refused.retain(|v, _| on_disk.contains_key(v));
        *entry.refused.lock().expect("repository lock") = refused;
        let empty = versions.is_empty();
        entry.serving.store(Arc::new(Serving { versions, config }));
        if empty {
            let reason = match report.refused.first() {
                Some((v, why)) => format!("no version could be loaded (version {v}: {why})"),
                None => "no version folder with a model.safetensors".into(),
            };
            return Err(ServeError::Repository { path: dir, reason });
        }
        Ok(report)
    }

    fn entry(&self, name: &str) -> Arc<ModelEntry> {
        let mut m = self.models.write().expect("repository lock");
        m.entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(ModelEntry {
                    name: name.into(),
                    serving: ArcSwap::from_pointee(Serving::default()),
                    refused: Mutex::new(BTreeMap::new()),
                })
            })
            .clone()
    }

    /// Stops serving a model. Requests in flight finish on the versions they started on.
    pub fn unload(&self, name: &str) -> Result<()> {
        let _w = self.writer.lock().expect("repository lock");
        let entry = self
            .models
            .write()
            .expect("repository lock")
            .remove(name)
            .ok_or_else(|| ServeError::UnknownModel { model: name.into() })?;
        self.unloaded
            .lock()
            .expect("repository lock")
            .insert(name.into());
        for v in entry.serving().versions.keys() {
            self.ctx.metrics.event(name, &v.to_string(), "unload");
        }
        tracing::info!(model = name, "model unloaded");
        Ok(())
    }

    /// One polling pass: reloads every model on disk that was not unloaded through the API (only
    /// new or changed versions are loaded) and unloads models whose folder is gone.
    pub fn poll(&self) {
        let Ok(names) = self.names_on_disk() else {
            tracing::error!(root = %self.root.display(), "cannot list the repository");
            return;
        };
        let _w = self.writer.lock().expect("repository lock");
        let unloaded = self.unloaded.lock().expect("repository lock").clone();
        let loaded: Vec<String> = self
            .models
            .read()
            .expect("repository lock")
            .keys()
            .cloned()
            .collect();
        for gone in loaded.iter().filter(|n| !names.contains(n)) {
            self.models.write().expect("repository lock").remove(gone);
            tracing::info!(model = %gone, "model folder removed: unloaded");
        }
        for n in names.iter().filter(|n| !unloaded.contains(*n)) {
            if let Err(e) = self.load_locked(n) {
                tracing::debug!(model = %n, error = %e, "poll: model not serving");
            }
        }
    }

    /// The model entry of `name`.
    pub fn model(&self, name: &str) -> Result<Arc<ModelEntry>> {
        self.models
            .read()
            .expect("repository lock")
            .get(name)
            .cloned()
            .ok_or_else(|| ServeError::UnknownModel { model: name.into() })
    }

    /// The version a request goes to: `version` when given (decimal), else the default.
    pub fn version(&self, name: &str, version: Option<&str>) -> Result<Arc<LoadedVersion>> {
        let entry = self.model(name)?;
        let serving = entry.serving();
        let unknown = |v: &str| ServeError::UnknownVersion {
            model: name.into(),
            version: v.into(),
            ready: serving.versions.keys().copied().collect(),
        };
        match version.filter(|v| !v.is_empty()) {
            Some(v) => {
                let n: u64 = v.parse().map_err(|_| unknown(v))?;
                serving.versions.get(&n).cloned().ok_or_else(|| unknown(v))
            }
            None => serving
                .default_version()
                .cloned()
                .ok_or_else(|| unknown("(default)")),
        }
    }

    /// Every model with its serving versions.
    pub fn loaded(&self) -> Vec<Arc<ModelEntry>> {
        self.models
            .read()
            .expect("repository lock")
            .values()
            .cloned()
            .collect()
    }

    /// The repository index: every model folder on disk with the state of each version found.
    pub fn index(&self, ready_only: bool) -> Result<Vec<IndexEntry>> {
        let mut out = Vec::new();
        for name in self.names_on_disk()? {
            let serving = self.model(&name).ok();
            let refused = serving
                .as_ref()
                .map(|e| e.refused.lock().expect("repository lock").clone())
                .unwrap_or_default();
            let found = version_folders(&self.root.join(&name)).unwrap_or_default();
            let serving = serving.map(|e| e.serving());
            if found.is_empty() && !ready_only {
                out.push(IndexEntry {
                    name: name.clone(),
                    version: String::new(),
                    state: "UNAVAILABLE".into(),
                    reason: "no version folder with a model.safetensors".into(),
                });
            }
            for v in found.keys() {
                let ready = serving.as_ref().is_some_and(|s| s.versions.contains_key(v));
                if ready_only && !ready {
                    continue;
                }
                let reason = match (&serving, refused.get(v)) {
                    (_, Some(r)) => r.reason.clone(),
                    (None, _) => "unloaded".into(),
                    _ if ready => String::new(),
                    _ => "not selected by the version policy".into(),
                };
                out.push(IndexEntry {
                    name: name.clone(),
                    version: v.to_string(),
                    state: if ready { "READY" } else { "UNAVAILABLE" }.into(),
                    reason,
                });
            }
        }
        Ok(out)
    }
}
