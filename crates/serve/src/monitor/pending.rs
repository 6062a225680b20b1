//! Served predictions waiting for their click labels: a bounded, time-limited store keyed by the
//! KServe request id, plus short-lived tombstones so that a late or repeated label can be told
//! apart from one for an id that was never served.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::Role;

/// What one served request left for the monitor: who scored it and the scores, per row.
#[derive(Clone, Debug, PartialEq)]
pub struct ServedPrediction {
    /// The version that answered the request.
    pub version: String,
    /// Its role when it answered.
    pub role: Role,
    /// The probability returned for each row.
    pub probabilities: Vec<f32>,
    /// The fp32 reference model's probabilities for the same rows, when this request was shadowed.
    pub reference: Option<Vec<f32>>,
    /// For a canary's request: the serving version's probabilities for the same rows (so the two
    /// are compared on identical traffic) and that version's name.
    pub incumbent: Option<(String, Vec<f32>)>,
}

impl ServedPrediction {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.probabilities.len()
    }
}

/// Why a feedback entry was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// No request with this id was served (or it was forgotten long ago).
    Unknown,
    /// The request's prediction waited longer than the window's time to live.
    Expired,
    /// The prediction was evicted to keep the window within its size before a label came.
    Evicted,
    /// Labels for this request were already accepted.
    AlreadyLabelled,
    /// The number of labels differs from the number of rows the request had.
    WrongLength,
    /// A label is not exactly 0 or 1.
    InvalidLabel,
    /// The same request id was served twice while the first awaited its labels; the second was
    /// not remembered.
    DuplicateId,
}

impl Rejection {
    /// A short phrase for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Unknown => "unknown request id",
            Rejection::Expired => "prediction expired before its label arrived",
            Rejection::Evicted => "prediction evicted from a full window before its label arrived",
            Rejection::AlreadyLabelled => "request already labelled",
            Rejection::WrongLength => "label count differs from the request's row count",
            Rejection::InvalidLabel => "labels must be 0 or 1",
            Rejection::DuplicateId => "request id was served twice",
        }
    }
}

/// Bounds of the pending store.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PendingLimits {
    /// Requests remembered at once.
    pub max_requests: usize,
    /// Rows remembered at once (across requests).
    pub max_rows: usize,
    /// How long a prediction waits for its label.
    pub ttl: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Labelled,
    Expired,
    Evicted,
}

/// Counters of what happened to remembered predictions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PendingCounts {
    /// Requests waiting now.
    pub waiting_requests: usize,
    /// Rows waiting now.
    pub waiting_rows: usize,
    /// Requests labelled so far.
    pub labelled: u64,
    /// Requests that expired unlabelled.
    pub expired: u64,
    /// Requests evicted unlabelled to respect the bounds.
    pub evicted: u64,
}

/// A secondary score of a served request that arrives after the answer (scored off the answer's
/// critical path).
#[derive(Clone, Debug, PartialEq)]
pub enum Secondary {
    /// The fp32 reference model's probabilities (`None`: the shadow call failed).
    Reference(Option<Vec<f32>>),
    /// The serving version's probabilities for a canary's request, with that version's name
    /// (`None`: the call failed).
    Incumbent(String, Option<Vec<f32>>),
}

/// A remembered request: its prediction, when it was served, how many secondary scores are still
/// to come, and its labels once they arrived (kept until the secondaries are in).
#[derive(Debug)]
struct Waiting {
    served: ServedPrediction,
    at: Instant,
    secondaries: usize,
    labels: Option<Vec<f32>>,
}

/// A request ready to be counted: its prediction (with every secondary score that arrived) and
/// its labels.
pub(crate) type Ready = (ServedPrediction, Vec<f32>);

/// The store itself (not synchronized: the monitor holds it under its lock).
#[derive(Debug)]
pub(crate) struct PendingStore {
    limits: PendingLimits,
    waiting: HashMap<String, Waiting>,
    /// Insertion order of `waiting` (ids may be stale after labelling; skipped when popped).
    order: VecDeque<(String, Instant)>,
    rows: usize,
    tombstones: HashMap<String, Fate>,
    tomb_order: VecDeque<String>,
    counts: PendingCounts,
}

impl PendingStore {
    pub(crate) fn new(limits: PendingLimits) -> Self {
        PendingStore {
            limits,
            waiting: HashMap::new(),
            order: VecDeque::new(),
            rows: 0,
            tombstones: HashMap::new(),
            tomb_order: VecDeque::new(),
            counts: PendingCounts::default(),
        }
    }

