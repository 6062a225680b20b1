//! [`RemoteTables`]: the model's [`RowSource`] on a Redis Cluster, behind the hot-row cache.
//!
//! One model call = one [`RowSource::fetch_rows`]: unique rows are looked up in the cache; the
//! misses are grouped by slot group (one hash tag, one slot, one node) and each group is one
//! pipeline — `GETRANGE` of each row, or `GET` of a whole block when the batch needs enough of
//! its rows that the block is cheaper — sent by the [`crate::router`] straight to the slot's
//! owner, all groups in flight at once on per-node multiplexed connections, under one deadline;
//! `MOVED`/`ASK` during resharding are followed there. Fetched rows are offered to the cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::try_join_all;
use quantrec_data::Batch;
use quantrec_model::remote::{RowRequest, RowSource, TableShape};
use quantrec_model::{Model, ModelError};

use crate::cache::{ENTRY_OVERHEAD, Policy, RowCache};
use crate::layout::{Keys, Layout};
use crate::metrics::TablesMetrics;
use crate::store::Store;
use crate::{Result, TablesError};

/// RESP bytes of a command with these arguments (`*N\r\n` then `$len\r\n arg \r\n` each).
fn resp_command_bytes(args: &[usize]) -> usize {
    let digits = |n: usize| n.to_string().len();
    1 + digits(args.len())
        + 2
        + args
            .iter()
            .map(|&a| 1 + digits(a) + 2 + a + 2)
            .sum::<usize>()
}

/// RESP bytes of a bulk-string reply of `n` bytes.
fn resp_reply_bytes(n: usize) -> usize {
    1 + n.to_string().len() + 2 + n + 2
}

/// One command of a group pipeline.
#[derive(Clone, Debug)]
struct Read {
    key: String,
    /// Inclusive byte range (`GETRANGE`), or the whole value (`GET`).
    range: Option<(usize, usize)>,
}

impl Read {
    fn cmd(&self) -> redis::Cmd {
        match self.range {
            Some((a, b)) => {
                let mut c = redis::cmd("GETRANGE");
                c.arg(&self.key).arg(a).arg(b);
                c
            }
            None => {
                let mut c = redis::cmd("GET");
                c.arg(&self.key);
                c
            }
        }
    }

    fn sent_bytes(&self) -> usize {
        match self.range {
            Some((a, b)) => {
                resp_command_bytes(&[8, self.key.len(), a.to_string().len(), b.to_string().len()])
            }
            None => resp_command_bytes(&[3, self.key.len()]),
        }
    }
}

/// Where the rows of one reply go: `(index into the wanted rows, row within the reply)`.
type Scatter = Vec<(usize, usize)>;

/// Bytes on the wire of one fetch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireBytes {
    /// RESP bytes of the commands.
    pub sent: usize,
    /// RESP bytes of the replies.
    pub received: usize,
}

/// Counts of a preload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PreloadReport {
    /// Distinct rows seen in the calibration batches.
    pub distinct: usize,
    /// Rows put into the cache.
    pub loaded: usize,
}

/// The tables of one model version in the cluster, with a local cache.
#[derive(Debug)]
pub struct RemoteTables {
    store: Store,
    keys: Keys,
    layout: Arc<Layout>,
    shapes: Vec<TableShape>,
    cache: RowCache,
    metrics: TablesMetrics,
}

impl RemoteTables {
    /// Opens the version `model`'s manifest points at, with a cache of `cache_bytes`.
    pub fn open(
        store: Store,
        model: &str,
        cache_bytes: usize,
        policy: Policy,
    ) -> Result<RemoteTables> {
        let manifest = store.manifest(model)?;
        let shapes = manifest.layout.validate(&store.keys().manifest(model))?;
        let cache = RowCache::new(cache_bytes, policy);
        let metrics = TablesMetrics::new();
        metrics.cache_capacity.set(cache.capacity() as i64);
        Ok(RemoteTables {
            keys: store.keys().clone(),
            store,
            layout: Arc::new(manifest.layout),
            shapes,
            cache,
            metrics,
        })
    }

