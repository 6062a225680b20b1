//! `quantrec train`: train an fp32 DLRM on a click log or on synthetic data and write a
//! facebookresearch/dlrm state dict (importable with `quantrec import`, loadable by PyTorch).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use quantrec_data::Batch;
use quantrec_data::batch_ops;
use quantrec_data::source;
use quantrec_data::synth;
use quantrec_data::{Schema, SourceSpec};
use quantrec_train::recipe::SynthRecipe;
use quantrec_train::{EvalReport, Optimizer, Progress, TrainOptions, Trainer};

/// Update rule of `quantrec train`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    /// Adagrad (row-wise for tables, like FBGEMM's EXACT_ROWWISE_ADAGRAD).
    Adagrad,
    /// Plain SGD.
    Sgd,
    /// Adam for the MLPs, row-wise Adagrad for the tables.
    Adam,
}

/// Arguments of `quantrec train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training data: Criteo DAC TSV (optionally .gz), a file read through `--schema`, or a
    /// batch file with `labels`. Streamed (read again every epoch; a first pass counts the rows
    /// when a tail holdout is asked for), so memory does not grow with the file.
    #[arg(
        long,
        conflicts_with = "synthetic",
        required_unless_present = "synthetic"
    )]
    pub data: Option<PathBuf>,
    /// Schema of the data file (default: Criteo DAC).
    #[arg(long, requires = "data")]
    pub schema: Option<PathBuf>,
    /// Hold out the last fraction of the data file's rows for evaluation.
    #[arg(long, requires = "data", conflicts_with_all = ["holdout_rows", "eval"])]
    pub holdout_fraction: Option<f64>,
    /// Hold out the last N rows of the data file for evaluation.
    #[arg(long, requires = "data", conflicts_with = "eval")]
    pub holdout_rows: Option<usize>,
    /// Evaluate on this file (same format as --data).
    #[arg(long, requires = "data")]
    pub eval: Option<PathBuf>,
    /// Train on the synthetic default recipe (Criteo-like data labelled by a hidden teacher,
    /// generated on the fly); the holdout report includes the teacher's NE.
    #[arg(long)]
    pub synthetic: bool,
    /// Synthetic training rows (default: the recipe's).
    #[arg(long, requires = "synthetic")]
    pub rows: Option<u64>,
    /// Synthetic evaluation rows (default: the recipe's).
    #[arg(long, requires = "synthetic")]
    pub eval_rows: Option<u64>,
    /// Synthetic data: Criteo Kaggle table sizes capped at this many rows (default: the recipe's).
    /// For --data: rows every categorical column is hashed into (default 100000).
    #[arg(long)]
    pub max_table_rows: Option<usize>,
    /// Explicit table sizes, comma separated (overrides --max-table-rows).
    #[arg(long, value_delimiter = ',')]
    pub table_rows: Option<Vec<usize>>,
    /// Synthetic data: Zipf exponent of id popularity (default: the recipe's).
    #[arg(long, requires = "synthetic")]
    pub zipf: Option<f64>,
    /// Synthetic data seed (teacher and rows).
    #[arg(long, requires = "synthetic", default_value_t = 0)]
    pub data_seed: u64,
    /// Embedding dimension (also the bottom MLP's output).
    #[arg(long, default_value_t = 16)]
    pub dim: usize,
    /// Continue training from this state dict (as `train` writes it; same architecture) instead
    /// of fresh parameters: e.g. yesterday's snapshot trained further on today's data.
    #[arg(long, requires = "data")]
    pub init: Option<PathBuf>,
    /// Output: the trained state dict (.safetensors, facebookresearch/dlrm module names).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Passes over the data (file data only; synthetic rows are never repeated).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Samples per step.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Learning rate of the MLPs.
    #[arg(long)]
    pub lr: Option<f32>,
    /// Learning rate of the embedding tables.
    #[arg(long)]
    pub lr_sparse: Option<f32>,
    /// Update rule (default: the synthetic recipe's, or Adagrad for --data).
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    /// Seed of the initial parameters.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print a JSON summary instead of text (no progress bar).
    #[arg(long)]
    pub json: bool,
}