    /// Remembers a served request whose `secondaries` secondary scores will follow
    /// ([`PendingStore::complete`]); refuses an id that is already waiting.
    pub(crate) fn insert(
        &mut self,
        id: &str,
        served: ServedPrediction,
        secondaries: usize,
        now: Instant,
    ) -> Result<(), Rejection> {
        self.expire(now);
        if self.waiting.contains_key(id) {
            return Err(Rejection::DuplicateId);
        }
        self.tombstones.remove(id);
        let rows = served.rows();
        while !self.waiting.is_empty()
            && (self.waiting.len() >= self.limits.max_requests
                || self.rows + rows > self.limits.max_rows)
        {
            self.pop_oldest(Fate::Evicted);
        }
        self.rows += rows;
        self.waiting.insert(
            id.to_string(),
            Waiting {
                served,
                at: now,
                secondaries,
                labels: None,
            },
        );
        self.order.push_back((id.to_string(), now));
        Ok(())
    }

    /// Labels the request `id`: `Ok(Some)` when it is ready to be counted, `Ok(None)` when the
    /// labels were taken but its secondary scores are still to come.
    pub(crate) fn take(
        &mut self,
        id: &str,
        labels: &[f32],
        now: Instant,
    ) -> Result<Option<Ready>, Rejection> {
        self.expire(now);
        let Some(w) = self.waiting.get_mut(id) else {
            return Err(match self.tombstones.get(id) {
                Some(Fate::Labelled) => Rejection::AlreadyLabelled,
                Some(Fate::Expired) => Rejection::Expired,
                Some(Fate::Evicted) => Rejection::Evicted,
                None => Rejection::Unknown,
            });
        };
        if w.labels.is_some() {
            return Err(Rejection::AlreadyLabelled);
        }
        if w.served.rows() != labels.len() {
            return Err(Rejection::WrongLength);
        }
        if labels.iter().any(|&y| y != 0.0 && y != 1.0) {
            return Err(Rejection::InvalidLabel);
        }
        w.labels = Some(labels.to_vec());
        Ok(self.finish_if_ready(id))
    }

    /// Adds a secondary score to the request `id`; returns it when it is now ready to be counted.
    /// A score for a request no longer waiting (expired, evicted) is dropped.
    pub(crate) fn complete(&mut self, id: &str, secondary: Secondary) -> Option<Ready> {
        let w = self.waiting.get_mut(id)?;
        if w.secondaries == 0 {
            return None;
        }
        w.secondaries -= 1;
        let rows = w.served.rows();
        match secondary {
            Secondary::Reference(Some(p)) if p.len() == rows => w.served.reference = Some(p),
            Secondary::Incumbent(v, Some(p)) if p.len() == rows => {
                w.served.incumbent = Some((v, p))
            }
            _ => {}
        }
        self.finish_if_ready(id)
    }

    /// Removes `id` when it has its labels and every secondary score.
    fn finish_if_ready(&mut self, id: &str) -> Option<Ready> {
        let w = self.waiting.get(id)?;
        if w.secondaries > 0 || w.labels.is_none() {
            return None;
        }
        let w = self.waiting.remove(id).expect("checked above");
        self.rows -= w.served.rows();
        self.counts.labelled += 1;
        self.bury(id.to_string(), Fate::Labelled);
        Some((w.served, w.labels.expect("checked above")))
    }

