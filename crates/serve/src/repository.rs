//! The model repository: Triton's layout `DIR/<name>/<version>/model.safetensors` with an optional
//! `DIR/<name>/config.json` ([`crate::config`]), loaded versions, and hot reload.
//!
//! A (re)load reads the model's config, selects versions by its policy, keeps versions whose file
//! is unchanged, and loads and warms up new or changed ones beside those serving. Only then is the
//! model's set of versions swapped, atomically: a request holds the version it started on until it
//! is answered, so requests in flight finish there. A version that fails to load or validate is
//! refused with a log line and a `failed_load` event, and whatever served before keeps serving
//! (including an older file of the same version number). A refused file is not retried until it
//! changes (one refused over its remote tables — not pushed, cluster unreachable — is retried
//! by every load and poll, since the store changes without the file changing).
//!
//! Each model holds its versions in a [`Serving`] set; requests that name no version go to its
//! default (the highest that is not a canary), or to the canary for its fraction of them.
//!
//! Each model has one [`Monitor`] ([`crate::monitor`]), kept across reloads, whose roles follow
//! the serving set: its versions are `serving`, a canary `canary`, the fp32 reference `shadow`.
//! A canary (config.json's `monitor.canary`, or the load API's parameters) is loaded beside what
//! the version policy selects, which never selects it by itself. When the monitor reaches a
//! verdict, [`Repository::conclude_canary`] records it and reloads: a promoted canary becomes an
//! ordinary version under the version policy (with `latest 1` it replaces the old version); a
//! rolled-back one is retired and not loaded again until its file changes. Both are one atomic
//! swap of the serving set, so no request fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwap;

use crate::config::{CanaryConfig, ModelRepoConfig};
use crate::monitor::{CanaryPolicy, FractionRouter, Monitor, Role, Verdict};
use crate::remote_tables::TablesSettings;
use crate::version::{Context, FileId, LoadedVersion};
use crate::{Result, ServeError};

/// The version label of a model's fp32 shadow reference (metrics, monitor reports).
pub const REFERENCE: &str = "reference";

/// A canary being launched.
#[derive(Debug, Clone)]
pub struct Canary {
    /// Its version number (one of [`Serving::versions`]).
    pub version: u64,
    /// Picks the requests it answers.
    pub router: Arc<FractionRouter>,
    /// When it is promoted or rolled back.
    pub policy: CanaryPolicy,
}

/// The fp32 reference scoring a fraction of the traffic.
#[derive(Debug, Clone)]
pub struct Shadow {
    /// The reference model.
    pub reference: Arc<LoadedVersion>,
    /// Picks the requests it scores.
    pub router: Arc<FractionRouter>,
}

/// The artifact file name inside a version folder.
pub const ARTIFACT: &str = "model.safetensors";

/// The versions of one model that are serving.
#[derive(Debug, Default)]
pub struct Serving {
    /// Loaded versions by number.
    pub versions: BTreeMap<u64, Arc<LoadedVersion>>,
    /// The config in force.
    pub config: ModelRepoConfig,
    /// The canary, while one is launched.
    pub canary: Option<Canary>,
    /// The fp32 shadow, when configured and loaded.
    pub shadow: Option<Shadow>,
}

impl Serving {
    /// The version requests without a version go to, the canary's share aside (the highest
    /// version that is not the canary).
    pub fn default_version(&self) -> Option<&Arc<LoadedVersion>> {
        let canary = self.canary.as_ref().map(|c| c.version);
        self.versions
            .iter()
            .rev()
            .find(|(v, _)| Some(**v) != canary)
            .map(|(_, lv)| lv)
    }

    /// The canary's loaded version, while one is launched.
    pub fn canary_version(&self) -> Option<&Arc<LoadedVersion>> {
        self.canary
            .as_ref()
            .and_then(|c| self.versions.get(&c.version))
    }

    /// The role of version `v`.
    pub fn role_of(&self, v: u64) -> Role {
        match &self.canary {
            Some(c) if c.version == v => Role::Canary,
            _ => Role::Serving,
        }
    }
}

/// A canary decision the repository remembers, so that reloads and polls honour it.
#[derive(Clone, Debug)]
struct Launch {
    file: Option<FileId>,
    promoted: bool,
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
    monitor: ArcSwap<Monitor>,
    /// A canary asked for through the load API (takes precedence over config.json's).
    canary_request: Mutex<Option<CanaryConfig>>,
    /// Canary decisions by version.
    launches: Mutex<BTreeMap<u64, Launch>>,
}

