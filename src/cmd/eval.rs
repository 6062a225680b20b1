//! `quantrec eval`: stream a labelled data file through an artifact (and optionally a baseline)
//! and report NE, log loss, AUC and calibration.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::json;

use quantrec_data::Batch;
use quantrec_data::metrics::{Metrics, MetricsAccumulator, delta_auc, delta_ne_percent};
use quantrec_data::source::BatchSource;
use quantrec_data::{Schema, SourceSpec, open_source};
use quantrec_model::artifact::Artifact;
use quantrec_model::{Model, Scratch};

/// Arguments of `quantrec eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The artifact to evaluate.
    pub model: PathBuf,
    /// Labelled data: Criteo TSV (optionally gzip), schema-described text, or a safetensors batch
    /// file. Text ids are hashed into the model's table sizes.
    #[arg(long)]
    pub data: PathBuf,
    /// A second artifact (e.g. the f32 model) run on the same rows: reports ΔNE % and ΔAUC.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Evaluate only the first N rows.
    #[arg(long)]
    pub rows: Option<u64>,
    /// JSON schema of a text file (default: the Criteo preset).
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Samples per batch while streaming.
    #[arg(long, default_value_t = 4096)]
    pub batch_size: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Opens `data` for `model`: ids hashed into (or checked against) the model's table sizes.
pub fn open_data(
    model: &Model,
    data: &Path,
    schema: Option<&Path>,
    batch_size: usize,
) -> Result<Box<dyn BatchSource>> {
    let table_rows = model.config().tables.iter().map(|t| t.rows).collect();
    let mut spec = SourceSpec::new(table_rows, batch_size);
    if let Some(s) = schema {
        spec.schema = Some(
            Schema::from_json_file(s).with_context(|| format!("reading schema {}", s.display()))?,
        );
    }
    let source = open_source(data, &spec).with_context(|| format!("opening {}", data.display()))?;
    if source.n_dense() != model.config().dense_features
        || source.n_tables() != spec.table_rows.len()
    {
        bail!(
            "{} has {} dense and {} sparse features, the model takes {} and {}",
            data.display(),
            source.n_dense(),
            source.n_tables(),
            model.config().dense_features,
            spec.table_rows.len()
        );
    }
    Ok(source)
}

/// Calls `f` on every batch of `source`, stopping after `rows` samples (the last batch cut).
pub fn for_each_batch(
    source: &mut dyn BatchSource,
    rows: Option<u64>,
    mut f: impl FnMut(&Batch) -> Result<()>,
) -> Result<u64> {
    let mut seen = 0u64;
    while rows.is_none_or(|r| seen < r) {
        let Some(mut batch) = source.next_batch()? else {
            break;
        };
        if let Some(r) = rows {
            let left = (r - seen) as usize;
            if batch.size > left {
                batch = quantrec_data::batch_ops::slice(&batch, 0, left);
            }
        }
        seen += batch.size as u64;
        f(&batch)?;
    }
    Ok(seen)
}

fn load(path: &Path) -> Result<Model> {
    Ok(Artifact::load(path)
        .with_context(|| format!("loading {}", path.display()))?
        .model)
}

fn metrics_json(m: &Metrics) -> serde_json::Value {
    json!({
        "count": m.count,
        "ctr": m.ctr,
        "log_loss": m.log_loss,
        "ne": m.ne,
        "auc": m.auc,
        "calibration": m.calibration,
    })
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// Runs `quantrec eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let model = load(&args.model)?;
    let baseline = args.baseline.as_deref().map(load).transpose()?;
    if let Some(b) = &baseline {
        let rows = |m: &Model| m.config().tables.iter().map(|t| t.rows).collect::<Vec<_>>();
        if rows(b) != rows(&model) || b.config().dense_features != model.config().dense_features {
            bail!(
                "the baseline's inputs differ from the model's (dense features or table sizes), \
                 so they cannot be evaluated on the same rows"
            );
        }
    }
    let mut source = open_data(&model, &args.data, args.schema.as_deref(), args.batch_size)?;
    let mut acc = MetricsAccumulator::with_auc();
    let mut base_acc = MetricsAccumulator::with_auc();
    let (mut scratch, mut base_scratch) = (Scratch::new(), Scratch::new());
    let start = Instant::now();
    let rows = for_each_batch(source.as_mut(), args.rows, |batch| {
        let Some(labels) = &batch.labels else {
            bail!("{} has no labels to evaluate against", args.data.display());
        };
        acc.extend(model.predict(batch, &mut scratch)?, labels)?;
        if let Some(b) = &baseline {
            base_acc.extend(b.predict(batch, &mut base_scratch)?, labels)?;
        }
        Ok(())
    })?;
    let secs = start.elapsed().as_secs_f64();
    if rows == 0 {
        bail!("{} holds no rows", args.data.display());
    }
    let m = acc.metrics();
    let base = baseline.as_ref().map(|_| base_acc.metrics());
    let d_ne = base
        .as_ref()
        .and_then(|b| Some(delta_ne_percent(m.ne?, b.ne?)));
    let d_auc = base.as_ref().and_then(|b| Some(delta_auc(m.auc?, b.auc?)));
    if args.json {
        let out = json!({
            "model": args.model.display().to_string(),
            "data": args.data.display().to_string(),
            "metrics": metrics_json(&m),
            "baseline": base.as_ref().map(|b| json!({
                "model": args.baseline.as_ref().map(|p| p.display().to_string()),
                "metrics": metrics_json(b),
            })),
            "delta_ne_percent": d_ne,
            "delta_auc": d_auc,
            "seconds": secs,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("{} rows of {} in {secs:.2}s", rows, args.data.display());
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>11} {:>9}",
        "", "NE", "log loss", "AUC", "calibration", "CTR"
    );
    let line = |name: &str, m: &Metrics| {
        println!(
            "{name:<10} {:>9} {:>9} {:>9} {:>11} {:>9}",
            fmt(m.ne, 5),
            fmt(m.log_loss, 5),
            fmt(m.auc, 5),
            fmt(m.calibration, 4),
            fmt(m.ctr, 4)
        );
    };
    line("model", &m);
    if let Some(b) = &base {
        line("baseline", b);
        println!(
            "ΔNE {} %   ΔAUC {}",
            d_ne.map_or("-".into(), |x| format!("{x:+.4}")),
            d_auc.map_or("-".into(), |x| format!("{x:+.5}"))
        );
    }
    Ok(())
}
