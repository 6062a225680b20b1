//! The continuous accuracy monitor of one served model: predictions wait (bounded, with a time to
//! live) for the click labels that clients feed back; labelled rows update each version's NE, log
//! loss, AUC and calibration since load and over a sliding window; shadowed rows compare the
//! quantized model with its fp32 reference on identical rows and raise an alert past the model's
//! ΔNE budget; a canary is compared with the serving version on identical rows and promoted or
//! rolled back.
//!
//! The monitor is plain synchronous state behind one mutex; the server calls it from its handlers
//! and acts on what it returns (a canary [`Verdict`], alerts). All figures are the accumulators of
//! [`quantrec_data::metrics`], so live NE equals `quantrec eval`'s NE on the same rows.

mod canary;
pub mod live;
mod pending;
mod stats;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use canary::{CanaryPolicy, FractionRouter, Verdict};
pub use pending::{PendingCounts, PendingLimits, Rejection, Secondary, ServedPrediction};
pub use stats::{Figures, PairedFigures};

use pending::PendingStore;
use stats::VersionStats;

/// What a version is doing for its model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Answers the model's traffic.
    Serving,
    /// Answers a fraction of the traffic until the monitor promotes or rolls it back.
    Canary,
    /// Scores traffic for comparison only; its answers are never returned.
    Shadow,
}

impl Role {
    /// The role's name in reports (`serving`, `canary`, `shadow`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Serving => "serving",
            Role::Canary => "canary",
            Role::Shadow => "shadow",
        }
    }
}

/// Sizes and thresholds of a monitor.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// Labelled rows in each version's sliding window.
    pub window_rows: usize,
    /// Requests remembered while they wait for labels.
    pub max_pending_requests: usize,
    /// Rows remembered while they wait for labels.
    pub max_pending_rows: usize,
    /// Seconds a prediction waits for its label.
    pub ttl_secs: f64,
    /// Rows whose scores are kept for the exact AUC since load (8 bytes each); past it the AUC
    /// since load is reported as unknown (the window's AUC stays exact).
    pub auc_rows: usize,
    /// Labelled shadow rows needed before the fp32 comparison can raise an alert.
    pub min_alert_rows: u64,
    /// The ΔNE budget in percent against the fp32 reference (normally the artifact's provenance
    /// budget); `None` disables the alert.
    pub budget_ne_percent: Option<f64>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            window_rows: 100_000,
            max_pending_requests: 100_000,
            max_pending_rows: 10_000_000,
            ttl_secs: 3600.0,
            auc_rows: 4_000_000,
            min_alert_rows: 10_000,
            budget_ne_percent: None,
        }
    }
}

impl MonitorConfig {
    /// Checks the numbers; returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.window_rows == 0 || self.max_pending_requests == 0 || self.max_pending_rows == 0 {
            return Err(
                "window_rows, max_pending_requests and max_pending_rows must be > 0".into(),
            );
        }
        if !(self.ttl_secs.is_finite() && self.ttl_secs > 0.0) {
            return Err(format!("ttl_secs must be > 0, found {}", self.ttl_secs));
        }
        if let Some(b) = self.budget_ne_percent
            && !b.is_finite()
        {
            return Err(format!("budget_ne_percent must be finite, found {b}"));
        }
        Ok(())
    }
}

/// One feedback entry: the labels of every row of one served request, in row order.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackEntry {
    /// The request id the prediction was served under.
    pub id: String,
    /// One click label (0 or 1) per row.
    pub labels: Vec<f32>,
}

/// What became of a feedback call.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct FeedbackOutcome {
    /// Entries taken.
    pub accepted: usize,
    /// Entries refused.
    pub rejected: usize,
    /// Each refused entry's id and why (the HTTP answer carries only the counts; the server logs these).
    #[serde(skip)]
    pub rejections: Vec<(String, Rejection)>,
    /// What this call caused (a canary decision, alerts), for the server to act on.
    #[serde(skip)]
    pub events: Events,
}

/// What a monitor call caused, for the server to act on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Events {
    /// A canary decision reached by this call (at most once per canary): (version, verdict).
    pub verdict: Option<(String, Verdict)>,
    /// Alerts that started with this call: (version, why).
    pub new_alerts: Vec<(String, String)>,
}

