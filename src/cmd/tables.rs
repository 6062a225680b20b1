//! `quantrec tables push|verify|gc`: embedding tables in a Redis Cluster ([`quantrec_tables`]),
//! and the `--tables-redis` options of `predict` and `bench model`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use quantrec_model::Model;
use quantrec_tables::bench::{RemoteBenchLine, RemoteBenchOptions, run_remote_bench};
use quantrec_tables::store::PushOptions;
use quantrec_tables::{Cluster, ClusterOptions, RemoteTables, Store, model_tables};

/// Arguments of `quantrec tables`.
#[derive(Args, Debug)]
pub struct TablesArgs {
    #[command(subcommand)]
    pub what: TablesWhat,
}

/// What to do with the store.
#[derive(Subcommand, Debug)]
pub enum TablesWhat {
    /// Write every table of an artifact to the cluster (idempotent, resumable; manifest last).
    Push(PushArgs),
    /// Re-read every block of the model's current version and check its checksum.
    Verify(VerifyArgs),
    /// Delete versions no manifest points at.
    Gc(GcArgs),
}

/// Where the store is.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Seed nodes of the Redis Cluster, comma separated: redis://HOST:PORT[,HOST:PORT...].
    #[arg(long)]
    pub redis: String,
    /// Key namespace.
    #[arg(long, default_value = "quantrec")]
    pub namespace: String,
}

/// Arguments of `quantrec tables push`.
#[derive(Args, Debug)]
pub struct PushArgs {
    /// The artifact.
    pub model: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Model name in the store (default: the artifact's file stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Rows per block (one key).
    #[arg(long, default_value_t = quantrec_tables::layout::DEFAULT_ROWS_PER_BLOCK)]
    pub rows_per_block: usize,
    /// Blocks per slot group (one hash tag).
    #[arg(long, default_value_t = quantrec_tables::layout::DEFAULT_BLOCKS_PER_GROUP)]
    pub blocks_per_group: usize,
    /// Write at most this many new blocks and stop (the next push resumes).
    #[arg(long)]
    pub max_new_blocks: Option<usize>,
}

/// Arguments of `quantrec tables verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The artifact (its file stem is the model name) or, with `--name`, anything.
    pub model: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Model name in the store (default: the artifact's file stem).
    #[arg(long)]
    pub name: Option<String>,
}

/// Arguments of `quantrec tables gc`.
#[derive(Args, Debug)]
pub struct GcArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Keep unreferenced versions started less than this many seconds ago (pushes in progress).
    #[arg(long, default_value_t = 3600.0)]
    pub grace_secs: f64,
}

/// `--tables-redis` and friends of `predict` and `bench model`.
#[derive(Args, Debug, Clone)]
pub struct RemoteTablesArgs {
    /// Serve the tables from this Redis Cluster (seed nodes, comma separated) instead of the
    /// artifact (pushed there by `quantrec tables push`).
    #[arg(long)]
    pub tables_redis: Option<String>,
    /// Key namespace of the store.
    #[arg(long, default_value = "quantrec", requires = "tables_redis")]
    pub tables_namespace: String,
    /// Model name in the store (default: the artifact's file stem).
    #[arg(long, requires = "tables_redis")]
    pub tables_name: Option<String>,
    /// Bytes of the local hot-row cache in front of the store.
    #[arg(long, default_value_t = 0, requires = "tables_redis")]
    pub cache_bytes: usize,
    /// Deadline of one batch's row fetch, in milliseconds.
    #[arg(long, default_value_t = 1000, requires = "tables_redis")]
    pub tables_deadline_ms: u64,
}

fn name_of(path: &Path, name: Option<&str>) -> String {
    name.map(String::from).unwrap_or_else(|| {
        path.file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().to_string())
    })
}

fn open_store(urls: &str, namespace: &str, deadline_ms: Option<u64>) -> Result<Store> {
    let mut o = ClusterOptions::from_urls(urls)?;
    if let Some(ms) = deadline_ms {
        o.deadline = std::time::Duration::from_millis(ms);
    }
    Ok(Store::new(Arc::new(Cluster::new(o)?), namespace)?)
}

