//! [`TablesCollector`]: the remote tables of many model versions in one Prometheus registry.
//!
//! Each [`crate::RemoteTables`] has its own unlabelled [`TablesMetrics`]; a server holds several
//! (one per model version with remote tables, versions coming and going on reload). The
//! collector is registered once in the server's registry; [`TablesCollector::add`] enrols one
//! version's metrics under label values (`model`, `version`) until the returned
//! [`Registration`] is dropped. When two enrolled metrics carry the same label values (a
//! version reloaded while its predecessor still finishes requests), the newest is reported.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{LabelPair, MetricFamily};

use crate::metrics::TablesMetrics;
use crate::{Result, TablesError};

#[derive(Debug)]
struct Enrolled {
    id: u64,
    values: Vec<String>,
    metrics: TablesMetrics,
}

type Live = Mutex<Vec<Enrolled>>;

/// Every enrolled version's [`TablesMetrics`], labelled, as one collector.
#[derive(Clone, Debug)]
pub struct TablesCollector {
    labels: Vec<String>,
    descs: Vec<Desc>,
    live: Arc<Live>,
    next: Arc<AtomicU64>,
}

/// One version's enrolment; dropping it removes the version's series.
#[derive(Debug)]
pub struct Registration {
    id: u64,
    live: Weak<Live>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(live) = self.live.upgrade() {
            live.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .retain(|e| e.id != self.id);
        }
    }
}

impl TablesCollector {
    /// A collector whose series carry `labels` (e.g. `["model", "version"]`) before the
    /// families' own labels.
    pub fn new(labels: &[&str]) -> Result<TablesCollector> {
        let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        let mut descs = Vec::new();
        for c in TablesMetrics::new().collectors() {
            for d in c.desc() {
                let mut variable = labels.clone();
                variable.extend(d.variable_labels.iter().cloned());
                descs.push(Desc::new(
                    d.fq_name.clone(),
                    d.help.clone(),
                    variable,
                    HashMap::new(),
                )?);
            }
        }
        Ok(TablesCollector {
            labels,
            descs,
            live: Arc::new(Mutex::new(Vec::new())),
            next: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Reports `metrics` under `values` (one per label of [`TablesCollector::new`]) until the
    /// registration is dropped.
    pub fn add(&self, values: &[&str], metrics: &TablesMetrics) -> Result<Registration> {
        if values.len() != self.labels.len() {
            return Err(TablesError::InvalidArgument {
                what: "metric label values".into(),
                reason: format!("{} values for the labels {:?}", values.len(), self.labels),
            });
        }
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Enrolled {
                id,
                values: values.iter().map(|v| v.to_string()).collect(),
                metrics: metrics.clone(),
            });
        Ok(Registration {
            id,
            live: Arc::downgrade(&self.live),
        })
    }

    /// Versions enrolled now.
    pub fn enrolled(&self) -> usize {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

impl Collector for TablesCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut families: BTreeMap<String, MetricFamily> = BTreeMap::new();
        let mut seen: HashSet<&[String]> = HashSet::new();
        // Newest first: the newest enrolment of a label set wins.
        for e in live.iter().rev() {
            if !seen.insert(e.values.as_slice()) {
                continue;
            }
            for c in e.metrics.collectors() {
                for mut mf in c.collect() {
                    for m in mf.mut_metric().iter_mut() {
                        let mut pairs: Vec<LabelPair> = self
                            .labels
                            .iter()
                            .zip(&e.values)
                            .map(|(k, v)| {
                                let mut p = LabelPair::default();
                                p.set_name(k.clone());
                                p.set_value(v.clone());
                                p
                            })
                            .collect();
                        pairs.extend(m.get_label().iter().cloned());
                        pairs.sort_by(|a, b| a.name().cmp(b.name()));
                        m.set_label(pairs);
                    }
                    match families.get_mut(mf.name()) {
                        Some(f) => f.mut_metric().append(mf.mut_metric()),
                        None => {
                            families.insert(mf.name().to_string(), mf);
                        }
                    }
                }
            }
        }
        families.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, Registry, TextEncoder};

    fn render(r: &Registry) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&r.gather(), &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn enrolled_versions_are_labelled_and_leave_with_their_registration() {
        let c = TablesCollector::new(&["model", "version"]).unwrap();
        let r = Registry::new();
        r.register(Box::new(c.clone())).unwrap();
        let (a, b, a2) = (
            TablesMetrics::new(),
            TablesMetrics::new(),
            TablesMetrics::new(),
        );
        a.lookups.with_label_values(&["hit"]).inc_by(3);
        b.lookups.with_label_values(&["hit"]).inc_by(5);
        a2.lookups.with_label_values(&["hit"]).inc_by(7);
        let ra = c.add(&["m", "1"], &a).unwrap();
        let rb = c.add(&["m", "2"], &b).unwrap();
        let text = render(&r);
        assert!(
            text.contains(r#"quantrec_tables_lookups_total{model="m",result="hit",version="1"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"quantrec_tables_lookups_total{model="m",result="hit",version="2"} 5"#),
            "{text}"
        );
        // A reload of version 1 while the old one is still enrolled: the newest is reported.
        let ra2 = c.add(&["m", "1"], &a2).unwrap();
        let text = render(&r);
        assert!(text.contains(r#"version="1"} 7"#), "{text}");
        assert!(!text.contains(r#"version="1"} 3"#), "{text}");
        drop(ra2);
        drop(rb);
        let text = render(&r);
        assert!(text.contains(r#"version="1"} 3"#), "{text}");
        assert!(!text.contains(r#"version="2""#), "{text}");
        drop(ra);
        assert_eq!(c.enrolled(), 0);
        assert!(!render(&r).contains("quantrec_tables_lookups_total{"));
        assert!(c.add(&["only-one"], &a).is_err());
    }
}
