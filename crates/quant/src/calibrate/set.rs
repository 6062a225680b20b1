//! Observers of many named tensors, e.g. every activation a model's observer hook reports during a
//! calibration pass. Serializable, so a calibration can be saved and resumed; mergeable, so shards
//! calibrated in parallel combine into one.

use std::collections::BTreeMap;

use super::observer::{DEFAULT_BINS, TensorObserver};
use super::range::{Range, RangeMethod};
use crate::{QuantError, Result};

/// One [`TensorObserver`] per tensor name, all with the same bin count, created on first sight.
/// Deserializing checks that every observer has the set's bin count and is filed under its name.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "SetRepr")]
pub struct ObserverSet {
    bins: usize,
    observers: BTreeMap<String, TensorObserver>,
}

/// The serialized form of an [`ObserverSet`], checked on the way in.
#[derive(serde::Deserialize)]
struct SetRepr {
    bins: usize,
    observers: BTreeMap<String, TensorObserver>,
}

impl TryFrom<SetRepr> for ObserverSet {
    type Error = QuantError;

    fn try_from(r: SetRepr) -> Result<ObserverSet> {
        let mut set = ObserverSet::with_bins(r.bins)?;
        for (name, obs) in r.observers {
            if obs.name() != name || obs.bins() != r.bins {
                return Err(QuantError::SavedSetEntry {
                    tensor: obs.name().to_string(),
                    bins: obs.bins(),
                    entry: name,
                    set_bins: r.bins,
                });
            }
            set.observers.insert(name, obs);
        }
        Ok(set)
    }
}

impl Default for ObserverSet {
    fn default() -> Self {
        ObserverSet::new()
    }
}

impl ObserverSet {
    /// An empty set whose observers use [`DEFAULT_BINS`] bins.
    pub fn new() -> ObserverSet {
        ObserverSet {
            bins: DEFAULT_BINS,
            observers: BTreeMap::new(),
        }
    }

    /// An empty set whose observers use `bins` bins (at least 1).
    pub fn with_bins(bins: usize) -> Result<ObserverSet> {
        TensorObserver::with_bins("", bins)?;
        Ok(ObserverSet {
            bins,
            observers: BTreeMap::new(),
        })
    }

    /// Adds a batch of values of tensor `name` (see [`TensorObserver::observe`]).
    pub fn observe(&mut self, name: &str, values: &[f32]) -> Result<()> {
        if let Some(obs) = self.observers.get_mut(name) {
            return obs.observe(values);
        }
        let mut obs = TensorObserver::with_bins(name, self.bins)?;
        obs.observe(values)?;
        self.observers.insert(name.to_string(), obs);
        Ok(())
    }

    /// Merges every observer of `other` into the observer of the same name here (see
    /// [`TensorObserver::merge`]). Refuses a different bin count before changing anything.
    pub fn merge(&mut self, other: &ObserverSet) -> Result<()> {
        if other.bins != self.bins {
            return Err(QuantError::BinsMismatch {
                what: "a set".into(),
                ours: self.bins,
                theirs: other.bins,
            });
        }
        for (name, theirs) in &other.observers {
            match self.observers.get_mut(name) {
                Some(mine) => mine.merge(theirs)?,
                None => {
                    self.observers.insert(name.clone(), theirs.clone());
                }
            }
        }
        Ok(())
    }

    /// The observer of `name`, if that tensor was seen.
    pub fn get(&self, name: &str) -> Option<&TensorObserver> {
        self.observers.get(name)
    }

    /// All observers, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TensorObserver)> {
        self.observers.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of tensors observed.
    pub fn len(&self) -> usize {
        self.observers.len()
    }

    /// Whether no tensor was observed.
    pub fn is_empty(&self) -> bool {
        self.observers.is_empty()
    }

    /// The range `method` selects for every tensor that has data.
    pub fn select_all(&self, method: RangeMethod) -> Result<BTreeMap<String, Range>> {
        self.observers
            .iter()
            .filter(|(_, o)| o.count() > 0)
            .map(|(k, o)| Ok((k.clone(), o.select(method)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observe_merge_select() {
        let mut a = ObserverSet::with_bins(16).unwrap();
        a.observe("x", &[0.0, 1.0, 2.0]).unwrap();
        a.observe("y", &[-1.0, 1.0]).unwrap();
        a.observe("empty", &[]).unwrap();
        let mut b = ObserverSet::with_bins(16).unwrap();
        b.observe("x", &[3.0, -4.0]).unwrap();
        b.observe("z", &[5.0]).unwrap();
        a.merge(&b).unwrap();
        assert_eq!(a.len(), 4);
        let x = a.get("x").unwrap();
        assert_eq!((x.min(), x.max(), x.count()), (Some(-4.0), Some(3.0), 5));
        let ranges = a.select_all(RangeMethod::MinMax).unwrap();
        let names: Vec<&str> = ranges.keys().map(String::as_str).collect();
        assert_eq!(names, ["x", "y", "z"]);
        assert_eq!(ranges["y"], Range { lo: -1.0, hi: 1.0 });
        let json = serde_json::to_string(&a).unwrap();
        let back: ObserverSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        let renamed = json.replacen("\"z\":{\"name\":\"z\"", "\"z\":{\"name\":\"q\"", 1);
        assert_ne!(renamed, json);
        assert!(serde_json::from_str::<ObserverSet>(&renamed).is_err());
        assert!(a.merge(&ObserverSet::new()).is_err());
        assert!(ObserverSet::with_bins(0).is_err());
        match a.observe("y", &[f32::NAN]) {
            Err(QuantError::NonFinite { tensor, .. }) => assert_eq!(tensor, "y"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