impl ModelEntry {
    /// The versions serving now.
    pub fn serving(&self) -> Arc<Serving> {
        self.serving.load_full()
    }

    /// The model's accuracy monitor.
    pub fn monitor(&self) -> Arc<Monitor> {
        self.monitor.load_full()
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
    /// The canary launched by this load, when it is a new one.
    pub canary: Option<u64>,
    /// A canary that could not be launched, with why.
    pub canary_refused: Option<(u64, String)>,
    /// Why the fp32 shadow reference could not be loaded.
    pub shadow_refused: Option<(PathBuf, String)>,
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
        self.load_with_canary(name, None)
    }

    /// [`Repository::load`], launching `canary` (or, with `None`, forgetting a canary asked for
    /// through an earlier call; config.json's canary still applies). An earlier decision about
    /// the named canary version is forgotten, so it is launched afresh.
    pub fn load_with_canary(&self, name: &str, canary: Option<CanaryConfig>) -> Result<LoadReport> {
        let _w = self.writer.lock().expect("repository lock");
        self.unloaded.lock().expect("repository lock").remove(name);
        if valid_name(name) && self.root.join(name).is_dir() {
            let entry = self.entry(name);
            if let Some(c) = &canary {
                entry
                    .launches
                    .lock()
                    .expect("repository lock")
                    .remove(&c.version);
            }
            *entry.canary_request.lock().expect("repository lock") = canary;
        }
        self.load_locked(name)
    }

    /// Acts on the monitor's verdict about `name`'s canary `version`: records it (reloads and
    /// polls honour it), counts it in the metrics, and reloads, which promotes the canary to an
    /// ordinary version or retires it. A verdict about a version that is no longer the canary is
    /// ignored.
    pub fn conclude_canary(&self, name: &str, version: &str, verdict: &Verdict) -> Result<()> {
        let _w = self.writer.lock().expect("repository lock");
        let entry = self.model(name)?;
        let serving = entry.serving();
        let Some(lv) = serving
            .canary_version()
            .filter(|lv| lv.version_text() == version)
            .cloned()
        else {
            tracing::info!(
                model = name,
                version,
                "verdict about a version that is no longer the canary: ignored"
            );
            return Ok(());
        };
        let promoted = matches!(verdict, Verdict::Promote { .. });
        entry.launches.lock().expect("repository lock").insert(
            lv.version(),
            Launch {
                file: Some(lv.file),
                promoted,
            },
        );
        {
            let mut req = entry.canary_request.lock().expect("repository lock");
            if req.as_ref().is_some_and(|c| c.version == lv.version()) {
                *req = None;
            }
        }
        let decision = if promoted { "promote" } else { "rollback" };
        match verdict {
            Verdict::Promote {
                delta_ne_percent,
                rows,
            } => tracing::info!(
                model = name,
                version,
                delta_ne_percent,
                rows,
                "canary promoted: within budget against the serving version on the same rows"
            ),
            Verdict::Rollback { reason, rows, .. } => {
                tracing::warn!(model = name, version, rows, reason = %reason, "canary rolled back")
            }
        }
        self.ctx.metrics.canary_decision(name, version, decision);
        entry.monitor().end_canary(promoted);
        self.load_locked(name).map(|_| ())
    }