    pub(crate) fn counts(&self) -> PendingCounts {
        PendingCounts {
            waiting_requests: self.waiting.len(),
            waiting_rows: self.rows,
            ..self.counts
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((_, at)) = self.order.front() {
            if now.saturating_duration_since(*at) <= self.limits.ttl {
                break;
            }
            self.pop_oldest(Fate::Expired);
        }
    }

    /// Drops the oldest entry of `order` that is still waiting.
    fn pop_oldest(&mut self, fate: Fate) {
        while let Some((id, at)) = self.order.pop_front() {
            // Skip order entries whose id was labelled, or re-inserted later.
            let current = matches!(self.waiting.get(&id), Some(w) if w.at == at);
            if !current {
                continue;
            }
            let w = self.waiting.remove(&id).expect("present");
            self.rows -= w.served.rows();
            match fate {
                Fate::Expired => self.counts.expired += 1,
                Fate::Evicted => self.counts.evicted += 1,
                Fate::Labelled => {}
            }
            self.bury(id, fate);
            return;
        }
    }

    /// Remembers what became of `id`, keeping as many tombstones as requests may wait.
    fn bury(&mut self, id: String, fate: Fate) {
        if self.tombstones.insert(id.clone(), fate).is_none() {
            self.tomb_order.push_back(id);
        }
        while self.tomb_order.len() > self.limits.max_requests.max(1) {
            if let Some(old) = self.tomb_order.pop_front() {
                self.tombstones.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(rows: usize) -> ServedPrediction {
        ServedPrediction {
            version: "1".into(),
            role: Role::Serving,
            probabilities: vec![0.5; rows],
            reference: None,
            incumbent: None,
        }
    }

    fn store(max_requests: usize, max_rows: usize, ttl_ms: u64) -> PendingStore {
        PendingStore::new(PendingLimits {
            max_requests,
            max_rows,
            ttl: Duration::from_millis(ttl_ms),
        })
    }

    #[test]
    fn labels_once_then_rejects_as_already_labelled() {
        let mut s = store(4, 100, 10_000);
        let t = Instant::now();
        s.insert("a", served(2), 0, t).unwrap();
        assert_eq!(s.take("a", &[1.0], t), Err(Rejection::WrongLength));
        assert_eq!(s.take("a", &[1.0, 0.5], t), Err(Rejection::InvalidLabel));
        assert_eq!(s.take("a", &[1.0, 0.0], t).unwrap().unwrap().0.rows(), 2);
        assert_eq!(s.take("a", &[1.0, 0.0], t), Err(Rejection::AlreadyLabelled));
        assert_eq!(s.take("b", &[1.0], t), Err(Rejection::Unknown));
        assert_eq!(s.counts().labelled, 1);
        assert_eq!(s.counts().waiting_rows, 0);
    }

    #[test]
    fn duplicate_ids_are_refused_while_waiting() {
        let mut s = store(4, 100, 10_000);
        let t = Instant::now();
        s.insert("a", served(1), 0, t).unwrap();
        assert_eq!(s.insert("a", served(1), 0, t), Err(Rejection::DuplicateId));
        s.take("a", &[0.0], t).unwrap();
        // Once labelled, the id may be served again.
        s.insert("a", served(1), 0, t).unwrap();
        assert_eq!(s.counts().waiting_requests, 1);
    }

    #[test]
    fn expires_after_ttl() {
        let mut s = store(4, 100, 50);
        let t = Instant::now();
        s.insert("a", served(1), 0, t).unwrap();
        s.insert("b", served(1), 0, t + Duration::from_millis(40))
            .unwrap();
        let later = t + Duration::from_millis(60);
        assert_eq!(s.take("a", &[1.0], later), Err(Rejection::Expired));
        assert!(s.take("b", &[1.0], later).is_ok());
        assert_eq!(s.counts().expired, 1);
    }

    #[test]
    fn evicts_oldest_to_respect_request_and_row_bounds() {
        let mut s = store(2, 5, 10_000);
        let t = Instant::now();
        s.insert("a", served(2), 0, t).unwrap();
        s.insert("b", served(2), 0, t).unwrap();
        s.insert("c", served(2), 0, t).unwrap(); // evicts a (2 requests max)
        assert_eq!(s.take("a", &[1.0, 1.0], t), Err(Rejection::Evicted));
        s.insert("d", served(4), 0, t).unwrap(); // rows: b(2)+c(2)+4 > 5 → evicts b and c
        assert_eq!(s.take("b", &[1.0, 1.0], t), Err(Rejection::Evicted));
        assert_eq!(s.take("c", &[1.0, 1.0], t), Err(Rejection::Evicted));
        assert_eq!(s.counts().waiting_rows, 4);
        assert_eq!(s.counts().evicted, 3);
    }

    #[test]
    fn labels_wait_for_secondary_scores() {
        let mut s = store(4, 100, 10_000);
        let t = Instant::now();
        s.insert("a", served(2), 2, t).unwrap();
        // Labels first: taken, but not ready until both secondaries are in.
        assert_eq!(s.take("a", &[1.0, 0.0], t), Ok(None));
        assert_eq!(s.take("a", &[1.0, 0.0], t), Err(Rejection::AlreadyLabelled));
        assert_eq!(
            s.complete("a", Secondary::Reference(Some(vec![0.4, 0.6]))),
            None
        );
        // A failed secondary still completes the request, unpaired.
        let (p, y) = s
            .complete("a", Secondary::Incumbent("1".into(), None))
            .unwrap();
        assert_eq!(p.reference, Some(vec![0.4, 0.6]));
        assert_eq!(p.incumbent, None);
        assert_eq!(y, vec![1.0, 0.0]);
        assert_eq!(s.counts().labelled, 1);
        // Secondaries first: ready when the labels come.
        s.insert("b", served(1), 1, t).unwrap();
        assert_eq!(
            s.complete("b", Secondary::Incumbent("1".into(), Some(vec![0.3]))),
            None
        );
        let (p, _) = s.take("b", &[1.0], t).unwrap().unwrap();
        assert_eq!(p.incumbent, Some(("1".into(), vec![0.3])));
        // A score of the wrong length is dropped; one for an unknown id too.
        s.insert("c", served(1), 1, t).unwrap();
        s.complete("c", Secondary::Reference(Some(vec![0.1, 0.2])));
        assert_eq!(s.take("c", &[0.0], t).unwrap().unwrap().0.reference, None);
        assert_eq!(s.complete("zz", Secondary::Reference(None)), None);
    }

    #[test]
    fn tombstones_are_bounded() {
        let mut s = store(2, 100, 10_000);
        let t = Instant::now();
        for i in 0..10 {
            let id = format!("r{i}");
            s.insert(&id, served(1), 0, t).unwrap();
            s.take(&id, &[1.0], t).unwrap();
        }
        assert!(s.tombstones.len() <= 2);
        assert_eq!(s.take("r0", &[1.0], t), Err(Rejection::Unknown));
        assert_eq!(s.take("r9", &[1.0], t), Err(Rejection::AlreadyLabelled));
    }
}