/// Runs `quantrec train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let mut options = if args.synthetic {
        SynthRecipe::default().options
    } else {
        TrainOptions::default()
    };
    if let Some(v) = args.epochs {
        options.epochs = v;
    }
    if let Some(v) = args.batch_size {
        if v == 0 {
            bail!("--batch-size must be at least 1");
        }
        options.batch_size = v;
    }
    if let Some(v) = args.lr {
        options.lr_dense = v;
    }
    if let Some(v) = args.lr_sparse {
        options.lr_sparse = v;
    }
    if let Some(v) = args.seed {
        options.seed = v;
    }
    options.threads = args.threads.or(options.threads);
    if let Some(o) = args.optimizer {
        options.optimizer = match o {
            OptimizerArg::Adagrad => Optimizer::adagrad(),
            OptimizerArg::Sgd => Optimizer::Sgd,
            OptimizerArg::Adam => Optimizer::adam_rowwise(),
        };
    }
    if args.synthetic {
        run_synthetic(&args, options)
    } else {
        run_file(&args, options)
    }
}

fn progress_bar(total: u64, json: bool) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} samples ({per_sec}, eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

fn on_progress(bar: &ProgressBar) -> impl FnMut(&Progress) + '_ {
    move |p: &Progress| {
        bar.set_position(p.samples);
        if p.step.is_multiple_of(16) {
            bar.set_message(format!(
                "epoch {} loss {:.4} NE {:.4}",
                p.epoch + 1,
                p.running_loss,
                p.running_ne
            ));
        }
    }
}

