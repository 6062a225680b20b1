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

/// The store itself (not synchronized: the monitor holds it under its lock).
#[derive(Debug)]
pub(crate) struct PendingStore {
    limits: PendingLimits,
    waiting: HashMap<String, (ServedPrediction, Instant)>,
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

    /// Remembers a served request; refuses an id that is already waiting.
    pub(crate) fn insert(
        &mut self,
        id: &str,
        served: ServedPrediction,
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
        self.waiting.insert(id.to_string(), (served, now));
        self.order.push_back((id.to_string(), now));
        Ok(())
    }

    /// Takes the prediction of `id` if it may be labelled with `labels`.
    pub(crate) fn take(
        &mut self,
        id: &str,
        labels: &[f32],
        now: Instant,
    ) -> Result<ServedPrediction, Rejection> {
        self.expire(now);
        let Some((served, _)) = self.waiting.get(id) else {
            return Err(match self.tombstones.get(id) {
                Some(Fate::Labelled) => Rejection::AlreadyLabelled,
                Some(Fate::Expired) => Rejection::Expired,
                Some(Fate::Evicted) => Rejection::Evicted,
                None => Rejection::Unknown,
            });
        };
        if served.rows() != labels.len() {
            return Err(Rejection::WrongLength);
        }
        if labels.iter().any(|&y| y != 0.0 && y != 1.0) {
            return Err(Rejection::InvalidLabel);
        }
        let (served, _) = self.waiting.remove(id).expect("checked above");
        self.rows -= served.rows();
        self.counts.labelled += 1;
        self.bury(id.to_string(), Fate::Labelled);
        Ok(served)
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
            let current = matches!(self.waiting.get(&id), Some((_, t)) if *t == at);
            if !current {
                continue;
            }
            let (served, _) = self.waiting.remove(&id).expect("present");
            self.rows -= served.rows();
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
        s.insert("a", served(2), t).unwrap();
        assert_eq!(s.take("a", &[1.0], t), Err(Rejection::WrongLength));
        assert_eq!(s.take("a", &[1.0, 0.5], t), Err(Rejection::InvalidLabel));
        assert_eq!(s.take("a", &[1.0, 0.0], t).unwrap().rows(), 2);
        assert_eq!(s.take("a", &[1.0, 0.0], t), Err(Rejection::AlreadyLabelled));
        assert_eq!(s.take("b", &[1.0], t), Err(Rejection::Unknown));
        assert_eq!(s.counts().labelled, 1);
        assert_eq!(s.counts().waiting_rows, 0);
    }

    #[test]
    fn duplicate_ids_are_refused_while_waiting() {
        let mut s = store(4, 100, 10_000);
        let t = Instant::now();
        s.insert("a", served(1), t).unwrap();
        assert_eq!(s.insert("a", served(1), t), Err(Rejection::DuplicateId));
        s.take("a", &[0.0], t).unwrap();
        // Once labelled, the id may be served again.
        s.insert("a", served(1), t).unwrap();
        assert_eq!(s.counts().waiting_requests, 1);
    }

    #[test]
    fn expires_after_ttl() {
        let mut s = store(4, 100, 50);
        let t = Instant::now();
        s.insert("a", served(1), t).unwrap();
        s.insert("b", served(1), t + Duration::from_millis(40))
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
        s.insert("a", served(2), t).unwrap();
        s.insert("b", served(2), t).unwrap();
        s.insert("c", served(2), t).unwrap(); // evicts a (2 requests max)
        assert_eq!(s.take("a", &[1.0, 1.0], t), Err(Rejection::Evicted));
        s.insert("d", served(4), t).unwrap(); // rows: b(2)+c(2)+4 > 5 → evicts b and c
        assert_eq!(s.take("b", &[1.0, 1.0], t), Err(Rejection::Evicted));
        assert_eq!(s.take("c", &[1.0, 1.0], t), Err(Rejection::Evicted));
        assert_eq!(s.counts().waiting_rows, 4);
        assert_eq!(s.counts().evicted, 3);
    }

    #[test]
    fn tombstones_are_bounded() {
        let mut s = store(2, 100, 10_000);
        let t = Instant::now();
        for i in 0..10 {
            let id = format!("r{i}");
            s.insert(&id, served(1), t).unwrap();
            s.take(&id, &[1.0], t).unwrap();
        }
        assert!(s.tombstones.len() <= 2);
        assert_eq!(s.take("r0", &[1.0], t), Err(Rejection::Unknown));
        assert_eq!(s.take("r9", &[1.0], t), Err(Rejection::AlreadyLabelled));
    }
}
