//! Push, verify and garbage-collect table versions (layout: [`crate::layout`]).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::future::try_join_all;
use quantrec_model::remote::TableShape;
use redis::aio::ConnectionLike;

use crate::cluster::Cluster;
use crate::layout::{
    CHECKSUM_BYTES, DEFAULT_BLOCKS_PER_GROUP, DEFAULT_ROWS_PER_BLOCK, Keys, Layout, Manifest,
    checksum, parse,
};
use crate::{Result, TablesError};

/// Groups written or read concurrently by one call.
const GROUPS_PER_CALL: usize = 8;

/// Options of [`Store::push`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushOptions {
    /// Rows per block.
    pub rows_per_block: usize,
    /// Blocks per slot group.
    pub blocks_per_group: usize,
    /// Write at most this many new blocks, then stop without a manifest (a push in steps; the
    /// next push resumes). `None`: all.
    pub max_new_blocks: Option<usize>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            rows_per_block: DEFAULT_ROWS_PER_BLOCK,
            blocks_per_group: DEFAULT_BLOCKS_PER_GROUP,
            max_new_blocks: None,
        }
    }
}

/// What a push did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushReport {
    /// The version (digest of the content).
    pub version: String,
    /// Blocks of the version.
    pub blocks: usize,
    /// Blocks written by this push.
    pub written: usize,
    /// Blocks already present (an earlier, interrupted or identical push).
    pub skipped: usize,
    /// Bytes of the blocks written.
    pub bytes_written: usize,
    /// Whether every block is present and the manifest now points at this version.
    pub complete: bool,
}

/// What a verify read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The version checked.
    pub version: String,
    /// Blocks checked.
    pub blocks: usize,
    /// Bytes read.
    pub bytes: usize,
}

/// What a gc did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcReport {
    /// Versions some manifest points at.
    pub kept: Vec<String>,
    /// Unreferenced versions younger than the grace period (pushes that may be in progress).
    pub young: Vec<String>,
    /// Versions dropped.
    pub dropped: Vec<String>,
    /// Keys deleted.
    pub keys_deleted: usize,
}

/// The table store of one namespace.
#[derive(Clone, Debug)]
pub struct Store {
    cluster: Arc<Cluster>,
    keys: Keys,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

async fn query<T: redis::FromRedisValue, C: ConnectionLike>(
    op: &str,
    p: &redis::Pipeline,
    c: &mut C,
) -> Result<T> {
    p.query_async(c)
        .await
        .map_err(|e| TablesError::redis(op.to_string(), e))
}

impl Store {
    /// The store of `namespace` on `cluster`.
    pub fn new(cluster: Arc<Cluster>, namespace: &str) -> Result<Store> {
        Ok(Store {
            cluster,
            keys: Keys::new(namespace)?,
        })
    }

    /// The cluster.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// The key names.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    fn admin<T, F, Fut>(&self, op: &str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(redis::cluster_async::ClusterConnection) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        let d = self.cluster.options().admin_deadline;
        self.cluster.run(op, Some(d), f)
    }