    /// [`RemoteTables::open`], refusing unless the version the manifest points at holds exactly
    /// `local`'s tables ([`TablesError::VersionMismatch`]): the artifact's tables are cut into
    /// blocks with the manifest's layout and their checksums digested locally, which reads
    /// every table byte of `local` once.
    pub fn open_for(
        store: Store,
        model: &str,
        local: &Model,
        cache_bytes: usize,
        policy: Policy,
    ) -> Result<RemoteTables> {
        let tables = RemoteTables::open(store, model, cache_bytes, policy)?;
        let l = tables.layout();
        let (mine, _) = Layout::compute(
            &crate::model_tables(local),
            l.rows_per_block,
            l.blocks_per_group,
        )?;
        if mine.version != l.version {
            return Err(TablesError::VersionMismatch {
                model: model.to_string(),
                namespace: tables.keys.namespace.clone(),
                stored: l.version.clone(),
                local: mine.version,
            });
        }
        Ok(tables)
    }

    /// The version served.
    pub fn version(&self) -> &str {
        &self.layout.version
    }

    /// The layout served.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The cache.
    pub fn cache(&self) -> &RowCache {
        &self.cache
    }

    /// The metrics (register them with [`TablesMetrics::register`]).
    pub fn metrics(&self) -> &TablesMetrics {
        &self.metrics
    }

    /// Whether every primary answers within the fetch deadline (readiness).
    pub fn ping(&self) -> Result<()> {
        self.store.cluster().ping()
    }

    fn check(&self, table: usize, row: u64) -> Result<usize> {
        let s = self.shapes.get(table).ok_or(TablesError::NoSuchTable {
            table,
            tables: self.shapes.len(),
        })?;
        if row >= s.rows as u64 {
            return Err(TablesError::RowOutOfRange {
                table,
                row,
                rows: s.rows,
            });
        }
        Ok(s.row_bytes())
    }

