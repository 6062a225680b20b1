//! `quantrec tables push|verify|gc`: embedding tables in a Redis Cluster ([`quantrec_tables`]),
//! and the `--tables-redis` options of `predict` and `bench model`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use quantrec_model::Model;
use quantrec_tables::store::PushOptions;
use quantrec_tables::{RemoteTables, RemoteTablesSpec, StoreAddress, model_name, model_tables};

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

impl StoreArgs {
    fn address(&self) -> StoreAddress {
        StoreAddress {
            urls: self.redis.clone(),
            namespace: self.namespace.clone(),
            deadline: None,
        }
    }
}

impl RemoteTablesArgs {
    /// The remote tables of the artifact at `path`, when `--tables-redis` is given.
    pub fn spec(&self, path: &Path) -> Option<RemoteTablesSpec> {
        let urls = self.tables_redis.clone()?;
        Some(RemoteTablesSpec {
            store: StoreAddress {
                urls,
                namespace: self.tables_namespace.clone(),
                deadline: Some(Duration::from_millis(self.tables_deadline_ms)),
            },
            model: model_name(path, self.tables_name.as_deref()),
            cache_bytes: self.cache_bytes,
        })
    }

    /// With `--tables-redis`: attaches the store's tables (and cache) to `model` as its row source.
    pub fn attach(&self, model: &mut Model, path: &Path) -> Result<Option<Arc<RemoteTables>>> {
        self.spec(path).map(|s| Ok(s.attach(model)?)).transpose()
    }
}

/// Runs `quantrec tables`.
pub fn run(args: TablesArgs) -> Result<()> {
    match args.what {
        TablesWhat::Push(a) => {
            let model =
                Model::load(&a.model).with_context(|| format!("loading {}", a.model.display()))?;
            let options = PushOptions {
                rows_per_block: a.rows_per_block,
                blocks_per_group: a.blocks_per_group,
                max_new_blocks: a.max_new_blocks,
            };
            let name = model_name(&a.model, a.name.as_deref());
            let report = a
                .store
                .address()
                .open()?
                .push(&name, &model_tables(&model), &options)?;
            println!("{name} {report}");
        }
        TablesWhat::Verify(a) => {
            let name = model_name(&a.model, a.name.as_deref());
            println!("{name} {}", a.store.address().open()?.verify(&name)?);
        }
        TablesWhat::Gc(a) => println!("{}", a.store.address().open()?.gc(a.grace_secs)?),
    }
    Ok(())
}