    /// Writes `tables` (each its shape and stored bytes, in model order) as a version of `model`:
    /// layout first, then every block not yet present with its group's checksums, then (once all
    /// are present) the manifest. Idempotent; an interrupted push resumes where it stopped.
    pub fn push(
        &self,
        model: &str,
        tables: &[(TableShape, &[u8])],
        options: &PushOptions,
    ) -> Result<PushReport> {
        for (t, (s, b)) in tables.iter().enumerate() {
            if b.len() != s.rows * s.row_bytes() {
                return Err(TablesError::InvalidArgument {
                    what: format!("table {t}"),
                    reason: format!(
                        "{} bytes for {} rows of {} bytes",
                        b.len(),
                        s.rows,
                        s.row_bytes()
                    ),
                });
            }
        }
        let (layout, sums) =
            Layout::compute(tables, options.rows_per_block, options.blocks_per_group)?;
        let v = layout.version.clone();
        let layout_json = serde_json::to_vec(&layout).map_err(|e| TablesError::BadManifest {
            key: self.keys.layout(&v),
            reason: e.to_string(),
        })?;
        let (lk, vk, ver) = (self.keys.layout(&v), self.keys.versions(), v.clone());
        self.admin("SET layout", move |mut c| async move {
            let mut p = redis::pipe();
            p.cmd("SET").arg(&lk).arg(layout_json).ignore();
            query::<(), _>("SET layout", &p, &mut c).await?;
            let mut p = redis::pipe();
            p.cmd("ZADD").arg(&vk).arg(now_secs()).arg(&ver).ignore();
            query::<(), _>("ZADD versions", &p, &mut c).await
        })?;

        let mut report = PushReport {
            version: v.clone(),
            blocks: (0..tables.len()).map(|t| layout.blocks(t)).sum(),
            written: 0,
            skipped: 0,
            bytes_written: 0,
            complete: false,
        };
        let mut budget = options.max_new_blocks.unwrap_or(usize::MAX);
        let groups: Vec<(usize, usize)> = (0..tables.len())
            .flat_map(|t| (0..layout.groups(t)).map(move |g| (t, g)))
            .collect();
        for call in groups.chunks(GROUPS_PER_CALL) {
            // Which blocks of these groups exist (one pipeline per group: one slot each).
            let probes: Vec<(usize, usize, Vec<String>, String)> = call
                .iter()
                .map(|&(t, g)| {
                    let blocks = layout.group_blocks(t, g);
                    let keys = blocks.map(|b| self.keys.block(&v, t, g, b)).collect();
                    (t, g, keys, self.keys.sums(&v, t, g))
                })
                .collect();
            let probe_keys = probes.clone();
            let present: Vec<Vec<bool>> = self.admin("EXISTS blocks", move |c| async move {
                try_join_all(probe_keys.into_iter().map(|(_, _, keys, sums)| {
                    let mut c = c.clone();
                    async move {
                        let mut p = redis::pipe();
                        for k in keys.iter().chain([&sums]) {
                            p.cmd("EXISTS").arg(k);
                        }
                        query::<Vec<bool>, _>("EXISTS blocks", &p, &mut c).await
                    }
                }))
                .await
            })?;
            // The blocks to write, within the budget.
            let mut writes = Vec::new();
            for ((t, g, keys, sums_key), have) in probes.into_iter().zip(present) {
                let (shape, bytes) = tables[t];
                let rb = shape.row_bytes();
                let blocks = layout.group_blocks(t, g);
                let mut sets = Vec::new();
                for (i, b) in blocks.clone().enumerate() {
                    if have[i] {
                        report.skipped += 1;
                    } else if budget > 0 {
                        budget -= 1;
                        let lo = b * layout.rows_per_block * rb;
                        let data = bytes[lo..lo + layout.block_rows(t, b) * rb].to_vec();
                        report.bytes_written += data.len();
                        sets.push((keys[i].clone(), data));
                    }
                }
                report.written += sets.len();
                // `have` ends with the sums key; they are written once every block is there.
                let (have_blocks, have_sums) = have.split_at(have.len() - 1);
                let missing = have_blocks.iter().filter(|&&h| !h).count();
                let sums_value: Option<Vec<u8>> = (sets.len() == missing && !have_sums[0])
                    .then(|| sums[t][blocks].iter().flatten().copied().collect());
                if !sets.is_empty() || sums_value.is_some() {
                    writes.push((sets, sums_key, sums_value));
                }
            }
            if !writes.is_empty() {
                self.admin("SET blocks", move |c| async move {
                    try_join_all(writes.into_iter().map(|(sets, sums_key, sums_value)| {
                        let mut c = c.clone();
                        async move {
                            let mut p = redis::pipe();
                            for (k, data) in &sets {
                                p.cmd("SET").arg(k).arg(data.as_slice()).ignore();
                            }
                            // Checksums after the blocks (same slot, same pipeline, in order).
                            if let Some(s) = &sums_value {
                                p.cmd("SET").arg(&sums_key).arg(s.as_slice()).ignore();
                            }
                            query::<(), _>("SET blocks", &p, &mut c).await
                        }
                    }))
                    .await
                    .map(|_| ())
                })?;
            }
        }
        if report.written + report.skipped < report.blocks {
            return Ok(report);
        }
        let manifest = Manifest {
            model: model.to_string(),
            layout,
        };
        let json = serde_json::to_vec(&manifest).map_err(|e| TablesError::BadManifest {
            key: self.keys.manifest(model),
            reason: e.to_string(),
        })?;
        let (mk, msk, name) = (
            self.keys.manifest(model),
            self.keys.models(),
            model.to_string(),
        );
        self.admin("SET manifest", move |mut c| async move {
            let mut p = redis::pipe();
            p.cmd("SET").arg(&mk).arg(json).ignore();
            query::<(), _>("SET manifest", &p, &mut c).await?;
            let mut p = redis::pipe();
            p.cmd("SADD").arg(&msk).arg(&name).ignore();
            query::<(), _>("SADD models", &p, &mut c).await
        })?;
        report.complete = true;
        Ok(report)
    }