    /// Reads `wants` (table, row) from the cluster, bypassing the cache; row `k`'s bytes land in
    /// `out[starts[k]..]` where `starts` are the prefix sums of the row sizes.
    pub fn fetch_uncached(&self, wants: &[(usize, u64)], out: &mut Vec<u8>) -> Result<WireBytes> {
        let mut starts = Vec::with_capacity(wants.len());
        let mut total = 0usize;
        for &(t, r) in wants {
            starts.push(total);
            total += self.check(t, r)?;
        }
        out.clear();
        out.resize(total, 0);
        if wants.is_empty() {
            return Ok(WireBytes::default());
        }
        let l = &self.layout;
        let v = &l.version;
        // Rows per slot group, then per block.
        let mut groups: BTreeMap<(usize, usize), BTreeMap<usize, Vec<usize>>> = BTreeMap::new();
        for (k, &(t, r)) in wants.iter().enumerate() {
            let b = r as usize / l.rows_per_block;
            groups
                .entry((t, b / l.blocks_per_group))
                .or_default()
                .entry(b)
                .or_default()
                .push(k);
        }
        let mut jobs: Vec<Vec<Read>> = Vec::with_capacity(groups.len());
        let mut scatters: Vec<Vec<(usize, Scatter)>> = Vec::with_capacity(groups.len());
        let mut wire = WireBytes::default();
        for ((t, g), blocks) in groups {
            let rb = self.shapes[t].row_bytes();
            let mut reads = Vec::new();
            let mut scatter = Vec::new();
            for (b, ks) in blocks {
                let key = self.keys.block(v, t, g, b);
                let first = b * l.rows_per_block;
                let block_rows = l.block_rows(t, b);
                // A whole block when its reply is no larger than the single rows' replies.
                let per_row = resp_command_bytes(&[8, key.len(), 4, 4]) + resp_reply_bytes(rb);
                let whole = resp_command_bytes(&[3, key.len()]) + resp_reply_bytes(block_rows * rb);
                if ks.len() * per_row >= whole {
                    let sc = ks
                        .iter()
                        .map(|&k| (k, wants[k].1 as usize - first))
                        .collect();
                    reads.push(Read { key, range: None });
                    scatter.push((block_rows * rb, sc));
                } else {
                    for &k in &ks {
                        let off = (wants[k].1 as usize - first) * rb;
                        reads.push(Read {
                            key: key.clone(),
                            range: Some((off, off + rb - 1)),
                        });
                        scatter.push((rb, vec![(k, 0)]));
                    }
                }
            }
            wire.sent += reads.iter().map(Read::sent_bytes).sum::<usize>();
            jobs.push(reads);
            scatters.push(scatter);
        }
        let deadline = self.store.cluster().options().deadline;
        let job_cmds: Vec<(u16, Vec<redis::Cmd>)> = jobs
            .iter()
            .map(|reads| {
                let slot = crate::router::key_slot(reads[0].key.as_bytes());
                (slot, reads.iter().map(Read::cmd).collect())
            })
            .collect();
        let replies: Vec<Vec<Option<Vec<u8>>>> = self.store.cluster().run_routed(
            "fetching rows",
            deadline,
            move |router| async move {
                try_join_all(
                    job_cmds
                        .iter()
                        .map(|(slot, cmds)| router.pipeline(*slot, cmds)),
                )
                .await
            },
        )?;
        for ((reads, scatter), group) in jobs.iter().zip(scatters).zip(replies) {
            for ((read, (expected, sc)), data) in reads.iter().zip(scatter).zip(group) {
                // GETRANGE of a missing key answers "", GET answers nil.
                let data = data.unwrap_or_default();
                let t = wants[sc[0].0].0;
                if data.len() != expected {
                    return Err(if data.is_empty() {
                        TablesError::MissingKey {
                            key: read.key.clone(),
                            table: t,
                        }
                    } else {
                        TablesError::WrongLength {
                            key: read.key.clone(),
                            table: t,
                            expected,
                            found: data.len(),
                        }
                    });
                }
                wire.received += resp_reply_bytes(data.len());
                let rb = self.shapes[t].row_bytes();
                for (k, row) in sc {
                    out[starts[k]..starts[k] + rb].copy_from_slice(&data[row * rb..(row + 1) * rb]);
                }
            }
        }
        Ok(wire)
    }