fn run_synthetic(args: &TrainArgs, options: TrainOptions) -> Result<()> {
    let mut recipe = SynthRecipe {
        options,
        dim: args.dim,
        ..SynthRecipe::default()
    };
    recipe.synth.seed = args.data_seed;
    if let Some(rows) = &args.table_rows {
        recipe.synth.table_rows = rows.clone();
    } else if let Some(cap) = args.max_table_rows {
        recipe.synth.table_rows = synth::criteo_table_rows(cap);
    }
    if let Some(z) = args.zipf {
        recipe.synth.zipf_exponent = z;
    }
    if let Some(n) = args.rows {
        recipe.train_rows = n;
    }
    if let Some(n) = args.eval_rows {
        recipe.eval_rows = n;
    }
    if args.epochs.is_some_and(|e| e != 1) {
        bail!("--epochs applies to --data only (synthetic rows are generated fresh, one pass)");
    }
    let start = Instant::now();
    let bar = progress_bar(recipe.train_rows, args.json);
    let out = quantrec_train::recipe::train_synthetic(&recipe, on_progress(&bar))?;
    bar.finish_and_clear();
    out.trainer
        .save_safetensors(&args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    let wall = start.elapsed().as_secs_f64();
    let teacher_ne = out.teacher.ne;
    if args.json {
        let v = serde_json::json!({
            "source": "synthetic",
            "train_rows": recipe.train_rows,
            "eval_rows": recipe.eval_rows,
            "table_rows": recipe.synth.table_rows,
            "zipf_exponent": recipe.synth.zipf_exponent,
            "options": options_json(&recipe.options),
            "holdout": report_json(&out.holdout),
            "teacher_ne": teacher_ne,
            "teacher_auc": out.teacher.auc,
            "ne_ratio": out.ne_ratio,
            "train_seconds": out.train_seconds,
            "samples_per_second": recipe.train_rows as f64 / out.train_seconds.max(1e-9),
            "wall_seconds": wall,
            "output": args.output,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "trained on {} synthetic rows in {:.1} s ({:.0} samples/s; {:.1} s in all)",
            recipe.train_rows,
            out.train_seconds,
            recipe.train_rows as f64 / out.train_seconds.max(1e-9),
            wall
        );
        print_report("holdout", &out.holdout);
        println!(
            "teacher (attainable optimum): NE {}; model NE / teacher NE = {:.4}",
            teacher_ne.map_or("undefined".into(), |v| format!("{v:.5}")),
            out.ne_ratio
        );
        println!("state dict → {}", args.output.display());
    }
    Ok(())
}

/// Streams `path` batch by batch and hands every batch of its rows `lo..hi` (cut at the ends) to
/// `f`; memory stays at one batch whatever the file size. Returns the rows read.
fn stream_rows(
    path: &Path,
    spec: &SourceSpec,
    lo: u64,
    hi: u64,
    mut f: impl FnMut(&Batch) -> Result<()>,
) -> Result<u64> {
    let mut src =
        source::open_source(path, spec).with_context(|| format!("opening {}", path.display()))?;
    let mut row = 0u64;
    while let Some(b) = src
        .next_batch()
        .with_context(|| format!("reading {}", path.display()))?
    {
        if b.labels.is_none() {
            bail!("{} has no labels", path.display());
        }
        let (start, end) = (row, row + b.size as u64);
        row = end;
        let (s, e) = (start.max(lo), end.min(hi));
        if s >= e {
            if start >= hi {
                break;
            }
            continue;
        }
        if s == start && e == end {
            f(&b)?;
        } else {
            f(&batch_ops::slice(
                &b,
                (s - start) as usize,
                (e - start) as usize,
            ))?;
        }
    }
    if src.stats().skipped_lines > 0 {
        eprintln!(
            "{}: skipped {} bad lines",
            path.display(),
            src.stats().skipped_lines
        );
    }
    Ok(row)
}

/// Evaluates `trainer` on the rows of `path` from row `from` on, streamed batch by batch (only
/// the logits and labels are kept, for the AUC).
fn evaluate_stream(
    trainer: &mut Trainer,
    path: &Path,
    spec: &SourceSpec,
    from: u64,
) -> Result<EvalReport> {
    let mut src =
        source::open_source(path, spec).with_context(|| format!("opening {}", path.display()))?;
    let mut row = 0u64;
    let mut failure = None;
    let batches = std::iter::from_fn(|| {
        loop {
            let b = match src.next_batch() {
                Ok(Some(b)) => b,
                Ok(None) => return None,
                Err(e) => {
                    failure = Some(e);
                    return None;
                }
            };
            let start = row;
            row += b.size as u64;
            if row <= from {
                continue;
            }
            return Some(if start >= from {
                b
            } else {
                batch_ops::slice(&b, (from - start) as usize, b.size)
            });
        }
    });
    let report = trainer.evaluate(batches)?;
    if let Some(e) = failure {
        return Err(e).with_context(|| format!("reading {}", path.display()));
    }
    Ok(report)
}

fn run_file(args: &TrainArgs, options: TrainOptions) -> Result<()> {
    let Some(data) = &args.data else {
        bail!("give --data FILE or --synthetic");
    };
    let schema = args
        .schema
        .as_ref()
        .map(|p| Schema::from_json_file(p))
        .transpose()?;
    let n_tables = schema.as_ref().map_or(26, Schema::n_sparse);
    let table_rows = match &args.table_rows {
        Some(rows) => rows.clone(),
        None => vec![args.max_table_rows.unwrap_or(100_000); n_tables],
    };
    let spec = SourceSpec {
        schema,
        ..SourceSpec::new(table_rows.clone(), options.batch_size)
    };
    let start = Instant::now();
    // The data is streamed, never loaded whole: a first pass counts the rows (and the dense
    // features) when a tail holdout must be cut off, then every epoch reads the file again.
    let n_dense = source::open_source(data, &spec)
        .with_context(|| format!("opening {}", data.display()))?
        .n_dense();
    let hold_split =
        args.eval.is_none() && (args.holdout_rows.is_some() || args.holdout_fraction.is_some());
    let (train_end, holdout) = if hold_split {
        let n = stream_rows(data, &spec, 0, u64::MAX, |_| Ok(()))?;
        let hold = match (args.holdout_rows, args.holdout_fraction) {
            (Some(r), _) => r as u64,
            (None, Some(f)) if (0.0..1.0).contains(&f) => (n as f64 * f).round() as u64,
            (None, Some(f)) => bail!("--holdout-fraction must be in [0, 1), got {f}"),
            (None, None) => 0,
        };
        if hold >= n {
            bail!("holding out {hold} rows leaves none of the {n} to train on");
        }
        (n - hold, (hold > 0).then_some((data, n - hold)))
    } else {
        (u64::MAX, args.eval.as_ref().map(|e| (e, 0)))
    };
    let config = quantrec_train::suggested_config(n_dense, &table_rows, args.dim);
    let mut trainer = match &args.init {
        Some(p) => {
            let tensors = quantrec_train::read_safetensors(p)
                .with_context(|| format!("reading {}", p.display()))?;
            Trainer::from_state_dict(config, options, tensors)
                .with_context(|| format!("starting from {}", p.display()))?
        }
        None => Trainer::new(config, options)?,
    };
    let total = if train_end == u64::MAX {
        0
    } else {
        train_end * options.epochs as u64
    };
    let bar = progress_bar(total, args.json);
    let t = Instant::now();
    let mut train_rows = 0u64;
    {
        let mut show = on_progress(&bar);
        for epoch in 0..options.epochs {
            let mut step = 0;
            train_rows = stream_rows(data, &spec, 0, train_end, |b| {
                trainer.fit_stream(std::iter::once(b), |p| {
                    show(&Progress { epoch, step, ..*p })
                })?;
                step += 1;
                Ok(())
            })?
            .min(train_end);
            if epoch == 0 {
                bar.set_length(train_rows * options.epochs as u64);
            }
        }
    }
    bar.finish_and_clear();
    let train_seconds = t.elapsed().as_secs_f64();
    let report = match holdout {
        Some((path, from)) => Some(evaluate_stream(&mut trainer, path, &spec, from)?),
        None => None,
    };
    trainer
        .save_safetensors(&args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    let samples = train_rows * options.epochs as u64;
    if args.json {
        let v = serde_json::json!({
            "source": data,
            "train_rows": train_rows,
            "table_rows": table_rows,
            "options": options_json(&options),
            "holdout": report.as_ref().map(report_json),
            "train_seconds": train_seconds,
            "samples_per_second": samples as f64 / train_seconds.max(1e-9),
            "wall_seconds": start.elapsed().as_secs_f64(),
            "output": args.output,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "trained on {} rows × {} epochs in {:.1} s ({:.0} samples/s)",
            train_rows,
            options.epochs,
            train_seconds,
            samples as f64 / train_seconds.max(1e-9)
        );
        match &report {
            Some(r) => print_report("holdout", r),
            None => println!("no holdout (use --holdout-rows, --holdout-fraction or --eval)"),
        }
        println!("state dict → {}", args.output.display());
    }
    Ok(())
}

fn print_report(what: &str, r: &EvalReport) {
    println!(
        "{what}: {} samples, log loss {:.5}, NE {:.5}, AUC {:.5}",
        r.samples, r.log_loss, r.ne, r.auc
    );
}

fn report_json(r: &EvalReport) -> serde_json::Value {
    serde_json::json!({
        "samples": r.samples,
        "log_loss": r.log_loss,
        "ne": r.ne,
        "auc": r.auc,
    })
}

fn options_json(o: &TrainOptions) -> serde_json::Value {
    serde_json::json!({
        "seed": o.seed,
        "optimizer": match o.optimizer {
            Optimizer::Sgd => "sgd",
            Optimizer::Adagrad { .. } => "adagrad",
            Optimizer::AdamRowwise { .. } => "adam",
        },
        "lr_dense": o.lr_dense,
        "lr_sparse": o.lr_sparse,
        "batch_size": o.batch_size,
        "epochs": o.epochs,
        "threads": o.threads,
    })
}