    /// The manifest of `model` ([`TablesError::NoManifest`] when no complete version exists).
    pub fn manifest(&self, model: &str) -> Result<Manifest> {
        let key = self.keys.manifest(model);
        let k = key.clone();
        let bytes: Option<Vec<u8>> = self.cluster.run(
            "GET manifest",
            Some(
                self.cluster
                    .options()
                    .deadline
                    .max(std::time::Duration::from_secs(2)),
            ),
            move |mut c| async move {
                let mut p = redis::pipe();
                p.cmd("GET").arg(&k);
                let (v,): (Option<Vec<u8>>,) = query("GET manifest", &p, &mut c).await?;
                Ok(v)
            },
        )?;
        let bytes = bytes.ok_or_else(|| TablesError::NoManifest {
            model: model.to_string(),
            namespace: self.keys.namespace.clone(),
        })?;
        let m: Manifest = parse(&key, &bytes)?;
        m.layout.validate(&key)?;
        Ok(m)
    }

    /// Re-reads every block and checksum of `model`'s version and checks them against each
    /// other and the manifest.
    pub fn verify(&self, model: &str) -> Result<VerifyReport> {
        let m = self.manifest(model)?;
        let layout = Arc::new(m.layout);
        let v = layout.version.clone();
        let mut report = VerifyReport {
            version: v.clone(),
            blocks: 0,
            bytes: 0,
        };
        for t in 0..layout.tables.len() {
            let mut all_sums = Vec::with_capacity(layout.blocks(t) * CHECKSUM_BYTES);
            let groups: Vec<usize> = (0..layout.groups(t)).collect();
            for call in groups.chunks(GROUPS_PER_CALL) {
                let jobs: Vec<(usize, Vec<String>, String)> = call
                    .iter()
                    .map(|&g| {
                        let keys = layout
                            .group_blocks(t, g)
                            .map(|b| self.keys.block(&v, t, g, b))
                            .collect();
                        (g, keys, self.keys.sums(&v, t, g))
                    })
                    .collect();
                let l = layout.clone();
                let results: Vec<(Vec<u8>, usize, usize)> =
                    self.admin("verify blocks", move |c| async move {
                        try_join_all(jobs.into_iter().map(|(g, keys, sums_key)| {
                            let mut c = c.clone();
                            let l = l.clone();
                            async move {
                                let mut p = redis::pipe();
                                p.cmd("GET").arg(&sums_key);
                                for k in &keys {
                                    p.cmd("GET").arg(k);
                                }
                                let vals: Vec<Option<Vec<u8>>> =
                                    query("verify blocks", &p, &mut c).await?;
                                check_group(&l, t, g, &keys, &sums_key, vals)
                            }
                        }))
                        .await
                    })?;
                for (sums, blocks, bytes) in results {
                    all_sums.extend_from_slice(&sums);
                    report.blocks += blocks;
                    report.bytes += bytes;
                }
            }
            let digest: String =
                sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&all_sums))
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
            if digest != layout.tables[t].sums_digest {
                return Err(TablesError::BadManifest {
                    key: self.keys.manifest(model),
                    reason: format!(
                        "the checksums of table {t} do not match the manifest's digest"
                    ),
                });
            }
        }
        Ok(report)
    }

    /// Drops every version that no manifest points at and that was started more than
    /// `grace_secs` ago (younger ones may be pushes in progress).
    pub fn gc(&self, grace_secs: f64) -> Result<GcReport> {
        let (mk, vk) = (self.keys.models(), self.keys.versions());
        let models: Vec<String> = self.admin("SMEMBERS models", move |mut c| async move {
            let mut p = redis::pipe();
            p.cmd("SMEMBERS").arg(&mk);
            let (v,): (Vec<String>,) = query("SMEMBERS models", &p, &mut c).await?;
            Ok(v)
        })?;
        let mut kept = Vec::new();
        for model in &models {
            match self.manifest(model) {
                Ok(m) => kept.push(m.layout.version),
                Err(TablesError::NoManifest { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let versions: Vec<(String, f64)> =
            self.admin("ZRANGE versions", move |mut c| async move {
                let mut p = redis::pipe();
                p.cmd("ZRANGE").arg(&vk).arg(0).arg(-1).arg("WITHSCORES");
                let (v,): (Vec<(String, f64)>,) = query("ZRANGE versions", &p, &mut c).await?;
                Ok(v)
            })?;
        let mut report = GcReport {
            kept: kept.clone(),
            young: Vec::new(),
            dropped: Vec::new(),
            keys_deleted: 0,
        };
        let now = now_secs();
        for (v, started) in versions {
            if kept.contains(&v) {
                continue;
            }
            if now - started < grace_secs {
                report.young.push(v);
                continue;
            }
            report.keys_deleted += self.drop_version(&v)?;
            report.dropped.push(v);
        }
        Ok(report)
    }

    /// Deletes every key of version `v` (blocks, checksums, layout) and forgets it.
    fn drop_version(&self, v: &str) -> Result<usize> {
        let lk = self.keys.layout(v);
        let k = lk.clone();
        let bytes: Option<Vec<u8>> = self.admin("GET layout", move |mut c| async move {
            let mut p = redis::pipe();
            p.cmd("GET").arg(&k);
            let (v,): (Option<Vec<u8>>,) = query("GET layout", &p, &mut c).await?;
            Ok(v)
        })?;
        let mut deleted = 0usize;
        if let Some(bytes) = bytes {
            let layout: Layout = parse(&lk, &bytes)?;
            let groups: Vec<(usize, usize)> = (0..layout.tables.len())
                .flat_map(|t| (0..layout.groups(t)).map(move |g| (t, g)))
                .collect();
            for call in groups.chunks(GROUPS_PER_CALL) {
                let jobs: Vec<Vec<String>> = call
                    .iter()
                    .map(|&(t, g)| {
                        let mut keys: Vec<String> = layout
                            .group_blocks(t, g)
                            .map(|b| self.keys.block(v, t, g, b))
                            .collect();
                        keys.push(self.keys.sums(v, t, g));
                        keys
                    })
                    .collect();
                let n: Vec<usize> = self.admin("DEL blocks", move |c| async move {
                    try_join_all(jobs.into_iter().map(|keys| {
                        let mut c = c.clone();
                        async move {
                            let mut p = redis::pipe();
                            for k in &keys {
                                p.cmd("DEL").arg(k);
                            }
                            let n: Vec<usize> = query("DEL blocks", &p, &mut c).await?;
                            Ok(n.iter().sum())
                        }
                    }))
                    .await
                })?;
                deleted += n.iter().sum::<usize>();
            }
        }
        let (vk, ver) = (self.keys.versions(), v.to_string());
        deleted += self.admin("DEL layout", move |mut c| async move {
            let mut p = redis::pipe();
            p.cmd("DEL").arg(&lk);
            let (n,): (usize,) = query("DEL layout", &p, &mut c).await?;
            let mut p = redis::pipe();
            p.cmd("ZREM").arg(&vk).arg(&ver).ignore();
            query::<(), _>("ZREM versions", &p, &mut c).await?;
            Ok(n)
        })?;
        Ok(deleted)
    }
}

/// Checks one group read by `verify`: `vals` = sums, then each block. Returns the group's
/// checksums, blocks and bytes.
fn check_group(
    l: &Layout,
    t: usize,
    g: usize,
    keys: &[String],
    sums_key: &str,
    vals: Vec<Option<Vec<u8>>>,
) -> Result<(Vec<u8>, usize, usize)> {
    let mut vals = vals.into_iter();
    let blocks = l.group_blocks(t, g);
    let sums = vals
        .next()
        .flatten()
        .ok_or_else(|| TablesError::MissingKey {
            key: sums_key.to_string(),
            table: t,
        })?;
    if sums.len() != blocks.len() * CHECKSUM_BYTES {
        return Err(TablesError::WrongLength {
            key: sums_key.to_string(),
            table: t,
            expected: blocks.len() * CHECKSUM_BYTES,
            found: sums.len(),
        });
    }
    let rb = l.tables[t].row_bytes;
    let mut bytes = 0;
    for ((i, b), val) in blocks.clone().enumerate().zip(vals) {
        let key = &keys[i];
        let data = val.ok_or_else(|| TablesError::MissingKey {
            key: key.clone(),
            table: t,
        })?;
        let expected = l.block_rows(t, b) * rb;
        if data.len() != expected {
            return Err(TablesError::WrongLength {
                key: key.clone(),
                table: t,
                expected,
                found: data.len(),
            });
        }
        if checksum(&data) != sums[i * CHECKSUM_BYTES..(i + 1) * CHECKSUM_BYTES] {
            return Err(TablesError::Checksum {
                table: t,
                block: b,
                key: key.clone(),
            });
        }
        bytes += data.len();
    }
    Ok((sums, blocks.len(), bytes))
}