    /// [`RowSource::fetch_rows`] with this crate's error.
    pub fn fetch(&self, requests: &[RowRequest<'_>], out: &mut [Vec<u8>]) -> Result<()> {
        let mut misses: Vec<(usize, u64)> = Vec::new();
        let mut places: Vec<(usize, usize)> = Vec::new();
        let (mut hits, mut lookups) = (0u64, 0u64);
        for (i, r) in requests.iter().enumerate() {
            let rb = match r.rows.last() {
                Some(&last) => self.check(r.table, last)?,
                None => continue,
            };
            let o = &mut out[i];
            o.clear();
            o.resize(r.rows.len() * rb, 0);
            for (p, &row) in r.rows.iter().enumerate() {
                lookups += 1;
                if self.cache.get(r.table, row, &mut o[p * rb..(p + 1) * rb]) {
                    hits += 1;
                } else {
                    misses.push((r.table, row));
                    places.push((i, p));
                }
            }
        }
        self.metrics
            .lookups
            .with_label_values(&["hit"])
            .inc_by(hits);
        self.metrics
            .lookups
            .with_label_values(&["miss"])
            .inc_by(lookups - hits);
        if !misses.is_empty() {
            let t0 = Instant::now();
            let mut flat = Vec::new();
            let wire = match self.fetch_uncached(&misses, &mut flat) {
                Ok(w) => w,
                Err(e) => {
                    let kind = match &e {
                        TablesError::Timeout { .. } => "timeout",
                        TablesError::Redis { .. } => "redis",
                        _ => "data",
                    };
                    self.metrics.errors.with_label_values(&[kind]).inc();
                    return Err(e);
                }
            };
            self.metrics
                .fetch_seconds
                .observe(t0.elapsed().as_secs_f64());
            self.metrics.fetched_rows.inc_by(misses.len() as u64);
            self.metrics
                .wire_bytes
                .with_label_values(&["sent"])
                .inc_by(wire.sent as u64);
            self.metrics
                .wire_bytes
                .with_label_values(&["received"])
                .inc_by(wire.received as u64);
            let mut at = 0;
            for (&(t, row), &(i, p)) in misses.iter().zip(&places) {
                let rb = self.shapes[t].row_bytes();
                let data = &flat[at..at + rb];
                out[i][p * rb..(p + 1) * rb].copy_from_slice(data);
                self.cache.insert(t, row, data);
                at += rb;
            }
        }
        self.metrics.cache_bytes.set(self.cache.bytes() as i64);
        self.metrics.cache_rows.set(self.cache.entries() as i64);
        Ok(())
    }

    /// Counts how often each row occurs in `batches` (calibration data) and loads the most
    /// frequent rows into the cache until it is full.
    pub fn preload_hottest<'b>(
        &self,
        batches: impl IntoIterator<Item = &'b Batch>,
    ) -> Result<PreloadReport> {
        let mut counts: HashMap<(usize, u64), usize> = HashMap::new();
        for b in batches {
            for (t, f) in b.sparse.iter().enumerate() {
                for &id in &f.ids {
                    if id >= 0 {
                        *counts.entry((t, id as u64)).or_default() += 1;
                    }
                }
            }
        }
        let mut hot: Vec<((usize, u64), usize)> = counts
            .into_iter()
            .filter(|&((t, r), _)| self.check(t, r).is_ok())
            .collect();
        hot.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut report = PreloadReport {
            distinct: hot.len(),
            loaded: 0,
        };
        let mut budget = self.cache.capacity();
        let mut chosen = Vec::new();
        for &((t, r), n) in &hot {
            let cost = self.shapes[t].row_bytes() + ENTRY_OVERHEAD;
            if cost > budget {
                break;
            }
            budget -= cost;
            chosen.push(((t, r), n));
        }
        let mut flat = Vec::new();
        for chunk in chosen.chunks(4096) {
            let wants: Vec<(usize, u64)> = chunk.iter().map(|c| c.0).collect();
            self.fetch_uncached(&wants, &mut flat)?;
            let mut at = 0;
            for &((t, r), n) in chunk {
                let rb = self.shapes[t].row_bytes();
                if self.cache.preload(t, r, &flat[at..at + rb], n) {
                    report.loaded += 1;
                }
                at += rb;
            }
        }
        self.metrics.cache_bytes.set(self.cache.bytes() as i64);
        self.metrics.cache_rows.set(self.cache.entries() as i64);
        Ok(report)
    }
}

impl RowSource for RemoteTables {
    fn table_shapes(&self) -> Vec<TableShape> {
        self.shapes.clone()
    }

    fn fetch_rows(
        &self,
        requests: &[RowRequest<'_>],
        out: &mut [Vec<u8>],
    ) -> quantrec_model::Result<()> {
        self.fetch(requests, out).map_err(|e| {
            let table = match &e {
                TablesError::MissingKey { table, .. }
                | TablesError::WrongLength { table, .. }
                | TablesError::RowOutOfRange { table, .. } => *table,
                _ => requests.first().map_or(0, |r| r.table),
            };
            ModelError::RemoteRows {
                table,
                source: Box::new(e),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_sizes() {
        // *2\r\n$3\r\nGET\r\n$3\r\nkey\r\n
        assert_eq!(resp_command_bytes(&[3, 3]), 22);
        // $5\r\nhello\r\n
        assert_eq!(resp_reply_bytes(5), 11);
    }
}