    fn load_locked(&self, name: &str) -> Result<LoadReport> {
        let dir = self.root.join(name);
        if !valid_name(name) || !dir.is_dir() {
            return Err(ServeError::UnknownModel { model: name.into() });
        }
        let config = ModelRepoConfig::read(&dir)?;
        let limits = self.ctx.limits.with_overrides(&config.batching);
        let tables = TablesSettings::resolve(&self.ctx.tables.defaults, &config.tables, name);
        let on_disk = version_folders(&dir)?;
        let entry = self.entry(name);
        let old = entry.serving();
        let mut report = LoadReport::default();
        let launches = entry.launches.lock().expect("repository lock").clone();
        let decided = |v: u64| {
            launches
                .get(&v)
                .filter(|l| l.file.is_some() && l.file == FileId::of(&on_disk[&v]).ok())
        };
        // Rolled-back versions stay out until their file changes.
        let eligible: Vec<u64> = on_disk
            .keys()
            .copied()
            .filter(|&v| decided(v).is_none_or(|l| l.promoted))
            .collect();
        let requested = entry
            .canary_request
            .lock()
            .expect("repository lock")
            .clone();
        let canary_cfg = requested
            .or_else(|| config.monitor.canary.clone())
            // A decided launch is over: a promoted version serves as any other, a rolled-back
            // one stays out (until the load API launches it again).
            .filter(|c| !(on_disk.contains_key(&c.version) && decided(c.version).is_some()));
        if let Some(c) = &canary_cfg {
            if !on_disk.contains_key(&c.version) {
                return Err(ServeError::CanaryRefused {
                    model: name.into(),
                    version: c.version,
                    reason: "no such version folder with a model.safetensors".into(),
                });
            }
            if !eligible.contains(&c.version) {
                return Err(ServeError::CanaryRefused {
                    model: name.into(),
                    version: c.version,
                    reason: "it was rolled back and its file has not changed since".into(),
                });
            }
        }
        let canary_version = canary_cfg.as_ref().map(|c| c.version);
        let mut wanted = config.version_policy.select(
            &eligible
                .iter()
                .copied()
                .filter(|v| Some(*v) != canary_version)
                .collect::<Vec<_>>(),
        );
        wanted.extend(canary_version);
        let mut versions = BTreeMap::new();
        let mut refused = entry.refused.lock().expect("repository lock").clone();
        for v in wanted {
            let path = &on_disk[&v];
            let file = FileId::of(path).ok();
            if let Some(cur) = old.versions.get(&v)
                && Some(cur.file) == file
                && cur.limits == limits
                && cur.tables_settings() == tables.as_ref()
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
            match LoadedVersion::load(&self.ctx, name, v, path, limits, tables.as_ref()) {
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
                    // The store can change without the file changing (a push, a node back):
                    // a version refused over its remote tables is retried by the next load.
                    let file = file.filter(|_| !matches!(e, ServeError::Tables { .. }));
                    let reason = e.to_string();
                    refused.insert(v, Refused { file, reason });
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
        let budget_override = config.monitor.budget_ne_percent;
        let canary = self.launch_canary(
            name,
            budget_override,
            &old,
            canary_cfg,
            &mut versions,
            &mut report,
        );
        let shadow = self.load_shadow(name, &dir, &config, limits, &old, &mut report);
        let empty = versions.is_empty();
        let serving = Arc::new(Serving {
            versions,
            config,
            canary,
            shadow,
        });
        self.sync_monitor(&entry, &serving, &mut report);
        entry.serving.store(serving);
        if empty {
            let reason = match report.refused.first() {
                Some((v, why)) => format!("no version could be loaded (version {v}: {why})"),
                None => "no version folder with a model.safetensors".into(),
            };
            return Err(ServeError::Repository { path: dir, reason });
        }
        Ok(report)
    }

    /// The canary of a (re)load: `cfg`'s version when it loaded and something else serves beside
    /// it; otherwise it is dropped from `versions` and the report says why.
    fn launch_canary(
        &self,
        name: &str,
        budget_override: Option<f64>,
        old: &Serving,
        cfg: Option<CanaryConfig>,
        versions: &mut BTreeMap<u64, Arc<LoadedVersion>>,
        report: &mut LoadReport,
    ) -> Option<Canary> {
        let cfg = cfg?;
        let v = cfg.version;
        versions.get(&v)?;
        let serving = versions
            .iter()
            .rev()
            .find(|(k, _)| **k != v)
            .map(|(_, lv)| lv);
        let budget = budget_override.or_else(|| serving.and_then(|lv| lv.budget_ne_percent));
        let policy = match serving {
            None => Err("no other version serves to compare it with".to_string()),
            Some(_) => cfg.policy(budget),
        };
        match policy {
            Ok(policy) => {
                let router = match &old.canary {
                    Some(c) if c.version == v && c.policy == policy => c.router.clone(),
                    _ => {
                        report.canary = Some(v);
                        Arc::new(FractionRouter::new(policy.fraction))
                    }
                };
                Some(Canary {
                    version: v,
                    router,
                    policy,
                })
            }
            Err(why) => {
                tracing::error!(model = name, version = v, reason = %why, "canary refused");
                versions.remove(&v);
                report.canary_refused = Some((v, why));
                None
            }
        }
    }

    /// The fp32 shadow of a (re)load: the one serving when its file is unchanged, else loaded.
    fn load_shadow(
        &self,
        name: &str,
        dir: &Path,
        config: &ModelRepoConfig,
        limits: crate::config::Limits,
        old: &Serving,
        report: &mut LoadReport,
    ) -> Option<Shadow> {
        let path = config.monitor.reference_path(dir)?;
        let fraction = config.monitor.shadow.as_ref()?.fraction;
        let router = |old: Option<&Shadow>| match old {
            Some(s) if s.router.fraction() == fraction => s.router.clone(),
            _ => Arc::new(FractionRouter::new(fraction)),
        };
        if let Some(s) = &old.shadow
            && s.reference.path == path
            && FileId::of(&path).ok() == Some(s.reference.file)
            && s.reference.limits == limits
        {
            return Some(Shadow {
                reference: s.reference.clone(),
                router: router(Some(s)),
            });
        }
        match LoadedVersion::load_as(&self.ctx, name, 0, REFERENCE, &path, limits, None) {
            Ok(lv) => {
                tracing::info!(model = name, path = %path.display(), fraction, "fp32 shadow reference loaded");
                self.ctx.metrics.event(name, REFERENCE, "load");
                Some(Shadow {
                    reference: Arc::new(lv),
                    router: router(old.shadow.as_ref()),
                })
            }
            Err(e) => {
                tracing::error!(model = name, path = %path.display(), error = %e, "fp32 shadow reference refused; serving without a shadow");
                self.ctx.metrics.event(name, REFERENCE, "failed_load");
                report.shadow_refused = Some((path, e.to_string()));
                None
            }
        }
    }

    /// Makes the model's monitor follow the new serving set: its sizes (a changed size starts a
    /// fresh monitor), the budget, and the role of every version.
    fn sync_monitor(&self, entry: &ModelEntry, serving: &Serving, report: &mut LoadReport) {
        let wanted = serving.config.monitor.monitor_config();
        let sizes = |c: &crate::monitor::MonitorConfig| crate::monitor::MonitorConfig {
            budget_ne_percent: None,
            ..*c
        };
        let mut monitor = entry.monitor();
        if sizes(monitor.config()) != sizes(&wanted) {
            tracing::info!(model = %entry.name, "monitor settings changed: its figures start afresh");
            monitor = Arc::new(Monitor::new(wanted));
            entry.monitor.store(monitor.clone());
        }
        monitor.set_budget(wanted.budget_ne_percent.or_else(|| {
            serving
                .default_version()
                .and_then(|lv| lv.budget_ne_percent)
        }));
        let live: BTreeSet<String> = serving
            .versions
            .values()
            .map(|lv| lv.version_text().to_string())
            .collect();
        for (v, role) in monitor.tracked() {
            if role != Role::Shadow && !live.contains(&v) {
                monitor.forget(&v);
            }
        }
        let mut running = monitor.canary().map(|(v, _)| v);
        if serving.canary.is_none() && running.is_some() {
            // The canary was withdrawn (config or API) before a verdict.
            monitor.end_canary(false);
            running = None;
        }
        for (v, lv) in &serving.versions {
            let text = lv.version_text();
            match &serving.canary {
                Some(c) if c.version == *v => {
                    if running.as_deref() != Some(text) || report.canary == Some(*v) {
                        monitor.start_canary(text, c.policy);
                    }
                }
                _ => monitor.track(text, Role::Serving),
            }
        }
        match &serving.shadow {
            Some(_) => monitor.track_shadow(REFERENCE),
            None => monitor.forget_shadow(),
        }
    }

    fn entry(&self, name: &str) -> Arc<ModelEntry> {
        let mut m = self.models.write().expect("repository lock");
        m.entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(ModelEntry {
                    name: name.into(),
                    serving: ArcSwap::from_pointee(Serving::default()),
                    refused: Mutex::new(BTreeMap::new()),
                    monitor: ArcSwap::from_pointee(Monitor::new(Default::default())),
                    canary_request: Mutex::new(None),
                    launches: Mutex::new(BTreeMap::new()),
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