/// The monitor's view of one version, as `GET /v2/models/<name>/accuracy` returns it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct VersionReport {
    /// The version.
    pub version: String,
    /// Its role.
    pub role: Role,
    /// Labelled rows since load.
    pub labeled_rows: u64,
    /// NE since load.
    pub ne: Option<f64>,
    /// Log loss since load.
    pub log_loss: Option<f64>,
    /// AUC since load (`None` past [`MonitorConfig::auc_rows`]).
    pub auc: Option<f64>,
    /// Mean prediction / CTR since load.
    pub calibration: Option<f64>,
    /// The same over the latest [`MonitorConfig::window_rows`] labelled rows.
    pub window: Figures,
    /// Against the fp32 reference on shadowed rows (absent when none were labelled).
    pub shadow: Option<PairedFigures>,
    /// A canary against the serving version on the canary's rows.
    pub versus_serving: Option<PairedFigures>,
    /// Why this version is alerting, or `None`.
    pub alert: Option<String>,
}

/// One canary decision.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LaunchRecord {
    /// The canary's version.
    pub version: String,
    /// What was decided, and on what.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// The whole report of one model.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AccuracyReport {
    /// One entry per monitored version, serving first.
    pub versions: Vec<VersionReport>,
    /// The pending-label store.
    pub pending: PendingCounts,
    /// Feedback entries accepted and rejected since start.
    pub feedback_accepted: u64,
    /// Feedback entries rejected since start, by reason.
    pub feedback_rejected: BTreeMap<&'static str, u64>,
    /// Alerts raised since start.
    pub alerts_raised: u64,
    /// The decision about the current (or latest) canary, once reached.
    pub canary_verdict: Option<Verdict>,
    /// Every canary decision since start, oldest first.
    pub launches: Vec<LaunchRecord>,
    /// The ΔNE budget (percent) the shadow alert checks against, when known.
    pub budget_ne_percent: Option<f64>,
}

#[derive(Debug)]
struct Tracked {
    role: Role,
    stats: VersionStats,
    alert: Option<String>,
}

#[derive(Debug)]
struct State {
    pending: PendingStore,
    versions: BTreeMap<String, Tracked>,
    canary: Option<(String, CanaryPolicy)>,
    verdict: Option<Verdict>,
    launches: Vec<LaunchRecord>,
    /// The version name the fp32 reference is tracked under.
    shadow: Option<String>,
    budget: Option<f64>,
    accepted: u64,
    rejected: BTreeMap<&'static str, u64>,
    alerts: u64,
}

/// The monitor of one model name.
#[derive(Debug)]
pub struct Monitor {
    config: MonitorConfig,
    state: Mutex<State>,
}