/// Runs `quantrec tables`.
pub fn run(args: TablesArgs) -> Result<()> {
    match args.what {
        TablesWhat::Push(a) => {
            let model =
                Model::load(&a.model).with_context(|| format!("loading {}", a.model.display()))?;
            let store = open_store(&a.store.redis, &a.store.namespace, None)?;
            let name = name_of(&a.model, a.name.as_deref());
            let options = PushOptions {
                rows_per_block: a.rows_per_block,
                blocks_per_group: a.blocks_per_group,
                max_new_blocks: a.max_new_blocks,
            };
            let r = store.push(&name, &model_tables(&model), &options)?;
            println!(
                "{name} version {}: {} blocks, {} written ({} bytes), {} already there; {}",
                r.version,
                r.blocks,
                r.written,
                r.bytes_written,
                r.skipped,
                if r.complete {
                    "manifest written"
                } else {
                    "incomplete: no manifest yet (push again to resume)"
                }
            );
        }
        TablesWhat::Verify(a) => {
            let store = open_store(&a.store.redis, &a.store.namespace, None)?;
            let name = name_of(&a.model, a.name.as_deref());
            let r = store.verify(&name)?;
            println!(
                "{name} version {}: {} blocks, {} bytes, every checksum matches",
                r.version, r.blocks, r.bytes
            );
        }
        TablesWhat::Gc(a) => {
            let store = open_store(&a.store.redis, &a.store.namespace, None)?;
            let r = store.gc(a.grace_secs)?;
            println!(
                "kept {:?}; young (kept) {:?}; dropped {:?} ({} keys)",
                r.kept, r.young, r.dropped, r.keys_deleted
            );
        }
    }
    Ok(())
}

/// With `--tables-redis`: attaches the store's tables (and cache) to `model` as its row source.
pub fn attach(
    model: &mut Model,
    path: &Path,
    args: &RemoteTablesArgs,
) -> Result<Option<Arc<RemoteTables>>> {
    let Some(urls) = &args.tables_redis else {
        return Ok(None);
    };
    let store = open_store(urls, &args.tables_namespace, Some(args.tables_deadline_ms))?;
    let name = name_of(path, args.tables_name.as_deref());
    let tables = Arc::new(RemoteTables::open(
        store,
        &name,
        args.cache_bytes,
        quantrec_tables::Policy::WTinyLfu,
    )?);
    model.set_row_source(tables.clone())?;
    Ok(Some(tables))
}

/// One line on the remote tables' traffic (after `predict`).
pub fn summary(tables: &RemoteTables) -> String {
    let m = tables.metrics();
    let wire = m.wire_bytes.with_label_values(&["sent"]).get()
        + m.wire_bytes.with_label_values(&["received"]).get();
    format!(
        "remote tables version {}: cache hit ratio {:.1}%, {} rows fetched, {} bytes on the wire",
        tables.version(),
        100.0 * m.hit_ratio().unwrap_or(0.0),
        m.fetched_rows.get(),
        wire
    )
}

/// `bench model MODEL --tables-redis`: the in-memory model, then the store at cache sizes of
/// 0%, 1% and 10% of the table bytes and `--cache-bytes`, on Zipf ids.
pub fn bench(
    path: &Path,
    args: &RemoteTablesArgs,
    batch: &[usize],
    quick: bool,
    mut print: impl FnMut(&RemoteBenchLine) -> Result<()>,
) -> Result<()> {
    let Some(urls) = &args.tables_redis else {
        anyhow::bail!("bench with remote tables needs --tables-redis");
    };
    let mut model = Model::load(path).with_context(|| format!("loading {}", path.display()))?;
    model.load_tables_into_memory()?;
    let store = open_store(urls, &args.tables_namespace, Some(args.tables_deadline_ms))?;
    for &b in batch {
        let options = RemoteBenchOptions {
            model: name_of(path, args.tables_name.as_deref()),
            batch: b,
            batches: if quick { 50 } else { 300 },
            warmup: if quick { 20 } else { 100 },
            cache_fractions: vec![0.0, 0.01, 0.1],
            cache_bytes: if args.cache_bytes > 0 {
                vec![args.cache_bytes]
            } else {
                Vec::new()
            },
            zipf: 1.05,
            seed: 7,
        };
        for line in run_remote_bench(&model, &store, &options)? {
            print(&line)?;
        }
    }
    Ok(())
}