impl Monitor {
    /// A monitor with `config` (validate it first: see [`MonitorConfig::validate`]).
    pub fn new(config: MonitorConfig) -> Self {
        let limits = PendingLimits {
            max_requests: config.max_pending_requests.max(1),
            max_rows: config.max_pending_rows.max(1),
            ttl: Duration::from_secs_f64(config.ttl_secs.max(1e-3)),
        };
        Monitor {
            config,
            state: Mutex::new(State {
                pending: PendingStore::new(limits),
                versions: BTreeMap::new(),
                canary: None,
                verdict: None,
                launches: Vec::new(),
                shadow: None,
                budget: config.budget_ne_percent,
                accepted: 0,
                rejected: BTreeMap::new(),
                alerts: 0,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the counters inconsistent in a way that
        // matters more than losing the monitor, so a poisoned lock is simply taken over.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts tracking `version` in `role` (fresh figures: "since load"), or changes its role.
    pub fn track(&self, version: &str, role: Role) {
        let mut st = self.lock();
        match st.versions.get_mut(version) {
            Some(t) => t.role = role,
            None => {
                let stats = VersionStats::new(self.config.window_rows, self.config.auc_rows);
                st.versions.insert(
                    version.to_string(),
                    Tracked {
                        role,
                        stats,
                        alert: None,
                    },
                );
            }
        }
    }

    /// Tracks the fp32 reference as `name` in the shadow role: the reference scores of shadowed
    /// requests count as its figures.
    pub fn track_shadow(&self, name: &str) {
        self.track(name, Role::Shadow);
        self.lock().shadow = Some(name.to_string());
    }

    /// Stops tracking the fp32 reference.
    pub fn forget_shadow(&self) {
        let name = self.lock().shadow.take();
        if let Some(n) = name {
            self.forget(&n);
        }
    }

    /// Sets the ΔNE budget (percent) of the shadow alert; `None` disables the alert.
    pub fn set_budget(&self, budget_ne_percent: Option<f64>) {
        self.lock().budget = budget_ne_percent;
    }

    /// The ΔNE budget (percent) in force.
    pub fn budget(&self) -> Option<f64> {
        self.lock().budget
    }

    /// Versions tracked now, with their roles.
    pub fn tracked(&self) -> Vec<(String, Role)> {
        self.lock()
            .versions
            .iter()
            .map(|(v, t)| (v.clone(), t.role))
            .collect()
    }

    /// Stops tracking `version` (unloaded or rolled back). Its waiting predictions stay until
    /// labelled or expired, and their labels are then counted as accepted but attributed nowhere.
    pub fn forget(&self, version: &str) {
        let mut st = self.lock();
        st.versions.remove(version);
        if st.canary.as_ref().is_some_and(|(v, _)| v == version) {
            st.canary = None;
        }
    }

    /// Makes `version` the canary under `policy` (tracking it afresh as a canary).
    pub fn start_canary(&self, version: &str, policy: CanaryPolicy) {
        self.forget(version);
        self.track(version, Role::Canary);
        let mut st = self.lock();
        st.canary = Some((version.to_string(), policy));
        st.verdict = None;
    }

    /// Ends the canary phase (after the server acted on a verdict): `promoted` makes the canary a
    /// serving version (its figures since load stay) and demotes nothing else (the server forgets
    /// retired versions itself); otherwise the canary is forgotten (its verdict stays in the
    /// report).
    pub fn end_canary(&self, promoted: bool) {
        let mut st = self.lock();
        if let Some((version, _)) = st.canary.take() {
            if promoted {
                if let Some(t) = st.versions.get_mut(&version) {
                    t.role = Role::Serving;
                }
            } else {
                st.versions.remove(&version);
            }
        }
    }

    /// The canary version and its policy, if a canary is running.
    pub fn canary(&self) -> Option<(String, CanaryPolicy)> {
        self.lock().canary.clone()
    }

    /// Remembers a served request until its labels arrive.
    pub fn record(&self, request_id: &str, served: ServedPrediction) -> Result<(), Rejection> {
        self.record_with(request_id, served, 0)
    }

    /// Remembers a served request whose `secondaries` secondary scores (fp32 reference, the
    /// serving version's for a canary request) will follow through [`Monitor::complete`]; its
    /// labels are counted once those are in.
    pub fn record_with(
        &self,
        request_id: &str,
        served: ServedPrediction,
        secondaries: usize,
    ) -> Result<(), Rejection> {
        let mut st = self.lock();
        let out = st
            .pending
            .insert(request_id, served, secondaries, Instant::now());
        if let Err(r) = out {
            *st.rejected.entry(r.as_str()).or_insert(0) += 1;
        }
        out
    }

    /// Takes a batch of labels.
    pub fn feedback(&self, entries: &[FeedbackEntry]) -> FeedbackOutcome {
        self.feedback_at(entries, Instant::now())
    }

    fn feedback_at(&self, entries: &[FeedbackEntry], now: Instant) -> FeedbackOutcome {
        let mut st = self.lock();
        let mut out = FeedbackOutcome::default();
        for e in entries {
            match st.pending.take(&e.id, &e.labels, now) {
                Ok(ready) => {
                    out.accepted += 1;
                    st.accepted += 1;
                    if let Some((served, labels)) = ready {
                        apply(&mut st, &served, &labels);
                    }
                }
                Err(r) => {
                    out.rejected += 1;
                    *st.rejected.entry(r.as_str()).or_insert(0) += 1;
                    out.rejections.push((e.id.clone(), r));
                }
            }
        }
        out.events = self.conclude(&mut st);
        out
    }

    /// Adds a secondary score of the served request `request_id` (counted with its labels once
    /// everything is in).
    pub fn complete(&self, request_id: &str, secondary: Secondary) -> Events {
        let mut st = self.lock();
        match st.pending.complete(request_id, secondary) {
            Some((served, labels)) => {
                apply(&mut st, &served, &labels);
                self.conclude(&mut st)
            }
            None => Events::default(),
        }
    }

    /// After new labelled rows: alerts that started, and the canary decision once reached.
    fn conclude(&self, st: &mut State) -> Events {
        let mut events = Events {
            new_alerts: self.refresh_alerts(st),
            verdict: None,
        };
        st.alerts += events.new_alerts.len() as u64;
        if st.verdict.is_none()
            && let Some((version, policy)) = st.canary.clone()
            && let Some(t) = st.versions.get(&version)
            && let Some(v) = policy.decide(&t.stats.incumbent.figures())
        {
            st.verdict = Some(v.clone());
            st.launches.push(LaunchRecord {
                version: version.clone(),
                verdict: v.clone(),
            });
            events.verdict = Some((version, v));
        }
        events
    }

    /// Sets each version's alert from its shadow comparison; returns the ones that just started.
    fn refresh_alerts(&self, st: &mut State) -> Vec<(String, String)> {
        let Some(budget) = st.budget else {
            for t in st.versions.values_mut() {
                t.alert = None;
            }
            return Vec::new();
        };
        let mut started = Vec::new();
        for (version, t) in st.versions.iter_mut() {
            let f = t.stats.shadow.figures();
            let why = match f.delta_ne_percent {
                Some(d) if f.rows >= self.config.min_alert_rows && d > budget => Some(format!(
                    "live ΔNE {d:+.4}% against the fp32 reference on {} labelled rows exceeds the budget {budget:.4}%",
                    f.rows
                )),
                _ => None,
            };
            if why.is_some() && t.alert.is_none() {
                started.push((version.clone(), why.clone().unwrap_or_default()));
            }
            t.alert = why;
        }
        started
    }

    /// Everything the monitor knows, serving version first.
    pub fn report(&self) -> AccuracyReport {
        let st = self.lock();
        let mut versions: Vec<VersionReport> = st
            .versions
            .iter()
            .map(|(version, t)| {
                let since = t.stats.since_load();
                VersionReport {
                    version: version.clone(),
                    role: t.role,
                    labeled_rows: t.stats.labelled_rows(),
                    ne: since.ne,
                    log_loss: since.log_loss,
                    auc: since.auc,
                    calibration: since.calibration,
                    window: t.stats.window(),
                    shadow: (t.stats.shadow.rows() > 0).then(|| t.stats.shadow.figures()),
                    versus_serving: (t.stats.incumbent.rows() > 0)
                        .then(|| t.stats.incumbent.figures()),
                    alert: t.alert.clone(),
                }
            })
            .collect();
        versions.sort_by(|a, b| (a.role, &a.version).cmp(&(b.role, &b.version)));
        AccuracyReport {
            versions,
            pending: st.pending.counts(),
            feedback_accepted: st.accepted,
            feedback_rejected: st.rejected.clone(),
            alerts_raised: st.alerts,
            canary_verdict: st.verdict.clone(),
            launches: st.launches.clone(),
            budget_ne_percent: st.budget,
        }
    }
}

/// Adds a labelled request to the figures of the version that served it (and of the fp32
/// reference, when it was shadowed).
fn apply(st: &mut State, served: &ServedPrediction, labels: &[f32]) {
    if let (Some(reference), Some(name)) = (&served.reference, &st.shadow)
        && let Some(t) = st.versions.get_mut(name)
    {
        t.stats.push(reference, labels);
    }
    let Some(t) = st.versions.get_mut(&served.version) else {
        return;
    };
    t.stats.push(&served.probabilities, labels);
    if let Some(reference) = &served.reference {
        t.stats
            .shadow
            .push(&served.probabilities, reference, labels);
    }
    if let Some((_, incumbent)) = &served.incumbent {
        t.stats
            .incumbent
            .push(&served.probabilities, incumbent, labels);
    }
}

#[cfg(test)]
mod tests;
